// Package storetest owns the contract suite of the eventstore.Store port:
// the behaviour every adapter (the embedded SQLite store, the EventStoreDB
// adapter) must show, tested only through the port, so adapters cannot
// drift apart.
//
// It must never reach behind the port: no adapter types, no SQL, no
// knowledge of how an adapter stores anything. An adapter's own quirks
// are tested in the adapter's package.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

// Options describes what an adapter guarantees beyond the port's minimum.
type Options struct {
	// SparsePositions says global positions strictly increase but may skip
	// numbers (EventStoreDB commit positions). Left false, the suite also
	// requires positions to be consecutive: 1, 2, 3, …
	SparsePositions bool
}

// Run runs the contract suite with the default Options. newStore must
// return an empty store that nothing else writes to, and close it when
// the test ends (t.Cleanup); the suite may close it earlier itself, so
// Close must tolerate a second call.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	RunWith(t, Options{}, newStore)
}

// RunWith runs the contract suite against the stores newStore returns.
func RunWith(t *testing.T, opts Options, newStore func(t *testing.T) eventstore.Store) {
	s := suite{opts: opts, newStore: newStore}
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"AppendExpectedVersion", s.testAppendExpectedVersion},
		{"AppendIsAtomicAndConsecutive", s.testAppendAtomicConsecutive},
		{"AppendAssignsOrCarriesIDs", s.testAppendIDs},
		{"AppendRefusesOrgMismatch", s.testAppendOrgMismatch},
		{"AppendIfCondition", s.testAppendIfCondition},
		{"AppendRefusesInvalidEvents", s.testAppendInvalid},
		{"AppendWithEndedContext", s.testAppendEndedContext},
		{"EnvelopeRoundTrip", s.testEnvelopeRoundTrip},
		{"OccurredAtDefaultsToNow", s.testOccurredAtDefault},
		{"ReadStream", s.testReadStream},
		{"ReadAllOrderAcrossStreams", s.testReadAllOrder},
		{"ReadAllAfterLimitAndFilter", s.testReadAllFilter},
		{"Head", s.testHead},
		{"ConcurrentAppendsSameStream", s.testConcurrentSameStream},
		{"ConcurrentAppendsDifferentStreams", s.testConcurrentDifferentStreams},
		{"SubscribeHistoryThenLive", s.testSubscribeHistoryThenLive},
		{"SubscribeFromPosition", s.testSubscribeFromPosition},
		{"SubscribeBoundaryUnderConcurrentAppends", s.testSubscribeBoundary},
		{"SubscribeWithFilter", s.testSubscribeFilter},
		{"SubscribeReturnsHandlerError", s.testSubscribeHandlerError},
		{"SubscribeReturnsContextError", s.testSubscribeContextError},
		{"Close", s.testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

type suite struct {
	opts     Options
	newStore func(t *testing.T) eventstore.Store
}

// fixture is one test's store plus helpers that fail the test with context.
type fixture struct {
	t     *testing.T
	store eventstore.Store
	ctx   context.Context
}

func (s suite) setup(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &fixture{t: t, store: s.newStore(t), ctx: ctx}
}

// in returns the fixture for subtest t, sharing f's store, so that its
// helpers fail t and not the parent.
func (f *fixture) in(t *testing.T) *fixture {
	return &fixture{t: t, store: f.store, ctx: f.ctx}
}

func stream(category, org, entity string) eventstore.StreamName {
	return eventstore.MustStreamName(category, org, entity)
}

// event returns a well-formed event of org whose data records n.
func event(org, typ string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{
		Type:     typ,
		Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "user-1", Kind: "user"}, SchemaVersion: 1},
		Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func events(org, typ string, count int) []eventstore.NewEvent {
	out := make([]eventstore.NewEvent, count)
	for i := range out {
		out[i] = event(org, typ, i)
	}
	return out
}

func (f *fixture) append(s eventstore.StreamName, expected eventstore.ExpectedVersion, evs ...eventstore.NewEvent) eventstore.AppendResult {
	f.t.Helper()
	res, err := f.store.Append(f.ctx, s, expected, evs)
	if err != nil {
		f.t.Fatalf("Append(%s, %s, %d events): %v", s, expected, len(evs), err)
	}
	return res
}

func (f *fixture) readStream(s eventstore.StreamName, from uint64, limit int) []eventstore.Envelope {
	f.t.Helper()
	envs, err := f.store.ReadStream(f.ctx, s, from, limit)
	if err != nil {
		f.t.Fatalf("ReadStream(%s, %d, %d): %v", s, from, limit, err)
	}
	return envs
}

func (f *fixture) readAll(after uint64, filter eventstore.Filter, limit int) []eventstore.Envelope {
	f.t.Helper()
	envs, err := f.store.ReadAll(f.ctx, after, filter, limit)
	if err != nil {
		f.t.Fatalf("ReadAll(%d, %+v, %d): %v", after, filter, limit, err)
	}
	return envs
}

// readEverything pages through the whole log.
func (f *fixture) readEverything(filter eventstore.Filter) []eventstore.Envelope {
	f.t.Helper()
	var all []eventstore.Envelope
	var after uint64
	for {
		page := f.readAll(after, filter, 100)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

func (f *fixture) head() uint64 {
	f.t.Helper()
	h, err := f.store.Head(f.ctx)
	if err != nil {
		f.t.Fatalf("Head: %v", err)
	}
	return h
}

// checkPositions requires positions to strictly increase and, unless the
// adapter's are sparse, to be consecutive.
func (s suite) checkPositions(t *testing.T, envs []eventstore.Envelope) {
	t.Helper()
	for i := 1; i < len(envs); i++ {
		prev, cur := envs[i-1].Position, envs[i].Position
		if cur <= prev {
			t.Fatalf("position %d follows %d: not increasing", cur, prev)
		}
		if !s.opts.SparsePositions && cur != prev+1 {
			t.Fatalf("position %d follows %d: gap", cur, prev)
		}
	}
}

func versions(envs []eventstore.Envelope) []uint64 {
	out := make([]uint64, len(envs))
	for i, e := range envs {
		out[i] = e.StreamVersion
	}
	return out
}

func positions(envs []eventstore.Envelope) []uint64 {
	out := make([]uint64, len(envs))
	for i, e := range envs {
		out[i] = e.Position
	}
	return out
}

func seq(from, count uint64) []uint64 {
	out := make([]uint64, count)
	for i := range out {
		out[i] = from + uint64(i)
	}
	return out
}

// dataN decodes the n an event was made with.
func dataN(t *testing.T, env eventstore.Envelope) int {
	t.Helper()
	var v struct{ N int }
	if err := json.Unmarshal(env.Data, &v); err != nil {
		t.Fatalf("event %d data %q: %v", env.Position, env.Data, err)
	}
	return v.N
}

func (s suite) testAppendExpectedVersion(t *testing.T) {
	tests := []struct {
		name     string
		existing int // events already in the stream
		expected eventstore.ExpectedVersion
		conflict bool
	}{
		{"no stream on new", 0, eventstore.NoStream(), false},
		{"no stream on existing", 1, eventstore.NoStream(), true},
		{"any on new", 0, eventstore.Any(), false},
		{"any on existing", 3, eventstore.Any(), false},
		{"exact on new", 0, eventstore.Exact(0), true},
		{"exact at last version", 3, eventstore.Exact(2), false},
		{"exact at first of several", 3, eventstore.Exact(0), true},
		{"exact behind", 3, eventstore.Exact(1), true},
		{"exact ahead", 3, eventstore.Exact(3), true},
		{"exact 0 on one event", 1, eventstore.Exact(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := s.setup(t)
			st := stream("bot", "org1", "b1")
			other := stream("bot", "org1", "other")
			f.append(other, eventstore.NoStream(), event("org1", "Seen", 0))
			if tt.existing > 0 {
				f.append(st, eventstore.NoStream(), events("org1", "Before", tt.existing)...)
			}
			headBefore := f.head()

			res, err := f.store.Append(f.ctx, st, tt.expected, events("org1", "Appended", 2))
			if tt.conflict {
				if !errors.Is(err, eventstore.ErrConflict) {
					t.Fatalf("Append = %+v, %v; want ErrConflict", res, err)
				}
				if got := f.readStream(st, 0, 100); len(got) != tt.existing {
					t.Fatalf("stream has %d events after a conflict, want %d", len(got), tt.existing)
				}
				if h := f.head(); h != headBefore {
					t.Fatalf("head moved from %d to %d on a conflict", headBefore, h)
				}
				return
			}
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			first := uint64(tt.existing)
			if res.FirstVersion != first || res.LastVersion != first+1 {
				t.Fatalf("versions %d..%d, want %d..%d", res.FirstVersion, res.LastVersion, first, first+1)
			}
			got := f.readStream(st, 0, 100)
			if want := seq(0, uint64(tt.existing)+2); !slices.Equal(versions(got), want) {
				t.Fatalf("stream versions %v, want %v", versions(got), want)
			}
			if got[len(got)-1].Type != "Appended" {
				t.Fatalf("last event type %q, want Appended", got[len(got)-1].Type)
			}
		})
	}
}

func (s suite) testAppendAtomicConsecutive(t *testing.T) {
	f := s.setup(t)
	a, b := stream("bot", "org1", "a"), stream("kb", "org1", "b")
	r1 := f.append(a, eventstore.NoStream(), events("org1", "A", 5)...)
	r2 := f.append(b, eventstore.Any(), events("org1", "B", 3)...)
	r3 := f.append(a, eventstore.Exact(4), events("org1", "A", 2)...)

	if r1.FirstVersion != 0 || r1.LastVersion != 4 {
		t.Fatalf("first append versions %d..%d, want 0..4", r1.FirstVersion, r1.LastVersion)
	}
	if r3.FirstVersion != 5 || r3.LastVersion != 6 {
		t.Fatalf("third append versions %d..%d, want 5..6", r3.FirstVersion, r3.LastVersion)
	}
	for i, r := range []eventstore.AppendResult{r1, r2, r3} {
		n := r.LastVersion - r.FirstVersion
		if r.FirstPosition == 0 || r.LastPosition < r.FirstPosition {
			t.Fatalf("append %d positions %d..%d", i, r.FirstPosition, r.LastPosition)
		}
		if !s.opts.SparsePositions && r.LastPosition-r.FirstPosition != n {
			t.Fatalf("append %d positions %d..%d for %d events: not consecutive", i, r.FirstPosition, r.LastPosition, n+1)
		}
	}
	if !(r1.LastPosition < r2.FirstPosition && r2.LastPosition < r3.FirstPosition) {
		t.Fatalf("appends overlap or go backwards: %+v %+v %+v", r1, r2, r3)
	}

	all := f.readEverything(eventstore.Filter{})
	if len(all) != 10 {
		t.Fatalf("log has %d events, want 10", len(all))
	}
	s.checkPositions(t, all)
	// Every append's events sit together, in order, where its result says.
	for _, c := range []struct {
		r      eventstore.AppendResult
		stream eventstore.StreamName
		from   int
	}{{r1, a, 0}, {r2, b, 5}, {r3, a, 8}} {
		if all[c.from].Position != c.r.FirstPosition {
			t.Fatalf("event at index %d has position %d, result said %d", c.from, all[c.from].Position, c.r.FirstPosition)
		}
		for i := 0; i <= int(c.r.LastVersion-c.r.FirstVersion); i++ {
			env := all[c.from+i]
			if env.Stream != c.stream || env.StreamVersion != c.r.FirstVersion+uint64(i) || dataN(t, env) != i {
				t.Fatalf("event at index %d: %s v%d n=%d, want %s v%d n=%d", c.from+i, env.Stream, env.StreamVersion, dataN(t, env), c.stream, c.r.FirstVersion+uint64(i), i)
			}
		}
	}
}

func (s suite) testAppendIDs(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "ids")
	mine := uuid.Must(uuid.NewV7())
	withID := event("org1", "Mine", 0)
	withID.ID = mine
	f.append(st, eventstore.NoStream(), withID, event("org1", "Theirs", 1), event("org1", "Theirs", 2))

	got := f.readStream(st, 0, 10)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	if got[0].ID != mine {
		t.Fatalf("caller's id %s came back as %s", mine, got[0].ID)
	}
	seen := map[uuid.UUID]bool{mine: true}
	for _, env := range got[1:] {
		if env.ID == uuid.Nil {
			t.Fatalf("event %d has no id", env.StreamVersion)
		}
		if seen[env.ID] {
			t.Fatalf("id %s assigned twice", env.ID)
		}
		seen[env.ID] = true
	}
	all := f.readAll(0, eventstore.Filter{}, 10)
	for i := range all {
		if all[i].ID != got[i].ID {
			t.Fatalf("ReadAll id %s differs from ReadStream id %s", all[i].ID, got[i].ID)
		}
	}
}

func (s suite) testAppendIfCondition(t *testing.T) {
	tests := []struct {
		name         string
		condExisting int // events already in the condition stream
		cond         eventstore.ExpectedVersion
		expected     eventstore.ExpectedVersion // of the appended stream (new)
		wantErr      error
	}{
		{"condition holds", 3, eventstore.Exact(2), eventstore.NoStream(), nil},
		{"condition behind", 3, eventstore.Exact(1), eventstore.NoStream(), eventstore.ErrConditionFailed},
		{"condition ahead", 3, eventstore.Exact(3), eventstore.NoStream(), eventstore.ErrConditionFailed},
		{"missing condition stream", 0, eventstore.Exact(0), eventstore.NoStream(), eventstore.ErrConditionFailed},
		{"no stream condition on missing stream", 0, eventstore.NoStream(), eventstore.NoStream(), nil},
		{"no stream condition on existing stream", 1, eventstore.NoStream(), eventstore.NoStream(), eventstore.ErrConditionFailed},
		{"condition holds, stream conflicts", 2, eventstore.Exact(1), eventstore.Exact(0), eventstore.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := s.setup(t)
			cond := stream("org", "org1", "org1")
			target := stream("bot", "org1", "b1")
			if tt.condExisting > 0 {
				f.append(cond, eventstore.NoStream(), events("org1", "MemberAdded", tt.condExisting)...)
			}
			res, err := f.store.AppendIf(f.ctx, target, tt.expected, eventstore.Condition{Stream: cond, Expected: tt.cond}, events("org1", "BotCreated", 2))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AppendIf = %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr == eventstore.ErrConditionFailed && errors.Is(err, eventstore.ErrConflict) {
					t.Fatalf("AppendIf = %v: a failed condition must be told apart from a stream conflict", err)
				}
				if got := f.readStream(target, 0, 10); len(got) != 0 {
					t.Fatalf("refused AppendIf wrote %d events", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("AppendIf: %v", err)
			}
			if res.FirstVersion != 0 || res.LastVersion != 1 || res.LastPosition <= res.FirstPosition {
				t.Fatalf("AppendIf result %+v, want versions 0..1 at increasing positions", res)
			}
			got := f.readStream(target, 0, 10)
			if len(got) != 2 || got[1].Position != res.LastPosition {
				t.Fatalf("read back %d events after AppendIf, want 2 ending at position %d", len(got), res.LastPosition)
			}
			if got := f.readStream(cond, 0, 10); len(got) != tt.condExisting {
				t.Fatalf("AppendIf changed its condition stream: %d events, want %d", len(got), tt.condExisting)
			}
		})
	}
	t.Run("condition stream of another organization", func(t *testing.T) {
		t.Parallel()
		f := s.setup(t)
		target := stream("bot", "org1", "b1")
		cond := eventstore.Condition{Stream: stream("org", "org2", "org2"), Expected: eventstore.NoStream()}
		if _, err := f.store.AppendIf(f.ctx, target, eventstore.NoStream(), cond, events("org1", "BotCreated", 1)); !errors.Is(err, eventstore.ErrOrgMismatch) {
			t.Fatalf("AppendIf = %v, want ErrOrgMismatch", err)
		}
		if got := f.readStream(target, 0, 10); len(got) != 0 {
			t.Fatalf("refused AppendIf wrote %d events", len(got))
		}
	})
}

func (s suite) testAppendOrgMismatch(t *testing.T) {
	tests := []struct {
		name   string
		events []eventstore.NewEvent
	}{
		{"other org", []eventstore.NewEvent{event("org2", "X", 0)}},
		{"no org", []eventstore.NewEvent{event("", "X", 0)}},
		{"second of two", []eventstore.NewEvent{event("org1", "X", 0), event("org2", "X", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := s.setup(t)
			st := stream("bot", "org1", "b1")
			for _, expected := range []eventstore.ExpectedVersion{eventstore.Any(), eventstore.NoStream()} {
				_, err := f.store.Append(f.ctx, st, expected, tt.events)
				if !errors.Is(err, eventstore.ErrOrgMismatch) {
					t.Fatalf("Append(%s) = %v, want ErrOrgMismatch", expected, err)
				}
			}
			if got := f.readStream(st, 0, 10); len(got) != 0 {
				t.Fatalf("refused append wrote %d events", len(got))
			}
			if h := f.head(); h != 0 {
				t.Fatalf("head %d after refused appends, want 0", h)
			}
		})
	}
}

func (s suite) testAppendInvalid(t *testing.T) {
	st := stream("bot", "org1", "b1")
	noType := event("org1", "", 0)
	badJSON := event("org1", "X", 0)
	badJSON.Data = json.RawMessage(`{"n":`)
	noData := event("org1", "X", 0)
	noData.Data = nil
	tests := []struct {
		name   string
		stream eventstore.StreamName
		events []eventstore.NewEvent
		want   error
	}{
		{"no type", st, []eventstore.NewEvent{noType}, eventstore.ErrInvalidEvent},
		{"bad json", st, []eventstore.NewEvent{badJSON}, eventstore.ErrInvalidEvent},
		{"no data", st, []eventstore.NewEvent{noData}, eventstore.ErrInvalidEvent},
		{"bad json after good", st, []eventstore.NewEvent{event("org1", "X", 0), badJSON}, eventstore.ErrInvalidEvent},
		{"no events", st, nil, eventstore.ErrInvalidEvent},
		{"zero stream", eventstore.StreamName{}, []eventstore.NewEvent{event("org1", "X", 0)}, eventstore.ErrInvalidStream},
		{"bad stream", eventstore.StreamName{Category: "b-ot", OrgID: "org1", EntityID: "x"}, []eventstore.NewEvent{event("org1", "X", 0)}, eventstore.ErrInvalidStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := s.setup(t)
			_, err := f.store.Append(f.ctx, tt.stream, eventstore.Any(), tt.events)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append = %v, want %v", err, tt.want)
			}
			if got := f.readAll(0, eventstore.Filter{}, 10); len(got) != 0 {
				t.Fatalf("refused append wrote %d events", len(got))
			}
		})
	}
}

func (s suite) testAppendEndedContext(t *testing.T) {
	f := s.setup(t)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	st := stream("bot", "org1", "b1")
	if _, err := f.store.Append(ctx, st, eventstore.Any(), events("org1", "X", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context = %v, want context.Canceled", err)
	}
	if got := f.readStream(st, 0, 10); len(got) != 0 {
		t.Fatalf("canceled append wrote %d events", len(got))
	}
}

func (s suite) testEnvelopeRoundTrip(t *testing.T) {
	f := s.setup(t)
	st := stream("workflow", "org-7", "run_42")
	occurred := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
	in := eventstore.NewEvent{
		ID:   uuid.Must(uuid.NewV7()),
		Type: "WorkflowStepCompleted",
		Metadata: eventstore.Metadata{
			OrgID: "org-7",
			Actor: eventstore.Actor{
				Subject:    "bot-9",
				Kind:       "bot",
				Roles:      []string{"builder", "analyst"},
				OnBehalfOf: []string{"user-1", "workflow-3"},
			},
			CorrelationID:  "corr-1",
			CausationID:    "cause-1",
			TraceID:        "4bf92f3577b34da6a3ce929d0e0e4736",
			SpanID:         "00f067aa0ba902b7",
			Authorization:  "grant kb:read on kb-1",
			IdempotencyKey: "idem-1",
			SchemaVersion:  3,
			OccurredAt:     occurred,
		},
		Data: json.RawMessage(`{"rows":[1,2,3],"sql":"SELECT 1","text":"héllo \"world\" ✓","nested":{"a":null,"b":true}}`),
	}
	res := f.append(st, eventstore.NoStream(), in)

	fromStream := f.readStream(st, 0, 1)
	fromAll := f.readAll(0, eventstore.Filter{}, 1)
	if len(fromStream) != 1 || len(fromAll) != 1 {
		t.Fatalf("read %d and %d events, want 1 each", len(fromStream), len(fromAll))
	}
	for _, got := range []eventstore.Envelope{fromStream[0], fromAll[0]} {
		if got.ID != in.ID || got.Type != in.Type || got.Stream != st {
			t.Fatalf("got id %s type %q stream %s, want %s %q %s", got.ID, got.Type, got.Stream, in.ID, in.Type, st)
		}
		if got.StreamVersion != 0 || got.Position != res.FirstPosition {
			t.Fatalf("got version %d position %d, want 0 and %d", got.StreamVersion, got.Position, res.FirstPosition)
		}
		if string(got.Data) != string(in.Data) {
			t.Fatalf("data\n got %s\nwant %s", got.Data, in.Data)
		}
		want := occurred.Truncate(time.Microsecond)
		if !got.OccurredAt.Equal(want) {
			t.Fatalf("occurred_at %s, want %s (microsecond precision)", got.OccurredAt, want)
		}
		gotMeta, wantMeta := got.Metadata, in.Metadata
		gotMeta.OccurredAt, wantMeta.OccurredAt = time.Time{}, time.Time{}
		if !metadataEqual(gotMeta, wantMeta) {
			t.Fatalf("metadata\n got %+v\nwant %+v", gotMeta, wantMeta)
		}
	}

	// A time already at microsecond precision comes back exactly.
	now := eventstore.Now()
	e := event("org-7", "Tick", 1)
	e.OccurredAt = now
	f.append(st, eventstore.Exact(0), e)
	if got := f.readStream(st, 1, 1); len(got) != 1 || !got[0].OccurredAt.Equal(now) {
		t.Fatalf("occurred_at %v, want %s", got, now)
	}
}

func metadataEqual(a, b eventstore.Metadata) bool {
	return a.OrgID == b.OrgID && a.Actor.Subject == b.Actor.Subject && a.Actor.Kind == b.Actor.Kind &&
		slices.Equal(a.Actor.Roles, b.Actor.Roles) && slices.Equal(a.Actor.OnBehalfOf, b.Actor.OnBehalfOf) &&
		a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID && a.TraceID == b.TraceID && a.SpanID == b.SpanID &&
		a.Authorization == b.Authorization && a.IdempotencyKey == b.IdempotencyKey &&
		a.SchemaVersion == b.SchemaVersion && a.OccurredAt.Equal(b.OccurredAt)
}

func (s suite) testOccurredAtDefault(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "b1")
	before := eventstore.Now()
	f.append(st, eventstore.NoStream(), event("org1", "X", 0))
	after := time.Now()
	got := f.readStream(st, 0, 1)
	if len(got) != 1 {
		t.Fatalf("read %d events, want 1", len(got))
	}
	if at := got[0].OccurredAt; at.Before(before) || at.After(after) {
		t.Fatalf("occurred_at %s is outside the append's window %s..%s", at, before, after)
	}
}

func (s suite) testReadStream(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "b1")
	// Interleave another stream so positions and versions differ.
	for i := range 10 {
		f.append(st, eventstore.Any(), event("org1", "Mine", i))
		f.append(stream("bot", "org1", "b2"), eventstore.Any(), event("org1", "Other", i))
	}
	tests := []struct {
		name  string
		from  uint64
		limit int
		want  []uint64
	}{
		{"all", 0, 100, seq(0, 10)},
		{"exactly all", 0, 10, seq(0, 10)},
		{"from middle", 3, 100, seq(3, 7)},
		{"from middle with limit", 3, 4, seq(3, 4)},
		{"limit one", 0, 1, seq(0, 1)},
		{"last", 9, 5, seq(9, 1)},
		{"past the end", 10, 5, nil},
		{"far past the end", 1 << 40, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			got := f.readStream(st, tt.from, tt.limit)
			if !slices.Equal(versions(got), tt.want) {
				t.Fatalf("versions %v, want %v", versions(got), tt.want)
			}
			for _, env := range got {
				if env.Stream != st || env.Type != "Mine" || dataN(t, env) != int(env.StreamVersion) {
					t.Fatalf("event %+v does not belong to %s", env, st)
				}
			}
			s.checkStrictlyIncreasing(t, got)
		})
	}
	t.Run("unknown stream", func(t *testing.T) {
		f := f.in(t)
		if got := f.readStream(stream("bot", "org1", "nope"), 0, 10); len(got) != 0 {
			t.Fatalf("unknown stream returned %d events", len(got))
		}
	})
	t.Run("same entity in another org", func(t *testing.T) {
		f := f.in(t)
		if got := f.readStream(stream("bot", "org2", "b1"), 0, 10); len(got) != 0 {
			t.Fatalf("org2's stream returned %d of org1's events", len(got))
		}
	})
	t.Run("invalid stream", func(t *testing.T) {
		f := f.in(t)
		_, err := f.store.ReadStream(f.ctx, eventstore.StreamName{}, 0, 10)
		if !errors.Is(err, eventstore.ErrInvalidStream) {
			t.Fatalf("ReadStream of a zero name = %v, want ErrInvalidStream", err)
		}
	})
}

