// Package esdbtest owns an in-process stand-in for a single KurrentDB
// (EventStoreDB) node, for the tests of the esdb adapter when no real
// server is at hand. It serves the subset of KurrentDB's gRPC interface
// the adapter uses, built on the client module's own generated protocol
// definitions, on 127.0.0.1 without TLS:
//
//   - streams.Append: expected revision (a revision, no stream, any,
//     stream exists), wrong-expected-version answers, and KurrentDB's
//     recognition of a retried append by its event ids;
//   - streams.Read: a stream forwards or backwards; $all forwards or
//     backwards, with or without a filter on stream name or event type;
//     catch-up subscriptions to $all from the start, the end or a
//     position, with or without a filter, that go live without a gap,
//     with caught-up and checkpoint messages;
//   - server features (what the client asks at connect) and gossip (for
//     esdb+discover:// connection strings).
//
// Like KurrentDB, positions are byte offsets in the log (sparse), every
// event commits itself (commit position = prepare position), and the log
// starts with a system event of the server's own that clients must skip.
// The test hooks ([Server.Stop], [Server.Restart],
// [Server.DropSubscriptions], [Server.AppendSystemEvent],
// [Server.AppendCalls], [Server.Events], [Server.RewriteLog],
// [WithoutStreamReadPositions])
// let tests break the connection, imitate older servers and count what
// reached the server.
//
// Where KurrentDB's behaviour is not pinned down by its protocol, the
// stand-in is strict rather than lenient: a read or subscription of $all
// from a position inside a record is refused, as KurrentDB cannot read the
// log there. Filters' regular expressions are Go's (RE2), not .NET's;
// they agree on the anchors, classes and alternations filters use.
//
// It must never be used outside tests: it keeps everything in memory,
// ignores credentials and access control, and does not implement deletes,
// stream metadata, links, stream subscriptions, persistent subscriptions
// or projections.
package esdbtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Version is the server version the stand-in reports to clients.
const Version = "24.10.0"

// Server is one in-process node. Its log survives [Server.Stop] and
// [Server.Restart]; [Server.Close] ends it.
type Server struct {
	addr string
	log  *eventLog

	appendCalls atomic.Int64
	// legacyStreamReads: stream reads carry no log position, as in
	// EventStoreDB releases before positions on stream reads.
	legacyStreamReads bool

	mu    sync.Mutex
	grpc  *grpc.Server
	drop  chan struct{} // closed by DropSubscriptions, then replaced
	done  chan struct{} // closed by Close
	close sync.Once
}

// Option configures a Server.
type Option func(*Server)

// WithAddress makes the server listen on addr (host:port) instead of an
// ephemeral port on 127.0.0.1, so that a test can point a client at it
// before it starts.
func WithAddress(addr string) Option {
	return func(s *Server) { s.addr = addr }
}

// WithoutStreamReadPositions makes stream reads carry no log position,
// as older EventStoreDB releases did (reads of $all still do).
func WithoutStreamReadPositions() Option {
	return func(s *Server) { s.legacyStreamReads = true }
}

// Start starts a server. Close it when done.
func Start(opts ...Option) (*Server, error) {
	s := &Server{
		addr: "127.0.0.1:0",
		log:  newEventLog(),
		drop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	// KurrentDB writes events of its own before any client's.
	s.AppendSystemEvent("$settings", "$settings")
	if err := s.serve(); err != nil {
		return nil, err
	}
	return s, nil
}

// New starts a server for t and closes it when t ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("start in-test KurrentDB: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve() error {
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("in-test KurrentDB: listen on %s: %w", s.addr, err)
	}
	g := grpc.NewServer()
	api.RegisterStreamsServer(g, &streamsService{server: s})
	serverfeatures.RegisterServerFeaturesServer(g, featuresService{})
	gossip.RegisterGossipServer(g, &gossipService{server: s})
	s.mu.Lock()
	s.addr = lis.Addr().String()
	s.grpc = g
	s.mu.Unlock()
	go func() { _ = g.Serve(lis) }()
	return nil
}

// Addr returns host:port the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns a connection string for the server.
func (s *Server) URL() string {
	return "esdb://" + s.Addr() + "?tls=false"
}

// Stop stops serving: every connection and call ends, and new ones are
// refused, as when the node goes down. The log is kept for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	g := s.grpc
	s.grpc = nil
	s.mu.Unlock()
	if g != nil {
		g.Stop()
	}
}

// Restart serves the kept log again on the same address.
func (s *Server) Restart() error {
	s.Stop()
	select {
	case <-s.done:
		return errors.New("in-test KurrentDB: restart after close")
	default:
	}
	return s.serve()
}

