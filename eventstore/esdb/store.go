package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/palisadehq/palisade/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// ErrUnreachable: the server did not answer within the startup wait.
var ErrUnreachable = errors.New("event store server unreachable")

// Store is the event log in KurrentDB. It is safe for concurrent use. Open
// it with [Open]; Close it to end its subscriptions and connection.
type Store struct {
	cfg      config
	settings esdbclient.Configuration // the parsed connection string; each client gets a copy
	server   string                   // the server's address, for messages: never the credentials

	mu       sync.Mutex
	conn     *conn  // the client in use
	live     bool   // conn has answered since it was made
	probe    *probe // the check that the server is live, while one runs
	inflight int    // calls into a client that have not returned
	drained  chan struct{}
	shut     bool   // no new calls into a client
	logID    string // the log's identity once read (see LogID)

	closing   context.Context // ends at Close
	stop      context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
}

type config struct {
	logger      *slog.Logger
	namespace   string
	logStart    uint64 // see withLogStart
	startupWait time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
}

func defaultConfig() config {
	return config{
		logger:      slog.Default(),
		startupWait: 30 * time.Second,
		backoffMin:  100 * time.Millisecond,
		backoffMax:  5 * time.Second,
	}
}

// Option configures a Store.
type Option func(*config)

// WithLogger sets where the store reports lost connections and dropped
// subscriptions (warnings), and the client library's own messages
// (debug). The default is slog.Default().
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) { c.logger = logger }
}

// WithNamespace keeps the store's streams apart from every other
// namespace's on a shared server: each stream is stored as
// "{namespace}.{stream}" (its category becomes "{namespace}.{category}"),
// and events outside the namespace are invisible to this store. A
// namespace is 1–64 letters and digits. Tests use one per store; two
// deployments sharing a server can too. Head then reads backwards until it
// finds an event of the namespace. The separation is one way: a store
// without a namespace sees namespaced streams as streams of category
// "{namespace}.{category}".
func WithNamespace(namespace string) Option {
	return func(c *config) { c.namespace = namespace }
}

// WithStartupWait bounds how long a call waits for the server to become
// live, when it is not yet (at the start, or after the connection was
// lost): the call fails with [ErrUnreachable] after d, or earlier if its
// ctx ends. The default is 30 seconds.
func WithStartupWait(d time.Duration) Option {
	return func(c *config) { c.startupWait = d }
}

// WithReconnectBackoff sets the pause between attempts to reach the
// server or to subscribe again after a drop: it starts at min and doubles
// up to max. The default is 100ms up to 5s.
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// withLogStart makes the store treat the log as starting after position
// start: reads and subscriptions from 0 begin there, and Head looks no
// further back. The tests give a store in a fresh namespace on a shared,
// long-lived server the position of the server's newest record, so that
// its reads do not scan every earlier run's events.
func withLogStart(start uint64) Option {
	return func(c *config) { c.logStart = start }
}

func (c config) validate() error {
	switch {
	case c.logger == nil:
		return errors.New("nil logger")
	case len(c.namespace) > 64 || strings.IndexFunc(c.namespace, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0:
		return fmt.Errorf("namespace %q is not 1–64 letters and digits", c.namespace)
	case c.startupWait <= 0:
		return fmt.Errorf("startup wait %s is not positive", c.startupWait)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("backoff %s..%s is not a positive range", c.backoffMin, c.backoffMax)
	}
	return nil
}

// Open returns a store for the KurrentDB node or cluster that connection
// names, an esdb:// or esdb+discover:// connection string (for example
// "esdb://localhost:2113?tls=false"). It does no network I/O: the first
// call waits for the server (see [WithStartupWait]), so Palisade may start
// before KurrentDB does. ctx only guards the opening itself.
func Open(ctx context.Context, connection string, opts ...Option) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	settings, err := esdbclient.ParseConnectionString(connection)
	if err != nil {
		return nil, fmt.Errorf("open event store: connection string %s: %s", redact(connection), redactIn(err.Error(), connection))
	}
	settings.Logger = clientLogger(cfg.logger)
	s := &Store{cfg: cfg, settings: *settings, server: describe(settings)}
	s.closing, s.stop = context.WithCancel(context.Background())
	if s.conn, err = s.newConn(); err != nil {
		s.stop()
		return nil, fmt.Errorf("open event store %s: %w", s.server, err)
	}
	return s, nil
}