func (s suite) checkStrictlyIncreasing(t *testing.T, envs []eventstore.Envelope) {
	t.Helper()
	for i := 1; i < len(envs); i++ {
		if envs[i].Position <= envs[i-1].Position {
			t.Fatalf("position %d follows %d", envs[i].Position, envs[i-1].Position)
		}
	}
}

func (s suite) testReadAllOrder(t *testing.T) {
	f := s.setup(t)
	a, b, c := stream("bot", "org1", "a"), stream("kb", "org2", "b"), stream("bot", "org1", "c")
	type step struct {
		stream eventstore.StreamName
		n      int
	}
	steps := []step{{a, 2}, {b, 1}, {a, 1}, {c, 3}, {b, 2}, {a, 1}}
	var want []string
	for i, st := range steps {
		evs := make([]eventstore.NewEvent, st.n)
		for j := range evs {
			evs[j] = event(st.stream.OrgID, "E", i*10+j)
			want = append(want, fmt.Sprintf("%s/%d", st.stream, i*10+j))
		}
		f.append(st.stream, eventstore.Any(), evs...)
	}
	all := f.readAll(0, eventstore.Filter{}, 1000)
	var got []string
	for _, env := range all {
		got = append(got, fmt.Sprintf("%s/%d", env.Stream, dataN(t, env)))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ReadAll order\n got %v\nwant %v", got, want)
	}
	s.checkPositions(t, all)
	if !s.opts.SparsePositions && all[0].Position != 1 {
		t.Fatalf("first position %d, want 1", all[0].Position)
	}
	if h := f.head(); h != all[len(all)-1].Position {
		t.Fatalf("head %d, last position %d", h, all[len(all)-1].Position)
	}
}