// Close stops the server for good.
func (s *Server) Close() {
	s.close.Do(func() { close(s.done) })
	s.Stop()
}

// DropSubscriptions ends every open subscription with an Unavailable
// error, as KurrentDB does to a subscriber it drops, while the server
// stays up.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drop)
	s.drop = make(chan struct{})
}

func (s *Server) dropped() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drop
}

// AppendSystemEvent writes an event of the server's own kind (such as its
// periodic $statsCollected events) to a system stream, which clients of
// the log must skip.
func (s *Server) AppendSystemEvent(stream, eventType string) {
	s.log.append(stream, expectation{kind: expectAny}, []proposed{{
		id:   uuid.New(),
		typ:  eventType,
		json: true,
		data: []byte(`{}`),
	}}, time.Now())
}

// AppendCalls returns how many append calls reached the server.
func (s *Server) AppendCalls() int64 { return s.appendCalls.Load() }

// Events returns how many events the log holds, system events included.
func (s *Server) Events() int {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return len(s.log.records)
}

type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: Version,
		Methods: []*serverfeatures.SupportedMethod{
			{ServiceName: streams, MethodName: "read"},
			{ServiceName: streams, MethodName: "append"},
		},
	}, nil
}

type gossipService struct {
	gossip.UnimplementedGossipServer
	server *Server
}

// Read describes a one-node cluster whose only member is this server, the
// leader.
func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	host, portText, err := net.SplitHostPort(g.server.Addr())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "address: %v", err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "port: %v", err)
	}
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId:   uuidToProto(uuid.NewSHA1(uuid.NameSpaceURL, []byte(g.server.Addr())), true),
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}

type streamsService struct {
	api.UnimplementedStreamsServer
	server *Server
}

// Append implements KurrentDB's append: one options message, then the
// events, then the outcome.
func (svc *streamsService) Append(call api.Streams_AppendServer) error {
	first, err := call.Recv()
	if err != nil {
		return err
	}
	options := first.GetOptions()
	if options == nil || options.GetStreamIdentifier() == nil {
		return status.Error(codes.InvalidArgument, "append must start with its options")
	}
	svc.server.appendCalls.Add(1)
	stream := string(options.GetStreamIdentifier().GetStreamName())
	var expected expectation
	switch r := options.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		expected = expectation{kind: expectRevision, revision: int64(r.Revision)}
	case *api.AppendReq_Options_NoStream:
		expected = expectation{kind: expectRevision, revision: -1}
	case *api.AppendReq_Options_Any:
		expected = expectation{kind: expectAny}
	case *api.AppendReq_Options_StreamExists:
		expected = expectation{kind: expectStreamExists}
	default:
		return status.Error(codes.InvalidArgument, "append without an expected revision")
	}

	var events []proposed
	for {
		req, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		m := req.GetProposedMessage()
		if m == nil {
			return status.Error(codes.InvalidArgument, "append options sent twice")
		}
		id, err := uuidFromProto(m.GetId())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "event id: %v", err)
		}
		typ, ok := m.GetMetadata()["type"]
		if !ok {
			return missingMetadata(call.Context(), "type")
		}
		contentType, ok := m.GetMetadata()["content-type"]
		if !ok {
			return missingMetadata(call.Context(), "content-type")
		}
		events = append(events, proposed{
			id:   id,
			typ:  typ,
			json: contentType == "application/json",
			data: m.GetData(),
			meta: m.GetCustomMetadata(),
		})
	}

	out := svc.server.log.append(stream, expected, events, time.Now())
	switch {
	case out.invalidTransaction:
		_ = grpc.SetTrailer(call.Context(), metadata.Pairs("exception", "invalid-transaction"))
		return status.Error(codes.InvalidArgument, "Invalid Transaction")
	case out.wrongVersion:
		return call.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{
			WrongExpectedVersion: wrongVersion(expected, out.current),
		}})
	}
	success := &api.AppendResp_Success{}
	if out.current < 0 {
		success.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(out.current)}
	}
	if out.last == nil {
		success.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		// KurrentDB answers with one position for the whole append: that
		// of its last event (for a retry, of the original's last event).
		if out.idempotent {
			success.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: out.last.revision}
		}
		success.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition:  out.last.position,
			PreparePosition: out.last.position,
		}}
	}
	return call.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: success}})
}

func missingMetadata(ctx context.Context, key string) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "missing-required-metadata-property", "required-metadata-properties", key))
	return status.Errorf(codes.InvalidArgument, "Required Metadata Property '%s' is missing", key)
}

