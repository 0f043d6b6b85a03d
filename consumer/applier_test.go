package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/projections/memory"
)

// txModel is a read model kept with its checkpoint as a database keeps
// them: a unit of work writes into a transaction that is committed, with
// the position, only when the whole unit succeeds, and discarded
// otherwise.
type txModel struct {
	mu       sync.Mutex
	applied  []uint64 // committed, in the order applied
	position uint64
	units    int // committed units
	failed   int // units rolled back
}

type txKey struct{}

// tx is one unit of work's writes.
type tx struct{ applied []uint64 }

func (m *txModel) Position(context.Context, string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.position, nil
}

func (m *txModel) Advance(ctx context.Context, _ string, position uint64, apply func(context.Context) error) error {
	t := &tx{}
	if err := apply(context.WithValue(ctx, txKey{}, t)); err != nil {
		m.mu.Lock()
		m.failed++
		m.mu.Unlock()
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = append(m.applied, t.applied...)
	m.position = max(m.position, position)
	m.units++
	return nil
}

func (m *txModel) snapshot() (applied []uint64, units, failed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.applied), m.units, m.failed
}

// group returns the model's projection: each BotCreated records its
// position in the unit's transaction, after before (when set) let it.
func (m *txModel) group(before func(env eventstore.Envelope) error) *consumer.Group {
	return &consumer.Group{Name: "tx", Checkpoints: m, Handlers: []consumer.Handler{
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *bots.BotCreated) error {
			if before != nil {
				if err := before(env); err != nil {
					return err
				}
			}
			t := ctx.Value(txKey{}).(*tx)
			t.applied = append(t.applied, env.Position)
			return nil
		}),
	}}
}

// busBundle is an engine attached to a GoChannel that blocks each publish
// until the group acknowledges the message, as Kafka's one partition
// hands out the next message only after the previous one's ack.
type busBundle struct {
	engine *consumer.Engine
	pubsub *gochannel.GoChannel
	router *message.Router
}

func attach(t *testing.T, engine *consumer.Engine) *busBundle {
	t.Helper()
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Attach(router, "events", func(string) (message.Subscriber, error) { return pubsub, nil }); err != nil {
		t.Fatal(err)
	}
	go func() { _ = router.Run(context.Background()) }()
	<-router.Running()
	b := &busBundle{engine: engine, pubsub: pubsub, router: router}
	t.Cleanup(b.stop)
	return b
}

// stop closes the router and stops the engine, as App.Close does.
func (b *busBundle) stop() {
	_ = b.router.Close()
	b.engine.Stop()
	_ = b.pubsub.Close()
}

// publishAll publishes envs in order and fails the test unless every
// publish is acknowledged within a few seconds.
func (b *busBundle) publishAll(t *testing.T, envs []eventstore.Envelope) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		for _, env := range envs {
			msg, err := eventstore.ToMessage(env)
			if err == nil {
				err = b.pubsub.Publish("events", msg)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the bus did not get every delivery acknowledged while an apply was held back: " +
			"the group must acknowledge what it queued, not wait for the apply")
	}
}

func botEvents(t *testing.T, from, to uint64) []eventstore.Envelope {
	t.Helper()
	var envs []eventstore.Envelope
	for pos := from; pos <= to; pos++ {
		envs = append(envs, envelope(t, pos, "org-a", fmt.Sprintf("bot-%d", pos)))
	}
	return envs
}