func (s suite) testReadAllFilter(t *testing.T) {
	f := s.setup(t)
	// Two orgs, two categories, three types, interleaved.
	for i := range 6 {
		for _, org := range []string{"org1", "org2"} {
			f.append(stream("bot", org, "b"), eventstore.Any(), event(org, "BotCreated", i), event(org, "BotRenamed", i))
			f.append(stream("kb", org, "k"), eventstore.Any(), event(org, "DocumentAdded", i))
			f.append(stream("inbox", org, "i"), eventstore.Any(), event(org, "MessageReceived", i))
		}
	}
	all := f.readEverything(eventstore.Filter{})
	if len(all) != 48 {
		t.Fatalf("log has %d events, want 48", len(all))
	}
	s.checkPositions(t, all)

	tests := []struct {
		name   string
		filter eventstore.Filter
		count  int
	}{
		{"none", eventstore.Filter{}, 48},
		{"org", eventstore.Filter{OrgID: "org1"}, 24},
		{"unknown org", eventstore.Filter{OrgID: "org3"}, 0},
		{"category", eventstore.Filter{Categories: []string{"kb"}}, 12},
		{"categories", eventstore.Filter{Categories: []string{"kb", "inbox"}}, 24},
		{"type", eventstore.Filter{Types: []string{"BotRenamed"}}, 12},
		{"types", eventstore.Filter{Types: []string{"BotRenamed", "DocumentAdded"}}, 24},
		{"org and category", eventstore.Filter{OrgID: "org2", Categories: []string{"bot"}}, 12},
		{"org, category and type", eventstore.Filter{OrgID: "org2", Categories: []string{"bot", "kb"}, Types: []string{"BotCreated", "DocumentAdded"}}, 12},
		{"category and type that never meet", eventstore.Filter{Categories: []string{"kb"}, Types: []string{"BotCreated"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			var want []eventstore.Envelope
			for _, env := range all {
				if tt.filter.Match(env) {
					want = append(want, env)
				}
			}
			if len(want) != tt.count {
				t.Fatalf("test expects %d matches, Filter.Match finds %d", tt.count, len(want))
			}
			// One big read, and pages of every size from 1 to 7.
			if got := f.readAll(0, tt.filter, 1000); !slices.Equal(positions(got), positions(want)) {
				t.Fatalf("ReadAll positions\n got %v\nwant %v", positions(got), positions(want))
			}
			for limit := 1; limit <= 7; limit++ {
				var got []eventstore.Envelope
				var after uint64
				for {
					page := f.readAll(after, tt.filter, limit)
					if len(page) > limit {
						t.Fatalf("limit %d returned %d events", limit, len(page))
					}
					if len(page) == 0 {
						break
					}
					got = append(got, page...)
					after = page[len(page)-1].Position
				}
				if !slices.Equal(positions(got), positions(want)) {
					t.Fatalf("pages of %d: positions\n got %v\nwant %v", limit, positions(got), positions(want))
				}
			}
			// after is exclusive, also when it names a non-matching event.
			for _, after := range []uint64{all[0].Position, all[17].Position, all[47].Position} {
				var wantAfter []uint64
				for _, env := range want {
					if env.Position > after {
						wantAfter = append(wantAfter, env.Position)
					}
				}
				if got := positions(f.readAll(after, tt.filter, 1000)); !slices.Equal(got, wantAfter) {
					t.Fatalf("after %d: positions\n got %v\nwant %v", after, got, wantAfter)
				}
			}
		})
	}
	t.Run("past the head", func(t *testing.T) {
		f := f.in(t)
		if got := f.readAll(all[47].Position+1000, eventstore.Filter{}, 10); len(got) != 0 {
			t.Fatalf("read %d events past the head", len(got))
		}
	})
}

func (s suite) testHead(t *testing.T) {
	f := s.setup(t)
	if h := f.head(); h != 0 {
		t.Fatalf("head of an empty store %d, want 0", h)
	}
	var last uint64
	for i := range 5 {
		res := f.append(stream("bot", "org1", fmt.Sprint(i%2)), eventstore.Any(), events("org1", "X", i+1)...)
		if res.LastPosition <= last {
			t.Fatalf("append %d ended at %d, previous at %d", i, res.LastPosition, last)
		}
		last = res.LastPosition
		if h := f.head(); h != last {
			t.Fatalf("head %d after an append ending at %d", h, last)
		}
	}
	if _, err := f.store.Append(f.ctx, stream("bot", "org1", "0"), eventstore.NoStream(), events("org1", "X", 1)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append = %v, want ErrConflict", err)
	}
	if h := f.head(); h != last {
		t.Fatalf("head %d after a conflict, want %d", h, last)
	}
}

func (s suite) testConcurrentSameStream(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "contended")
	f.append(st, eventstore.NoStream(), event("org1", "Created", 0))
	const rounds, writers = 15, 8
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				<-start
				_, errs[w] = f.store.Append(f.ctx, st, eventstore.Exact(uint64(round)), []eventstore.NewEvent{event("org1", "Won", w)})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both won version %d", round, winner, w, round+1)
			case err == nil:
				winner = w
			case !errors.Is(err, eventstore.ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want ErrConflict", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		got := f.readStream(st, uint64(round+1), 10)
		if len(got) != 1 || dataN(t, got[0]) != winner {
			t.Fatalf("round %d: stream holds %d events from version %d, want writer %d's one", round, len(got), round+1, winner)
		}
	}
	if got := f.readStream(st, 0, 100); !slices.Equal(versions(got), seq(0, rounds+1)) {
		t.Fatalf("versions %v, want 0..%d", versions(got), rounds)
	}
}