func wrongVersion(expected expectation, current int64) *api.AppendResp_WrongExpectedVersion {
	w := &api.AppendResp_WrongExpectedVersion{}
	if current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
	}
	switch {
	case expected.kind == expectAny:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	case expected.kind == expectStreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	case expected.revision < 0:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected.revision)}
	}
	return w
}

// Read implements reads of a stream, reads of $all and subscriptions to
// $all.
func (svc *streamsService) Read(req *api.ReadReq, call api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read without options")
	}
	structured := o.GetUuidOption().GetString_() == nil
	f, err := compileFilter(o.GetFilter())
	if err != nil {
		return err
	}
	switch so := o.GetStreamOption().(type) {
	case *api.ReadReq_Options_Stream:
		if o.GetSubscription() != nil {
			return status.Error(codes.Unimplemented, "stream subscriptions are not implemented here")
		}
		if f != nil {
			return status.Error(codes.InvalidArgument, "a stream read takes no filter")
		}
		return svc.readStream(so.Stream, o.GetReadDirection(), o.GetCount(), structured, call)
	case *api.ReadReq_Options_All:
		if o.GetSubscription() != nil {
			return svc.subscribeAll(so.All, f, o.GetFilter(), structured, call)
		}
		return svc.readAll(so.All, o.GetReadDirection(), o.GetCount(), f, structured, call)
	}
	return status.Error(codes.InvalidArgument, "read of neither a stream nor $all")
}

func (svc *streamsService) readStream(so *api.ReadReq_Options_StreamOptions, dir api.ReadReq_Options_ReadDirection, count uint64, structured bool, call api.Streams_ReadServer) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	l := svc.server.log
	l.mu.Lock()
	recs := l.streams[name]
	l.mu.Unlock() // records are never changed once written; the slice header is a snapshot
	if len(recs) == 0 {
		return call.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	last := uint64(len(recs) - 1)
	var out []*record
	if dir == api.ReadReq_Options_Forwards {
		from := last + 1 // End: nothing yet
		switch r := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Start:
			from = 0
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = r.Revision
		}
		for rev := from; rev <= last && uint64(len(out)) < count; rev++ {
			out = append(out, recs[rev])
		}
	} else {
		from := last
		switch r := so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Start:
			from = 0
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = min(r.Revision, last)
		}
		for rev := int64(from); rev >= 0 && uint64(len(out)) < count; rev-- {
			out = append(out, recs[rev])
		}
	}
	for _, r := range out {
		m := eventMessage(r, structured)
		if svc.server.legacyStreamReads {
			// Position.FromInt64(-1, -1): the largest value, "none".
			e := m.GetEvent()
			e.Event.CommitPosition, e.Event.PreparePosition = math.MaxUint64, math.MaxUint64
			e.Position = &api.ReadResp_ReadEvent_NoPosition{NoPosition: &shared.Empty{}}
		}
		if err := call.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (svc *streamsService) readAll(ao *api.ReadReq_Options_AllOptions, dir api.ReadReq_Options_ReadDirection, count uint64, f *filter, structured bool, call api.Streams_ReadServer) error {
	l := svc.server.log
	l.mu.Lock()
	records := l.records
	var start int // forwards: first index to read; backwards: one past it
	var err error
	switch p := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		start = 0
	case *api.ReadReq_Options_AllOptions_End:
		start = len(records)
	case *api.ReadReq_Options_AllOptions_Position:
		// Forwards includes the event at the position; backwards reads
		// what comes before it.
		start, err = l.checkPosition(p.Position.GetCommitPosition(), p.Position.GetPreparePosition())
	default:
		err = errors.New("no position")
	}
	l.mu.Unlock()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "read $all: %v", err)
	}
	var sent uint64
	send := func(r *record) error {
		if !f.match(r) {
			return nil
		}
		sent++
		return call.Send(eventMessage(r, structured))
	}
	if dir == api.ReadReq_Options_Forwards {
		for i := start; i < len(records) && sent < count; i++ {
			if err := send(records[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := start - 1; i >= 0 && sent < count; i-- {
		if err := send(records[i]); err != nil {
			return err
		}
	}
	return nil
}

// subscribeAll serves a catch-up subscription to $all: it confirms, sends
// the history after the starting point, says when it has caught up, then
// sends each event as it is written. One cursor walks the log throughout,
// so there is no gap or repeat between history and live events.
func (svc *streamsService) subscribeAll(ao *api.ReadReq_Options_AllOptions, f *filter, fo *api.ReadReq_Options_FilterOptions, structured bool, call api.Streams_ReadServer) error {
	l := svc.server.log
	l.mu.Lock()
	var next int // index of the next record to consider
	var err error
	switch p := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		next = 0
	case *api.ReadReq_Options_AllOptions_End:
		next = len(l.records)
	case *api.ReadReq_Options_AllOptions_Position:
		// A subscription starts after the position it is given.
		pos := p.Position.GetCommitPosition()
		next, err = l.checkPosition(pos, p.Position.GetPreparePosition())
		if err == nil && next < len(l.records) && l.records[next].position == pos {
			next++
		}
	default:
		err = errors.New("no position")
	}
	l.mu.Unlock()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "subscribe to $all: %v", err)
	}
	drop := svc.server.dropped()
	if err := call.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}}); err != nil {
		return err
	}

	// A filtered subscription reports a checkpoint each time it has looked
	// at window × multiplier events, so that a subscriber to a sparse
	// filter still learns how far the server has read.
	checkpointEvery := 0
	if f != nil {
		window := 32
		if m := fo.GetMax(); m > 0 {
			window = int(m)
		}
		checkpointEvery = window * max(1, int(fo.GetCheckpointIntervalMultiplier()))
	}
	ctx := call.Context()
	caughtUp := false
	scanned := 0
	for {
		batch, after, changed := l.after(next, 256)
		if len(batch) == 0 {
			if !caughtUp {
				caughtUp = true
				if err := call.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
					return err
				}
			}
			select {
			case <-changed:
				continue
			case <-drop:
				return status.Error(codes.Unavailable, "subscription dropped by the server")
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		for _, r := range batch {
			select {
			case <-drop:
				return status.Error(codes.Unavailable, "subscription dropped by the server")
			default:
			}
			if f.match(r) {
				if err := call.Send(eventMessage(r, structured)); err != nil {
					return err
				}
			}
			if checkpointEvery > 0 {
				if scanned++; scanned >= checkpointEvery {
					scanned = 0
					if err := call.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
						CommitPosition: r.position, PreparePosition: r.position,
					}}}); err != nil {
						return err
					}
				}
			}
		}
		next = after
	}
}