func positions(from, to uint64) []uint64 {
	var out []uint64
	for pos := from; pos <= to; pos++ {
		out = append(out, pos)
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestAppliesQueuedEventsInOrderAndInBatches: while the group's first
// apply is held back, the bus gets every later event acknowledged (they
// wait in the group's queue), the consistency wait does not report them,
// and once the apply goes on they are applied once each, in log order,
// in far fewer units of work than events.
func TestAppliesQueuedEventsInOrderAndInBatches(t *testing.T) {
	t.Parallel()
	const n = 300
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	entered := make(chan struct{})
	model := &txModel{}
	engine := consumer.NewEngine(quietLogger(), nil, model.group(func(env eventstore.Envelope) error {
		if env.Position == 1 {
			close(entered)
			<-release
		}
		return nil
	}))
	b := attach(t, engine)
	t.Cleanup(free) // before the engine stops (cleanups run last first)
	b.publishAll(t, botEvents(t, 1, 1))
	<-entered
	b.publishAll(t, botEvents(t, 2, n))

	// Queued is not applied: nobody may read position n as reached.
	wait, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := engine.WaitFor(wait, 1); err == nil {
		t.Fatal("WaitFor reported position 1 reached while its apply was still held back")
	}
	if pos := engine.Position(); pos != 0 {
		t.Fatalf("position %d before anything was applied, want 0", pos)
	}

	free()
	wait, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := engine.WaitFor(wait, n); err != nil {
		t.Fatal(err)
	}
	applied, units, _ := model.snapshot()
	if !slices.Equal(applied, positions(1, n)) {
		t.Fatalf("applied %v, want 1..%d once each in order", applied, n)
	}
	// The first unit holds event 1 alone; what queued behind it is
	// applied in batches (at most 500 each).
	if units > 3 {
		t.Fatalf("%d units of work for %d events, want batches", units, n)
	}
}

// TestFailedBatchIsRetriedWithoutLoss: an apply that keeps failing holds
// its batch (and everything after it) back without losing it, however
// many events the bus has meanwhile had acknowledged; once the failure
// clears, every event is applied once, in order.
func TestFailedBatchIsRetriedWithoutLoss(t *testing.T) {
	t.Parallel()
	const n, bad = 200, 50
	var failing atomic.Bool
	failing.Store(true)
	model := &txModel{}
	engine := consumer.NewEngine(quietLogger(), nil, model.group(func(env eventstore.Envelope) error {
		if env.Position == bad && failing.Load() {
			return errors.New("the database is away")
		}
		return nil
	}))
	b := attach(t, engine)
	b.publishAll(t, botEvents(t, 1, n))

	// The failing batch is retried: the failures pile up, the position
	// stays before the failing event.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, failed := model.snapshot()
		if failed >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d failed attempts, want the failing batch retried", failed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if pos := engine.Position(); pos >= bad {
		t.Fatalf("position %d while the event at %d fails, want before it", pos, bad)
	}

	failing.Store(false)
	wait, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := engine.WaitFor(wait, n); err != nil {
		t.Fatal(err)
	}
	applied, _, _ := model.snapshot()
	if !slices.Equal(applied, positions(1, n)) {
		t.Fatalf("applied %v, want 1..%d once each in order", applied, n)
	}
}

// TestCrashMidBatchAppliesEachEventOnce: the process dies while a batch
// is being applied, with later events acknowledged to the bus and still
// queued. Nothing of the batch was committed; the next start catches up
// from the log (Rebuild) and the bus then redelivers everything from an
// old offset: each event is applied exactly once, in order.
func TestCrashMidBatchAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	const n, crashAt = 300, 120
	ctx := context.Background()
	store, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for _, env := range botEvents(t, 1, n) {
		if _, err := store.Append(ctx, env.Stream, eventstore.NoStream(), []eventstore.NewEvent{{Type: env.Type, Metadata: env.Metadata, Data: env.Data}}); err != nil {
			t.Fatal(err)
		}
	}
	logged, err := store.ReadAll(ctx, 0, eventstore.Filter{}, n+1)
	if err != nil || len(logged) != n {
		t.Fatalf("read the log: %d events, %v", len(logged), err)
	}

	model := &txModel{}
	// The first life: event 1's apply is held until every other event is
	// acknowledged and queued behind it, so the next batch holds 2..n; the
	// process dies at crashAt, in the middle of it (its transaction never
	// commits).
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	entered := make(chan struct{})
	var crashed atomic.Bool
	first := consumer.NewEngine(quietLogger(), nil, model.group(func(env eventstore.Envelope) error {
		switch env.Position {
		case 1:
			close(entered)
			<-release
		case crashAt:
			crashed.Store(true)
		}
		if crashed.Load() {
			return errors.New("killed")
		}
		return nil
	}))
	b := attach(t, first)
	t.Cleanup(free)
	b.publishAll(t, logged[:1])
	<-entered
	b.publishAll(t, logged[1:])
	free()
	deadline := time.Now().Add(10 * time.Second)
	for !crashed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the batch never reached the crash")
		}
		time.Sleep(time.Millisecond)
	}
	b.stop()
	applied, _, _ := model.snapshot()
	if !slices.Equal(applied, []uint64{1}) {
		t.Fatalf("committed %v before the crash, want [1]", applied)
	}

	// The next life: catch up from the log, then the bus redelivers all.
	second := consumer.NewEngine(quietLogger(), nil, model.group(nil))
	if _, err := second.Rebuild(ctx, store); err != nil {
		t.Fatal(err)
	}
	attach(t, second).publishAll(t, logged)
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := second.WaitFor(wait, uint64(n)); err != nil {
		t.Fatal(err)
	}
	applied, _, _ = model.snapshot()
	if !slices.Equal(applied, positions(1, n)) {
		t.Fatalf("applied %v, want 1..%d once each in order", applied, n)
	}
}