func (s suite) testConcurrentDifferentStreams(t *testing.T) {
	f := s.setup(t)
	const writers, appends = 16, 20
	type landed struct {
		res    eventstore.AppendResult
		stream eventstore.StreamName
		size   int
	}
	results := make([][]landed, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			org := fmt.Sprintf("org%d", w%3)
			st := stream("bot", org, fmt.Sprintf("w%d", w))
			for i := range appends {
				size := 1 + (w+i)%3
				expected := eventstore.NoStream()
				if i > 0 {
					expected = eventstore.Exact(results[w][i-1].res.LastVersion)
				}
				res, err := f.store.Append(f.ctx, st, expected, events(org, "X", size))
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
				results[w] = append(results[w], landed{res, st, size})
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	all := f.readEverything(eventstore.Filter{})
	total := 0
	for _, rs := range results {
		for _, r := range rs {
			total += r.size
		}
	}
	if len(all) != total {
		t.Fatalf("log has %d events, want %d", len(all), total)
	}
	s.checkPositions(t, all)
	byPosition := make(map[uint64]eventstore.Envelope, len(all))
	for _, env := range all {
		byPosition[env.Position] = env
	}
	for w, rs := range results {
		var next uint64
		for i, r := range rs {
			if r.res.FirstVersion != next || r.res.LastVersion != next+uint64(r.size)-1 {
				t.Fatalf("writer %d append %d: versions %d..%d, want %d..%d", w, i, r.res.FirstVersion, r.res.LastVersion, next, next+uint64(r.size)-1)
			}
			env, ok := byPosition[r.res.FirstPosition]
			if !ok || env.Stream != r.stream || env.StreamVersion != r.res.FirstVersion {
				t.Fatalf("writer %d append %d: position %d holds %+v", w, i, r.res.FirstPosition, env)
			}
			next += uint64(r.size)
		}
		if got := f.readStream(rs[0].stream, 0, 1000); !slices.Equal(versions(got), seq(0, next)) {
			t.Fatalf("writer %d stream versions %v, want 0..%d", w, versions(got), next-1)
		}
	}
}

// subscriber runs Subscribe in the background and collects what it gets.
type subscriber struct {
	mu     sync.Mutex
	got    []eventstore.Envelope
	more   chan struct{} // receives after each delivery
	done   chan error
	cancel context.CancelFunc
}

func (f *fixture) subscribe(after uint64, filter eventstore.Filter) *subscriber {
	ctx, cancel := context.WithCancel(f.ctx)
	sub := &subscriber{more: make(chan struct{}, 1), done: make(chan error, 1), cancel: cancel}
	go func() {
		sub.done <- f.store.Subscribe(ctx, after, filter, func(env eventstore.Envelope) error {
			sub.mu.Lock()
			sub.got = append(sub.got, env)
			sub.mu.Unlock()
			select {
			case sub.more <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	f.t.Cleanup(func() {
		cancel()
		<-sub.done
	})
	return sub
}

// waitFor waits until the subscriber has at least n events and returns them.
func (sub *subscriber) waitFor(t *testing.T, n int) []eventstore.Envelope {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		sub.mu.Lock()
		got := slices.Clone(sub.got)
		sub.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-sub.more:
		case err := <-sub.done:
			t.Fatalf("Subscribe returned %v after %d of %d events", err, len(got), n)
		case <-deadline:
			t.Fatalf("subscriber has %d of %d events after 30s", len(got), n)
		}
	}
}

// settle gives a subscriber the chance to deliver events it should not.
func (sub *subscriber) settle(t *testing.T, want int) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.got) != want {
		t.Fatalf("subscriber has %d events, want exactly %d", len(sub.got), want)
	}
}

func (sub *subscriber) stop(t *testing.T) error {
	t.Helper()
	sub.cancel()
	select {
	case err := <-sub.done:
		sub.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return within 10s of its context ending")
		return nil
	}
}

func samePositions(t *testing.T, got, want []eventstore.Envelope) {
	t.Helper()
	if !slices.Equal(positions(got), positions(want)) {
		t.Fatalf("delivered positions\n got %v\nwant %v", positions(got), positions(want))
	}
}

func (s suite) testSubscribeHistoryThenLive(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "b1")
	f.append(st, eventstore.NoStream(), events("org1", "History", 3)...)
	sub := f.subscribe(0, eventstore.Filter{})
	got := sub.waitFor(t, 3)
	for i := range 4 {
		f.append(st, eventstore.Any(), event("org1", "Live", i))
	}
	f.append(stream("kb", "org1", "k"), eventstore.Any(), events("org1", "Live", 2)...)
	got = sub.waitFor(t, 9)
	sub.settle(t, 9)
	samePositions(t, got, f.readEverything(eventstore.Filter{}))
	s.checkPositions(t, got)
	if err := sub.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v after cancel, want context.Canceled", err)
	}
	// The envelopes delivered are whole.
	if got[0].Type != "History" || got[3].Type != "Live" || got[0].OrgID != "org1" || got[0].ID == uuid.Nil || dataN(t, got[4]) != 1 {
		t.Fatalf("delivered envelopes are not the appended events: %+v", got[:5])
	}
}