// describe names the server for messages, without credentials.
func describe(settings *esdbclient.Configuration) string {
	if len(settings.GossipSeeds) == 0 {
		return settings.Address
	}
	seeds := make([]string, len(settings.GossipSeeds))
	for i, seed := range settings.GossipSeeds {
		seeds[i] = seed.String()
	}
	return strings.Join(seeds, ",")
}

// redact returns the connection string with any user and password hidden.
func redact(connection string) string {
	scheme, rest, ok := strings.Cut(connection, "://")
	if !ok {
		return "(unparsable)"
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "REDACTED@" + rest[at+1:]
	}
	return scheme + "://" + rest
}

// redactIn removes the connection string, and its password, from text.
func redactIn(text, connection string) string {
	text = strings.ReplaceAll(text, connection, redact(connection))
	if u, err := url.Parse(connection); err == nil && u.User != nil {
		if password, ok := u.User.Password(); ok && password != "" {
			text = strings.ReplaceAll(text, password, "REDACTED")
		}
	}
	return text
}

// clientLogger sends the client library's messages to logger at debug
// level: it reports every cancelled call and dropped subscription as an
// error, which for a store is ordinary.
func clientLogger(logger *slog.Logger) esdbclient.LoggingFunc {
	return func(level esdbclient.LogLevel, format string, args ...any) {
		if !logger.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		logger.Debug("kurrentdb client: "+fmt.Sprintf(format, args...), "client_level", level)
	}
}

// Close ends every subscription (they return ErrClosed), waits briefly for
// calls in flight to end, and closes the connection. Later calls return
// ErrClosed; a second Close does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stop()
		s.mu.Lock()
		s.shut = true
		var drained chan struct{}
		if s.inflight > 0 {
			drained = make(chan struct{})
			s.drained = drained
		}
		c := s.conn
		s.mu.Unlock()
		if drained != nil {
			// Calls were cancelled above and end promptly; one stuck in
			// the client is released when its client closes below.
			select {
			case <-drained:
			case <-time.After(closeGrace):
			}
		}
		c.retire()
	})
	return nil
}

const closeGrace = 5 * time.Second

// Append implements [eventstore.Store.Append]. An append the client could
// not send because its connection had closed is sent again on a new one;
// any other failure is returned, and with [eventstore.NoStream] or
// [eventstore.Exact] the caller may retry the same append safely (see the
// package documentation on event ids).
func (s *Store) Append(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	for i, e := range events {
		if strings.HasPrefix(e.Type, "$") {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w: event %d has type %q, and KurrentDB reserves types starting with $", stream, eventstore.ErrInvalidEvent, i, e.Type)
		}
	}
	if s.closed.Load() {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, eventstore.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	id := s.streamID(stream)
	data, err := eventData(id, expected, events, eventstore.Now())
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}

	ctx, done := s.scope(ctx)
	defer done()
	opts := esdbclient.AppendToStreamOptions{ExpectedRevision: revision(expected)}
	written, err := call(ctx, s, writeCall, func(ctx context.Context, c *esdbclient.Client) (*esdbclient.WriteResult, error) {
		return c.AppendToStream(ctx, id, opts, data...)
	})
	if err != nil {
		if isCode(err, esdbclient.ErrorCodeWrongExpectedVersion) {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w: expected %s: %v", stream, eventstore.ErrConflict, expected, err)
		}
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, s.failure(ctx, err))
	}

	n := uint64(len(events))
	last := written.NextExpectedVersion
	if last+1 < n {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: server answered revision %d for %d events", stream, last, n)
	}
	res := eventstore.AppendResult{FirstVersion: last + 1 - n, LastVersion: last}
	// The answer carries one position: for a single event, its own.
	if n == 1 && written.CommitPosition != 0 && written.CommitPosition == written.PreparePosition {
		res.FirstPosition, res.LastPosition = written.CommitPosition, written.CommitPosition
		return res, nil
	}
	back, err := s.readStream(ctx, id, stream, res.FirstVersion, len(events))
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: written at versions %d..%d, but reading their positions back failed: %w", stream, res.FirstVersion, res.LastVersion, s.failure(ctx, err))
	}
	if len(back) != len(events) {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: written at versions %d..%d, but %d events read back", stream, res.FirstVersion, res.LastVersion, len(back))
	}
	for i, env := range back {
		if env.ID != data[i].EventID {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: version %d holds event %s, not the appended %s", stream, env.StreamVersion, env.ID, data[i].EventID)
		}
	}
	res.FirstPosition, res.LastPosition = back[0].Position, back[len(back)-1].Position
	return res, nil
}