// TestFailedUnitThatKeepsWritesIsNotRepeated: with checkpoints that
// cannot roll a failed unit back (memory), the events of a batch applied
// before the failing one stay applied and are not applied again by the
// retry; the failing one and the rest are applied once it succeeds.
func TestFailedUnitThatKeepsWritesIsNotRepeated(t *testing.T) {
	t.Parallel()
	const n, bad = 200, 120
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	entered := make(chan struct{})
	var failures atomic.Int32
	var mu sync.Mutex
	var applied []uint64
	group := &consumer.Group{Name: "keeps", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *bots.BotCreated) error {
			switch {
			case env.Position == 1:
				close(entered)
				<-release
			case env.Position == bad && failures.Load() < 2:
				failures.Add(1)
				return errors.New("transient failure")
			}
			mu.Lock()
			defer mu.Unlock()
			applied = append(applied, env.Position)
			return nil
		}),
	}}
	engine := consumer.NewEngine(quietLogger(), memory.NewCheckpoints(), group)
	b := attach(t, engine)
	t.Cleanup(free)
	// Event 1 is held so that 2..n queue into one batch that fails at bad.
	b.publishAll(t, botEvents(t, 1, 1))
	<-entered
	b.publishAll(t, botEvents(t, 2, n))
	free()
	wait, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := engine.WaitFor(wait, n); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failures.Load() != 2 || !slices.Equal(applied, positions(1, n)) {
		t.Fatalf("%d failures; applied %v, want 1..%d once each in order", failures.Load(), applied, n)
	}
}

// TestUndecodableEventHoldsTheGroup: an event whose payload does not
// decode is acknowledged to the bus like any other, but the group never
// moves past it (cqrs's dispatch, run by the applier, fails and is
// retried), so nothing after it is applied out of order or skipped.
func TestUndecodableEventHoldsTheGroup(t *testing.T) {
	t.Parallel()
	model := &txModel{}
	// Event 1 is held until the others are queued, so 2..5 are one
	// batch, whose third event does not decode.
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	entered := make(chan struct{})
	engine := consumer.NewEngine(quietLogger(), nil, model.group(func(env eventstore.Envelope) error {
		if env.Position == 1 {
			close(entered)
			<-release
		}
		return nil
	}))
	b := attach(t, engine)
	t.Cleanup(free)
	envs := botEvents(t, 1, 5)
	envs[3].Data = []byte(`{"id": 7}`) // an id that is not a string
	b.publishAll(t, envs[:1])
	<-entered
	b.publishAll(t, envs[1:])
	free()
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := engine.WaitFor(wait, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a few retries
	if pos := engine.Position(); pos != 3 {
		t.Fatalf("position %d, want 3: before the event that does not decode, and not past it", pos)
	}
	applied, _, _ := model.snapshot()
	if !slices.Equal(applied, []uint64{1, 2, 3}) {
		t.Fatalf("applied %v, want [1 2 3]", applied)
	}
}