func (s suite) testSubscribeFromPosition(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "b1")
	f.append(st, eventstore.NoStream(), events("org1", "X", 5)...)
	all := f.readEverything(eventstore.Filter{})
	tests := []struct {
		name  string
		after uint64
		want  []eventstore.Envelope
	}{
		{"start", 0, all},
		{"middle", all[2].Position, all[3:]},
		{"head", all[4].Position, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			sub := f.subscribe(tt.after, eventstore.Filter{})
			got := sub.waitFor(t, len(tt.want))
			sub.settle(t, len(tt.want))
			samePositions(t, got, tt.want)
			_ = sub.stop(t)
		})
	}
	t.Run("then live", func(t *testing.T) {
		f := f.in(t)
		sub := f.subscribe(all[4].Position, eventstore.Filter{})
		res := f.append(st, eventstore.Exact(4), event("org1", "Y", 0))
		got := sub.waitFor(t, 1)
		if len(got) != 1 || got[0].Position != res.FirstPosition {
			t.Fatalf("got positions %v, want [%d]", positions(got), res.FirstPosition)
		}
		_ = sub.stop(t)
	})
}

func (s suite) testSubscribeBoundary(t *testing.T) {
	f := s.setup(t)
	const history, writers, live = 300, 4, 100
	for i := range history / 3 {
		f.append(stream("bot", "org1", fmt.Sprint(i%7)), eventstore.Any(), events("org1", "History", 3)...)
	}

	// A slow start makes the subscriber still be catching up while the
	// writers append.
	var (
		mu      sync.Mutex
		got     []eventstore.Envelope
		started = make(chan struct{})
		enough  = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- f.store.Subscribe(ctx, 0, eventstore.Filter{}, func(env eventstore.Envelope) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, env)
			switch len(got) {
			case 1:
				close(started)
			case history + writers*live:
				close(enough)
			}
			if len(got) < history/2 {
				time.Sleep(100 * time.Microsecond)
			}
			return nil
		})
	}()
	<-started

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			org := fmt.Sprintf("org%d", w)
			for i := range live {
				if _, err := f.store.Append(f.ctx, stream("kb", org, "k"), eventstore.Any(), []eventstore.NewEvent{event(org, "Live", i)}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-enough:
	case err := <-done:
		t.Fatalf("Subscribe returned %v early", err)
	case <-time.After(30 * time.Second):
		mu.Lock()
		n := len(got)
		mu.Unlock()
		t.Fatalf("subscriber has %d of %d events after 30s", n, history+writers*live)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := f.readEverything(eventstore.Filter{})
	samePositions(t, got, want)
	for i := range got {
		if got[i].ID != want[i].ID {
			t.Fatalf("event at position %d delivered with id %s, log has %s", got[i].Position, got[i].ID, want[i].ID)
		}
	}
}

func (s suite) testSubscribeFilter(t *testing.T) {
	f := s.setup(t)
	filter := eventstore.Filter{OrgID: "org1", Categories: []string{"bot"}, Types: []string{"BotCreated", "BotDeleted"}}
	appendMixed := func(n int) {
		for _, org := range []string{"org1", "org2"} {
			f.append(stream("bot", org, "b"), eventstore.Any(), event(org, "BotCreated", n), event(org, "BotRenamed", n), event(org, "BotDeleted", n))
			f.append(stream("kb", org, "k"), eventstore.Any(), event(org, "BotCreated", n))
		}
	}
	for i := range 3 {
		appendMixed(i)
	}
	sub := f.subscribe(0, filter)
	sub.waitFor(t, 6)
	for i := 3; i < 6; i++ {
		appendMixed(i)
	}
	got := sub.waitFor(t, 12)
	sub.settle(t, 12)
	var want []eventstore.Envelope
	for _, env := range f.readEverything(eventstore.Filter{}) {
		if filter.Match(env) {
			want = append(want, env)
		}
	}
	samePositions(t, got, want)
	for _, env := range got {
		if !filter.Match(env) {
			t.Fatalf("delivered %s %s of %s, which the filter excludes", env.Type, env.Stream, env.OrgID)
		}
	}
}

func (s suite) testSubscribeHandlerError(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "b1")
	f.append(st, eventstore.NoStream(), events("org1", "X", 2)...)
	errBoom := errors.New("boom")
	tests := []struct {
		name   string
		failAt int // 1-based delivery that fails
	}{
		{"in history", 2},
		{"live", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			var calls int
			done := make(chan error, 1)
			go func() {
				done <- f.store.Subscribe(f.ctx, 0, eventstore.Filter{}, func(eventstore.Envelope) error {
					calls++
					if calls == tt.failAt {
						return errBoom
					}
					return nil
				})
			}()
			if tt.failAt > 2 {
				time.Sleep(20 * time.Millisecond)
				f.append(stream("bot", "org1", "live"), eventstore.Any(), event("org1", "Y", 0))
			}
			select {
			case err := <-done:
				if !errors.Is(err, errBoom) {
					t.Fatalf("Subscribe = %v, want the handler's error", err)
				}
				if calls != tt.failAt {
					t.Fatalf("handler called %d times after failing at call %d", calls, tt.failAt)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Subscribe did not return the handler's error")
			}
		})
	}
}