// AppendIf implements [eventstore.Store.AppendIf]. The client cannot
// append to one stream conditioned on another atomically, so the
// condition stream's version is read just before the append: a write to
// the condition stream that lands between that read and the append goes
// unnoticed (see the package documentation).
func (s *Store) AppendIf(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, cond eventstore.Condition, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateCondition(stream, cond); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	current, exists, err := s.lastRevision(ctx, cond.Stream)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: read condition stream %s: %w", stream, cond.Stream, err)
	}
	if err := cond.Check(current, exists); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	return s.Append(ctx, stream, expected, events)
}

// lastRevision returns the revision of the last event of stream, and
// false if the stream has none.
func (s *Store) lastRevision(ctx context.Context, stream eventstore.StreamName) (uint64, bool, error) {
	if s.closed.Load() {
		return 0, false, eventstore.ErrClosed
	}
	id := s.streamID(stream)
	ctx, done := s.scope(ctx)
	defer done()
	type lastEvent struct {
		version uint64
		exists  bool
	}
	last, err := call(ctx, s, readCall, func(ctx context.Context, c *esdbclient.Client) (lastEvent, error) {
		rs, err := c.ReadStream(ctx, id, esdbclient.ReadStreamOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
		if err != nil {
			return lastEvent{}, err
		}
		defer rs.Close()
		ev, err := rs.Recv()
		switch {
		case errors.Is(err, io.EOF), isCode(err, esdbclient.ErrorCodeResourceNotFound):
			return lastEvent{}, nil
		case err != nil:
			return lastEvent{}, err
		}
		return lastEvent{version: ev.OriginalEvent().EventNumber, exists: true}, nil
	})
	if err != nil {
		return 0, false, s.failure(ctx, err)
	}
	return last.version, last.exists, nil
}

// revision maps an expected version to the client's.
func revision(expected eventstore.ExpectedVersion) esdbclient.ExpectedRevision {
	if v, ok := expected.Version(); ok {
		return esdbclient.Revision(v)
	}
	if expected.IsNoStream() {
		return esdbclient.NoStream{}
	}
	return esdbclient.Any{}
}

// pageSize is the most events one read asks the server for.
const pageSize = 1024

// ReadStream implements [eventstore.Store.ReadStream]. A limit of 0 or
// less reads to the end of the stream; a stream that does not exist reads
// as empty.
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamName, from uint64, limit int) ([]eventstore.Envelope, error) {
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("read stream %s: %w", stream, eventstore.ErrClosed)
	}
	ctx, done := s.scope(ctx)
	defer done()
	envs, err := s.readStream(ctx, s.streamID(stream), stream, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, s.failure(ctx, err))
	}
	return envs, nil
}

func (s *Store) readStream(ctx context.Context, id string, stream eventstore.StreamName, from uint64, limit int) ([]eventstore.Envelope, error) {
	return call(ctx, s, readCall, func(ctx context.Context, c *esdbclient.Client) ([]eventstore.Envelope, error) {
		var out []eventstore.Envelope
		next := from
		for {
			want := pageSize
			if limit > 0 {
				want = min(want, limit-len(out))
			}
			rs, err := c.ReadStream(ctx, id, esdbclient.ReadStreamOptions{From: esdbclient.Revision(next)}, uint64(want))
			if err != nil {
				return nil, err
			}
			got := 0
			for {
				ev, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if isCode(err, esdbclient.ErrorCodeResourceNotFound) {
					rs.Close()
					return out, nil // no such stream: nothing in it
				}
				if err != nil {
					rs.Close()
					return nil, err
				}
				got++
				rec := ev.OriginalEvent()
				next = rec.EventNumber + 1
				if isSystem(rec) {
					continue
				}
				env, err := envelope(rec, stream)
				if err != nil {
					rs.Close()
					return nil, err
				}
				out = append(out, env)
			}
			rs.Close()
			if got < want || (limit > 0 && len(out) >= limit) {
				return out, nil
			}
		}
	})
}