func compileFilter(fo *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if fo == nil {
		return nil, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{}
	switch x := fo.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = x.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.onType = x.EventType, true
	default:
		return nil, status.Error(codes.InvalidArgument, "filter on neither stream nor event type")
	}
	if expr.GetRegex() != "" {
		re, err := compileRegex(expr.GetRegex())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex %q: %v", expr.GetRegex(), err)
		}
		f.regex = re
		return f, nil
	}
	f.prefixes = expr.GetPrefix()
	return f, nil
}

func eventMessage(r *record, structured bool) *api.ReadResp {
	contentType := "application/octet-stream"
	if r.json {
		contentType = "application/json"
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               uuidToProto(r.id, structured),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.position,
			CommitPosition:   r.position,
			Metadata: map[string]string{
				"type":         r.typ,
				"created":      strconv.FormatInt(r.created, 10),
				"content-type": contentType,
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.position},
	}}}
}

// StoredEvent is an event as the server keeps it, for tests that play an
// operator who edits KurrentDB's files behind its back (see
// [Server.RewriteLog]).
type StoredEvent struct {
	ID       uuid.UUID
	Stream   string
	Revision uint64
	Type     string
	Data     []byte
	Meta     []byte
}

// RewriteLog replaces the log with what edit returns from its events
// (system events included), in the order returned: edit may change,
// drop, move or add events. Positions are assigned afresh from the start
// of the log, as they would be in files rewritten offline; revisions are
// kept as edit leaves them. Subscriptions already open are not told.
func (s *Server) RewriteLog(edit func([]StoredEvent) []StoredEvent) {
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	created := map[uuid.UUID]int64{}
	events := make([]StoredEvent, len(l.records))
	for i, r := range l.records {
		events[i] = StoredEvent{ID: r.id, Stream: r.stream, Revision: r.revision, Type: r.typ,
			Data: append([]byte(nil), r.data...), Meta: append([]byte(nil), r.meta...)}
		created[r.id] = r.created
	}
	events = edit(events)
	l.records, l.streams, l.byID, l.next = nil, map[string][]*record{}, map[uuid.UUID]*record{}, firstPosition
	now := time.Now().UnixNano() / 100
	for _, e := range events {
		r := &record{id: e.ID, stream: e.Stream, revision: e.Revision, position: l.next, typ: e.Type,
			json: true, created: now, data: e.Data, meta: e.Meta}
		if c, ok := created[e.ID]; ok {
			r.created = c
		}
		l.next += recordSize(e.Stream, e.Type, e.Data, e.Meta)
		l.records = append(l.records, r)
		l.streams[e.Stream] = append(l.streams[e.Stream], r)
		l.byID[e.ID] = r
	}
	close(l.changed)
	l.changed = make(chan struct{})
}