func (s suite) testSubscribeContextError(t *testing.T) {
	f := s.setup(t)
	f.append(stream("bot", "org1", "b1"), eventstore.NoStream(), events("org1", "X", 2)...)
	t.Run("canceled while live", func(t *testing.T) {
		f := f.in(t)
		sub := f.subscribe(0, eventstore.Filter{})
		sub.waitFor(t, 2)
		if err := sub.stop(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe = %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		f := f.in(t)
		ctx, cancel := context.WithTimeout(f.ctx, 50*time.Millisecond)
		defer cancel()
		err := f.store.Subscribe(ctx, 0, eventstore.Filter{}, func(eventstore.Envelope) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		f := f.in(t)
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		var calls int
		err := f.store.Subscribe(ctx, 0, eventstore.Filter{}, func(eventstore.Envelope) error { calls++; return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe = %v, want context.Canceled", err)
		}
		if calls > 0 {
			t.Fatalf("handler called %d times under a canceled context", calls)
		}
	})
}

func (s suite) testClose(t *testing.T) {
	f := s.setup(t)
	st := stream("bot", "org1", "b1")
	f.append(st, eventstore.NoStream(), events("org1", "X", 2)...)
	sub := f.subscribe(0, eventstore.Filter{})
	sub.waitFor(t, 2)

	if err := f.store.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-sub.done:
		sub.done <- err
		if err != nil && !errors.Is(err, eventstore.ErrClosed) {
			t.Fatalf("Subscribe returned %v when the store closed, want ErrClosed or nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return within 10s of Close")
	}

	ctx := f.ctx
	if _, err := f.store.Append(ctx, st, eventstore.Any(), events("org1", "X", 1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := f.store.ReadStream(ctx, st, 0, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadStream after Close = %v, want ErrClosed", err)
	}
	if _, err := f.store.ReadAll(ctx, 0, eventstore.Filter{}, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadAll after Close = %v, want ErrClosed", err)
	}
	if err := f.store.Subscribe(ctx, 0, eventstore.Filter{}, func(eventstore.Envelope) error { return nil }); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
	_ = f.store.Close() // a second Close must not panic or hang
}