// ReadAll implements [eventstore.Store.ReadAll]. It pages through $all from
// after and filters in the client (the v4 client cannot ask the server to
// filter a read). A limit of 0 or less reads to the head.
func (s *Store) ReadAll(ctx context.Context, after uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("read all: %w", eventstore.ErrClosed)
	}
	ctx, done := s.scope(ctx)
	defer done()
	requested := after
	after = max(after, s.cfg.logStart)
	out, err := call(ctx, s, readCall, func(ctx context.Context, c *esdbclient.Client) ([]eventstore.Envelope, error) {
		var out []eventstore.Envelope
		// KurrentDB reads $all forwards from a position inclusively; floor
		// keeps the read strictly after it, and after each page's last
		// event, which starts the next page.
		floor := after
		var from esdbclient.AllPosition = esdbclient.Start{}
		if after > 0 {
			from = esdbclient.Position{Commit: after, Prepare: after}
		}
		// Ask for what is missing (plus the event at the start position,
		// which the read includes), or more when a filter or a namespace
		// leaves events out, and twice as much on each further page.
		count := 0
		if filter.OrgID != "" || len(filter.Categories) > 0 || len(filter.Types) > 0 || s.cfg.namespace != "" {
			count = 32
		}
		for {
			if limit <= 0 {
				count = pageSize
			} else {
				count = min(pageSize, max(2*count, limit-len(out)+1))
			}
			rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{From: from}, uint64(count))
			if err != nil {
				return nil, err
			}
			got, last := 0, floor
			for {
				ev, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					rs.Close()
					return nil, err
				}
				got++
				rec := ev.OriginalEvent()
				position := rec.Position.Commit
				if position <= floor {
					continue
				}
				last = position
				stream, ok := s.palisadeStream(rec)
				if !ok {
					continue
				}
				env, err := envelope(rec, stream)
				if err != nil {
					rs.Close()
					return nil, err
				}
				if !filter.Match(env) {
					continue
				}
				out = append(out, env)
				if limit > 0 && len(out) == limit {
					rs.Close()
					return out, nil
				}
			}
			rs.Close()
			if got < count || last == floor {
				return out, nil
			}
			floor = last
			from = esdbclient.Position{Commit: last, Prepare: last}
		}
	})
	if err != nil {
		// A position past this store's head that lands inside another
		// writer's record (a shared server) is refused by KurrentDB; there
		// is nothing of this store's after it anyway.
		if after > 0 && !stopping(ctx, err) {
			if head, headErr := s.head(ctx); headErr == nil && after >= head {
				return nil, nil
			}
		}
		return nil, fmt.Errorf("read all after %d: %w", requested, s.failure(ctx, err))
	}
	return out, nil
}

// Head implements [eventstore.Store.Head]: the position of the newest
// event of this store in $all, skipping system events.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("head: %w", eventstore.ErrClosed)
	}
	ctx, done := s.scope(ctx)
	defer done()
	head, err := s.head(ctx)
	if err != nil {
		return 0, fmt.Errorf("head: %w", s.failure(ctx, err))
	}
	return head, nil
}

func (s *Store) head(ctx context.Context) (uint64, error) {
	return call(ctx, s, readCall, func(ctx context.Context, c *esdbclient.Client) (uint64, error) {
		var head uint64
		var from esdbclient.AllPosition = esdbclient.End{}
		count := uint64(1) // usually the newest event is one of ours
		var floor uint64   // positions at or above it were seen already
		for {
			rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: from}, count)
			if err != nil {
				return 0, err
			}
			var got uint64
			for {
				ev, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					rs.Close()
					return 0, err
				}
				got++
				rec := ev.OriginalEvent()
				position := rec.Position.Commit
				if floor != 0 && position >= floor {
					continue
				}
				if position <= s.cfg.logStart {
					rs.Close()
					return head, nil // the log starts after it
				}
				floor = position
				if _, ok := s.palisadeStream(rec); ok {
					head = position
					rs.Close()
					return head, nil
				}
			}
			rs.Close()
			if got < count {
				return head, nil // reached the start of the log
			}
			from = esdbclient.Position{Commit: floor, Prepare: floor}
			count = min(pageSize, max(64, 2*count))
		}
	})
}

// failure says why a call failed: the store closed, its context ended, or
// the server or connection failed.
func (s *Store) failure(ctx context.Context, err error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	return err
}

// stopping reports whether err is the end of ctx or of the store.
func stopping(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed)
}
