package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/storetest"
)

// mustOpen opens a store at path with cfg and closes it when the test ends.
func mustOpen(t testing.TB, path string, cfg config) *Store {
	t.Helper()
	s, err := open(context.Background(), path, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	})
	return s
}

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "events.db")
}

func TestContract(t *testing.T) {
	t.Parallel()
	// The default store, then variants that push reads and batches
	// through their less travelled paths: no in-memory tail (every read
	// from the file), a tail so small that subscribers cross from the file
	// to memory constantly, and batches of one request.
	variants := []struct {
		name   string
		change func(*config)
	}{
		{"default", func(*config) {}},
		{"no tail", func(c *config) { c.tailSize = 0 }},
		{"tiny tail", func(c *config) { c.tailSize = 3 }},
		{"unbatched", func(c *config) { c.maxBatchRequests = 1; c.maxCachedStreams = 2 }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			v.change(&cfg)
			storetest.Run(t, func(t *testing.T) eventstore.Store {
				return mustOpen(t, tempPath(t), cfg)
			})
		})
	}
}

func event(org, typ string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{
		Type:     typ,
		Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "u", Kind: "user"}, SchemaVersion: 1},
		Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func readAll(t *testing.T, s *Store) []eventstore.Envelope {
	t.Helper()
	envs, err := s.ReadAll(context.Background(), 0, eventstore.Filter{}, 0)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return envs
}

func TestReopenFindsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	first, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	streams := []eventstore.StreamName{
		eventstore.MustStreamName("bot", "org1", "a"),
		eventstore.MustStreamName("kb", "org2", "b"),
	}
	for i := range 20 {
		st := streams[i%2]
		if _, err := first.Append(ctx, st, eventstore.Any(), []eventstore.NewEvent{event(st.OrgID, "E", i), event(st.OrgID, "F", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.SaveCheckpoint(ctx, "relay", 17); err != nil {
		t.Fatal(err)
	}
	before := readAll(t, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := mustOpen(t, path, defaultConfig())
	after := readAll(t, second)
	if len(after) != 40 || len(before) != 40 {
		t.Fatalf("read %d events before and %d after reopening, want 40", len(before), len(after))
	}
	for i := range after {
		b, a := before[i], after[i]
		if a.ID != b.ID || a.Position != b.Position || a.Stream != b.Stream || a.StreamVersion != b.StreamVersion ||
			string(a.Data) != string(b.Data) || !a.OccurredAt.Equal(b.OccurredAt) || a.Type != b.Type || a.OrgID != b.OrgID {
			t.Fatalf("event %d changed across reopen:\nbefore %+v\n after %+v", i, b, a)
		}
	}
	if head, _ := second.Head(ctx); head != 40 {
		t.Fatalf("head %d after reopen, want 40", head)
	}
	if pos, err := second.LoadCheckpoint(ctx, "relay"); err != nil || pos != 17 {
		t.Fatalf("LoadCheckpoint = %d, %v; want 17", pos, err)
	}
	// The reopened store knows each stream's version: stale expectations
	// conflict, current ones append after the last position.
	if _, err := second.Append(ctx, streams[0], eventstore.Exact(18), []eventstore.NewEvent{event("org1", "G", 0)}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("stale append after reopen = %v, want ErrConflict", err)
	}
	res, err := second.Append(ctx, streams[0], eventstore.Exact(19), []eventstore.NewEvent{event("org1", "G", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 20 || res.FirstPosition != 41 {
		t.Fatalf("append after reopen landed at version %d position %d, want 20 and 41", res.FirstVersion, res.FirstPosition)
	}
	// A subscriber from the start reads the file, then the new event.
	var got []uint64
	sctx, cancel := context.WithCancel(ctx)
	err = second.Subscribe(sctx, 0, eventstore.Filter{}, func(env eventstore.Envelope) error {
		got = append(got, env.Position)
		if len(got) == 41 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(got) != 41 || got[40] != 41 {
		t.Fatalf("Subscribe = %v after %d events", err, len(got))
	}
}

// A second Store on an open file is refused: the writer's cache of stream
// versions and positions is only right while it is the file's only writer.
func TestSecondOpenIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	first := mustOpen(t, path, defaultConfig())
	if _, err := Open(ctx, path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	// The failed Open disturbed nothing.
	st := eventstore.MustStreamName("bot", "org1", "a")
	if _, err := first.Append(ctx, st, eventstore.NoStream(), []eventstore.NewEvent{event("org1", "E", 0)}); err != nil {
		t.Fatalf("append after a refused second Open: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Once closed, the file opens again.
	again := mustOpen(t, path, defaultConfig())
	if got := readAll(t, again); len(got) != 1 {
		t.Fatalf("reopened store has %d events, want 1", len(got))
	}
}

func TestOpenRefusesBadPaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro", filepath.Join(t.TempDir(), "missing", "x.db")} {
		if s, err := Open(context.Background(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestDuplicateEventIDConflictsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mustOpen(t, tempPath(t), defaultConfig())
	id := uuid.Must(uuid.NewV7())
	withID := event("org1", "E", 0)
	withID.ID = id
	st := eventstore.MustStreamName("bot", "org1", "a")
	if _, err := s.Append(ctx, st, eventstore.NoStream(), []eventstore.NewEvent{withID}); err != nil {
		t.Fatal(err)
	}
	// Many appends share a batch; the one reusing the id fails, the rest
	// land.
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() {
			e := event("org1", "E", i)
			if i == 7 {
				e = withID
			}
			_, errs[i] = s.Append(ctx, eventstore.MustStreamName("bot", "org1", fmt.Sprint("s", i)), eventstore.NoStream(), []eventstore.NewEvent{e})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == 7 && !errors.Is(err, eventstore.ErrConflict) {
			t.Fatalf("append reusing an id = %v, want ErrConflict", err)
		}
		if i != 7 && err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	all := readAll(t, s)
	if len(all) != 32 {
		t.Fatalf("log has %d events, want 32", len(all))
	}
	for i, env := range all {
		if env.Position != uint64(i+1) {
			t.Fatalf("positions have a gap: %d at index %d", env.Position, i)
		}
	}
}

// openHeld opens a store whose writer waits until release is called, so
// that everything queued before shares its first batch.
func openHeld(t *testing.T, path string) (s *Store, release func()) {
	cfg := defaultConfig()
	cfg.hold = make(chan struct{})
	s = mustOpen(t, path, cfg)
	var once sync.Once
	release = func() { once.Do(func() { close(cfg.hold) }) }
	t.Cleanup(release) // before Close, which waits for the writer
	return s, release
}

// enqueue queues an append for the writer without waiting for it.
func enqueue(t *testing.T, s *Store, st eventstore.StreamName, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) *request {
	t.Helper()
	req, err := newAppendRequest(context.Background(), st, expected, events)
	if err != nil {
		t.Fatal(err)
	}
	s.requests <- req
	return req
}

func dataNs(t *testing.T, envs []eventstore.Envelope) []int {
	t.Helper()
	var ns []int
	for _, env := range envs {
		var v struct{ N int }
		if err := json.Unmarshal(env.Data, &v); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, v.N)
	}
	return ns
}

// Requests to one stream in one batch see each other's versions.
func TestBatchSeesItsOwnVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, release := openHeld(t, tempPath(t))
	st := eventstore.MustStreamName("bot", "org1", "a")
	var reqs []*request
	for i, expected := range []eventstore.ExpectedVersion{eventstore.NoStream(), eventstore.NoStream(), eventstore.Exact(0), eventstore.Any(), eventstore.Exact(0)} {
		reqs = append(reqs, enqueue(t, s, st, expected, event("org1", "E", i)))
	}
	release()
	want := []error{nil, eventstore.ErrConflict, nil, nil, eventstore.ErrConflict}
	for i, req := range reqs {
		err := <-req.done
		if want[i] == nil && err != nil || want[i] != nil && !errors.Is(err, want[i]) {
			t.Fatalf("request %d = %v, want %v", i, err, want[i])
		}
	}
	got, err := s.ReadStream(ctx, st, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ns := dataNs(t, got); !slices.Equal(ns, []int{0, 2, 3}) {
		t.Fatalf("stream holds events %v, want [0 2 3]", ns)
	}
	if !slices.Equal([]uint64{reqs[2].result.FirstVersion, reqs[3].result.FirstVersion}, []uint64{1, 2}) {
		t.Fatalf("results %+v %+v", reqs[2].result, reqs[3].result)
	}
}

// A duplicate event id fails only its own request, also inside a batch
// whose rows go in multi-row INSERTs, and positions stay gapless.
func TestDuplicateIDInsideBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, release := openHeld(t, tempPath(t))
	dup := event("org1", "E", 99)
	dup.ID = uuid.Must(uuid.NewV7())
	var reqs []*request
	for i := range 40 {
		evs := []eventstore.NewEvent{event("org1", "E", i), event("org1", "E", i)}
		switch i {
		case 5, 30:
			evs[1] = dup // 5 lands first; 30 repeats its id
		case 17:
			evs = []eventstore.NewEvent{dup, dup} // repeats an id within itself and 5's
		}
		reqs = append(reqs, enqueue(t, s, eventstore.MustStreamName("bot", "org1", fmt.Sprint(i%3)), eventstore.Any(), evs...))
	}
	release()
	for i, req := range reqs {
		err := <-req.done
		if i == 17 || i == 30 {
			if !errors.Is(err, eventstore.ErrConflict) {
				t.Fatalf("request %d = %v, want ErrConflict", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	all := readAll(t, s)
	if len(all) != 76 {
		t.Fatalf("log has %d events, want 76", len(all))
	}
	versions := map[eventstore.StreamName]uint64{}
	for i, env := range all {
		if env.Position != uint64(i+1) || env.StreamVersion != versions[env.Stream] {
			t.Fatalf("event %d: position %d version %d", i, env.Position, env.StreamVersion)
		}
		versions[env.Stream]++
	}
	if head, _ := s.Head(ctx); head != 76 {
		t.Fatalf("head %d, want 76", head)
	}
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mustOpen(t, tempPath(t), defaultConfig())
	cp := s.Checkpoint("relay")
	if pos, err := cp.Load(ctx); err != nil || pos != 0 {
		t.Fatalf("missing checkpoint = %d, %v; want 0", pos, err)
	}
	for _, pos := range []uint64{5, 3, 1 << 40} {
		if err := cp.Save(ctx, pos); err != nil {
			t.Fatal(err)
		}
		if got, err := cp.Load(ctx); err != nil || got != pos {
			t.Fatalf("checkpoint = %d, %v; want %d", got, err, pos)
		}
	}
	if got, _ := s.LoadCheckpoint(ctx, "other"); got != 0 {
		t.Fatalf("other checkpoint = %d, want 0", got)
	}
	if err := s.SaveCheckpoint(ctx, "", 1); err == nil {
		t.Fatal("saved a checkpoint without a name")
	}
	s.Close()
	if err := s.SaveCheckpoint(ctx, "relay", 9); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("SaveCheckpoint after Close = %v, want ErrClosed", err)
	}
	if _, err := s.LoadCheckpoint(ctx, "relay"); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("LoadCheckpoint after Close = %v, want ErrClosed", err)
	}
}

// Close commits the appends already queued and refuses later ones; every
// Append returns either a durable result or ErrClosed.
func TestCloseWithAppendsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		succeeded []eventstore.AppendResult
	)
	for w := range 16 {
		wg.Go(func() {
			st := eventstore.MustStreamName("bot", "org1", fmt.Sprint(w))
			for i := 0; ; i++ {
				res, err := s.Append(ctx, st, eventstore.Any(), []eventstore.NewEvent{event("org1", "E", i)})
				if errors.Is(err, eventstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				succeeded = append(succeeded, res)
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	reopened := mustOpen(t, path, defaultConfig())
	all := readAll(t, reopened)
	if len(all) != len(succeeded) {
		t.Fatalf("file has %d events, %d appends succeeded", len(all), len(succeeded))
	}
	if len(all) == 0 {
		t.Fatal("no append succeeded before Close")
	}
}

// An append whose context ends while it waits in the queue writes nothing.
func TestCanceledQueuedAppendWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mustOpen(t, tempPath(t), defaultConfig())
	st := eventstore.MustStreamName("bot", "org1", "a")
	cctx, cancel := context.WithCancel(ctx)
	req, err := newAppendRequest(cctx, st, eventstore.Any(), []eventstore.NewEvent{event("org1", "E", 0)})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	s.requests <- req
	if err := <-req.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled request = %v, want context.Canceled", err)
	}
	if got := readAll(t, s); len(got) != 0 {
		t.Fatalf("canceled request wrote %d events", len(got))
	}
}

// Handlers may modify what they are given without changing what other
// subscribers or later reads see.
func TestDeliveredEnvelopesAreCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mustOpen(t, tempPath(t), defaultConfig())
	st := eventstore.MustStreamName("bot", "org1", "a")
	e := event("org1", "E", 1)
	e.Actor.Roles = []string{"owner"}
	if _, err := s.Append(ctx, st, eventstore.Any(), []eventstore.NewEvent{e}); err != nil {
		t.Fatal(err)
	}
	e.Data[0], e.Actor.Roles[0] = 'X', "changed by caller"
	for range 2 {
		got, err := s.ReadAll(ctx, 0, eventstore.Filter{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[0].Data) != `{"n":1}` || got[0].Actor.Roles[0] != "owner" {
			t.Fatalf("read %s %v", got[0].Data, got[0].Actor.Roles)
		}
		got[0].Data[0], got[0].Actor.Roles[0] = 'Y', "changed by reader"
	}
}

// The relay's pattern: a subscriber that saves its checkpoint for every
// event it handles, while appends go on.
func TestSubscriberSavesCheckpoints(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := mustOpen(t, tempPath(t), defaultConfig())
	cp := s.Checkpoint("relay")
	const total = 200
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, 0, eventstore.Filter{}, func(env eventstore.Envelope) error {
			if err := cp.Save(ctx, env.Position); err != nil {
				return err
			}
			if env.Position == total {
				cancel()
			}
			return nil
		})
	}()
	st := eventstore.MustStreamName("bot", "org1", "a")
	for i := range total {
		if _, err := s.Append(context.Background(), st, eventstore.Any(), []eventstore.NewEvent{event("org1", "E", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe = %v", err)
	}
	if pos, err := cp.Load(context.Background()); err != nil || pos != total {
		t.Fatalf("checkpoint = %d, %v; want %d", pos, err, total)
	}
}

// When a batch fails as a whole, every request in it gets the error, and
// the writer rereads the file before the next batch. A row written behind
// the writer's back (which the file lock exists to prevent) makes the
// batch fail on its position.
func TestBatchFailureRereadsTheFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	s, release := openHeld(t, path)
	intruder, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	id := uuid.New()
	if _, err := intruder.ExecContext(ctx, `INSERT INTO events (position, id, stream, version, category, org_id, type, occurred_at, metadata, data)
		VALUES (1, ?, 'bot-org1_x', 0, 'bot', 'org1', 'Intruded', 0, '{"org_id":"org1"}', X'7B7D')`, id[:]); err != nil {
		t.Fatal(err)
	}
	first := enqueue(t, s, eventstore.MustStreamName("bot", "org1", "a"), eventstore.Any(), event("org1", "E", 0))
	second := enqueue(t, s, eventstore.MustStreamName("bot", "org1", "b"), eventstore.Any(), event("org1", "E", 1))
	release()
	for _, req := range []*request{first, second} {
		if err := <-req.done; err == nil || errors.Is(err, eventstore.ErrConflict) {
			t.Fatalf("request in a failed batch = %v, want the batch's error", err)
		}
	}
	res, err := s.Append(ctx, eventstore.MustStreamName("bot", "org1", "x"), eventstore.Exact(0), []eventstore.NewEvent{event("org1", "E", 2)})
	if err != nil {
		t.Fatalf("append after a failed batch: %v", err)
	}
	if res.FirstPosition != 2 || res.FirstVersion != 1 {
		t.Fatalf("append landed at position %d version %d, want 2 and 1", res.FirstPosition, res.FirstVersion)
	}
	all := readAll(t, s)
	if len(all) != 2 || all[0].Type != "Intruded" || all[1].Position != 2 {
		t.Fatalf("log = %+v", all)
	}
}
