package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/palisadehq/palisade/bus/fanout"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/projections/memory"
)

// counting is a projection that counts bot creations per bot id.
type counting struct {
	mu      sync.Mutex
	created map[string]int
	orgs    map[string]string
}

func (c *counting) projection() *consumer.Group {
	return &consumer.Group{Name: "counting", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *bots.BotCreated) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.created[e.ID]++
			c.orgs[e.ID] = env.OrgID
			return nil
		}),
	}}
}

func (c *counting) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created[id]
}

// runOverBus attaches engine to a router on topic "events" with
// subscriber, runs the router until the test ends, and returns the
// context it runs under.
func runOverBus(t *testing.T, engine *consumer.Engine, subscriber consumer.SubscriberFunc) context.Context {
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Attach(router, "events", subscriber); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	return ctx
}

func envelope(t *testing.T, pos uint64, org, botID string) eventstore.Envelope {
	t.Helper()
	data, _ := json.Marshal(bots.BotCreated{ID: botID, Name: "b"})
	return eventstore.Envelope{
		ID: eventstore.NewEventID(), Type: "BotCreated", Position: pos,
		Stream: eventstore.MustStreamName(bots.Category, org, botID), Data: data,
		Metadata: eventstore.Metadata{OrgID: org, SchemaVersion: 1, OccurredAt: eventstore.Now()},
	}
}

// TestRedeliveryIsIgnored publishes events over a real Watermill router,
// then redelivers them: each is applied exactly once, and unknown event
// types still advance the projection's position.
func TestRedeliveryIsIgnored(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &counting{created: map[string]int{}, orgs: map[string]string{}}
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(), c.projection())
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	ctx := runOverBus(t, engine, func(string) (message.Subscriber, error) { return pubsub, nil })

	publish := func(env eventstore.Envelope) {
		msg, err := eventstore.ToMessage(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := pubsub.Publish("events", msg); err != nil {
			t.Fatal(err)
		}
	}
	first := envelope(t, 1, "org-a", "bot-1")
	second := envelope(t, 2, "org-b", "bot-2")
	other := envelope(t, 3, "org-a", "bot-3")
	other.Type = "SomethingElse"
	for _, env := range []eventstore.Envelope{first, second, first, second, other, first} {
		publish(env)
	}
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := engine.WaitFor(wait, 3); err != nil {
		t.Fatal(err)
	}
	if c.count("bot-1") != 1 || c.count("bot-2") != 1 {
		t.Fatalf("applied bot-1 %d times, bot-2 %d times; want once each", c.count("bot-1"), c.count("bot-2"))
	}
	if c.orgs["bot-2"] != "org-b" {
		t.Fatalf("handler saw org %q for bot-2", c.orgs["bot-2"])
	}
	if engine.Position() != 3 {
		t.Fatalf("position %d, want 3", engine.Position())
	}

	// A message whose org disagrees with its stream is never applied.
	forged := envelope(t, 4, "org-a", "bot-4")
	msg, _ := eventstore.ToMessage(forged)
	msg.Metadata.Set(eventstore.MetaOrgID, "org-b")
	if err := pubsub.Publish("events", msg); err != nil {
		t.Fatal(err)
	}
	publish(envelope(t, 5, "org-a", "bot-5"))
	if err := engine.WaitFor(wait, 5); err != nil {
		t.Fatal(err)
	}
	if c.count("bot-4") != 0 || c.count("bot-5") != 1 {
		t.Fatalf("forged message applied %d times", c.count("bot-4"))
	}
}

func TestRebuildThenWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for i, id := range []string{"a", "b", "c"} {
		env := envelope(t, 0, "org-a", id)
		res, err := store.Append(ctx, env.Stream, eventstore.NoStream(), []eventstore.NewEvent{{Type: env.Type, Metadata: env.Metadata, Data: env.Data}})
		if err != nil || res.LastPosition != uint64(i+1) {
			t.Fatalf("append: %+v %v", res, err)
		}
	}
	c := &counting{created: map[string]int{}, orgs: map[string]string{}}
	engine := consumer.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), memory.NewCheckpoints(), c.projection())
	pos, err := engine.Rebuild(ctx, store)
	if err != nil || pos != 3 {
		t.Fatalf("rebuild = %d, %v", pos, err)
	}
	// Rebuilding again applies nothing twice.
	if _, err := engine.Rebuild(ctx, store); err != nil {
		t.Fatal(err)
	}
	if c.count("a") != 1 || c.count("c") != 1 {
		t.Fatal("rebuild applied an event twice")
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := engine.WaitFor(short, 4); err == nil {
		t.Fatal("WaitFor returned for a position never applied")
	}
}

// TestStopWaitsForHandlers: Watermill's router may return from Close while
// a handler still runs (here, one past its CloseTimeout). Stop returns
// only once that handler has, so what it wrote happens before the caller
// goes on; a delivery after Stop is acknowledged without being applied.
func TestStopWaitsForHandlers(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free)
	// applied is deliberately unguarded: only Stop orders the handler's
	// write before the test's read, and the race detector checks that.
	var applied []string
	group := &consumer.Group{Name: "slow", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, _ eventstore.Envelope, e *bots.BotCreated) error {
			entered <- struct{}{}
			<-release
			applied = append(applied, e.ID)
			return nil
		}),
	}}
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(), group)
	run := func(closeTimeout time.Duration) (*message.Router, *gochannel.GoChannel) {
		pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: closeTimeout}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		if err := engine.Attach(router, "events", func(string) (message.Subscriber, error) { return pubsub, nil }); err != nil {
			t.Fatal(err)
		}
		go func() { _ = router.Run(context.Background()) }()
		<-router.Running()
		t.Cleanup(func() { _ = router.Close(); _ = pubsub.Close() })
		return router, pubsub
	}
	publish := func(pubsub *gochannel.GoChannel, env eventstore.Envelope) {
		msg, err := eventstore.ToMessage(env)
		if err != nil {
			t.Error(err)
			return
		}
		if err := pubsub.Publish("events", msg); err != nil {
			t.Error(err)
		}
	}

	router, pubsub := run(20 * time.Millisecond)
	go publish(pubsub, envelope(t, 1, "org-a", "bot-1"))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never ran")
	}
	_ = router.Close() // gives up on the handler after its CloseTimeout
	stopped := make(chan struct{})
	go func() {
		engine.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a handler was still applying an event")
	case <-time.After(200 * time.Millisecond):
	}
	free()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the handler did")
	}
	if len(applied) != 1 || applied[0] != "bot-1" || engine.Position() != 1 {
		t.Fatalf("after Stop: applied %v, position %d; want [bot-1] at 1", applied, engine.Position())
	}

	// A delivery after Stop (a router still handing over messages) is
	// acknowledged and not applied: the position stays where it was.
	_, later := run(time.Second)
	publish(later, envelope(t, 2, "org-a", "bot-2"))
	if len(applied) != 1 || engine.Position() != 1 {
		t.Fatalf("a delivery after Stop was applied: %v, position %d", applied, engine.Position())
	}
}

// TestFollowCatchesUpThenTails: Follow applies what the log holds, then
// each event appended while it runs, once, in order; it returns nil when
// its context ends, and a second Follow from the same checkpoints applies
// only what came after.
func TestFollowCatchesUpThenTails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	appendBot := func(id string) {
		t.Helper()
		env := envelope(t, 0, "org-a", id)
		if _, err := store.Append(ctx, env.Stream, eventstore.NoStream(), []eventstore.NewEvent{{Type: env.Type, Metadata: env.Metadata, Data: env.Data}}); err != nil {
			t.Fatal(err)
		}
	}
	appendBot("before")
	c := &counting{created: map[string]int{}, orgs: map[string]string{}}
	checkpoints := memory.NewCheckpoints()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := consumer.NewEngine(logger, checkpoints, c.projection())
	followCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- engine.Follow(followCtx, store) }()
	appendBot("during")
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := engine.WaitForGroup(wait, "counting", 2); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Follow = %v after its context ended, want nil", err)
	}
	appendBot("after")
	again := consumer.NewEngine(logger, checkpoints, c.projection())
	followCtx, stop = context.WithCancel(ctx)
	go func() { done <- again.Follow(followCtx, store) }()
	if err := again.WaitForGroup(wait, "counting", 3); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	for _, id := range []string{"before", "during", "after"} {
		if n := c.count(id); n != 1 {
			t.Errorf("%s applied %d times, want once", id, n)
		}
	}
}

// recordingOpener opens nothing and records the types it was asked to open.
type recordingOpener struct {
	mu     sync.Mutex
	opened []string
}

func (o *recordingOpener) Open(_ context.Context, env eventstore.Envelope) (eventstore.Envelope, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened = append(o.opened, env.Type)
	return env, nil
}

// TestEventsWithoutHandlerAreNotOpened: a group opens only the events it
// has a handler for; the others move its position all the same, so the
// consistency wait is not held back.
func TestEventsWithoutHandlerAreNotOpened(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &counting{created: map[string]int{}, orgs: map[string]string{}}
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(), c.projection())
	opener := &recordingOpener{}
	engine.OpenWith(opener)
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	ctx := runOverBus(t, engine, func(string) (message.Subscriber, error) { return pubsub, nil })
	other := envelope(t, 1, "org-a", "bot-0")
	other.Type = "SomethingElse"
	for _, env := range []eventstore.Envelope{other, envelope(t, 2, "org-a", "bot-1")} {
		msg, err := eventstore.ToMessage(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := pubsub.Publish("events", msg); err != nil {
			t.Fatal(err)
		}
	}
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := engine.WaitFor(wait, 2); err != nil {
		t.Fatal(err)
	}
	opener.mu.Lock()
	defer opener.mu.Unlock()
	if len(opener.opened) != 1 || opener.opened[0] != "BotCreated" || c.count("bot-1") != 1 {
		t.Fatalf("opened %v and applied bot-1 %d times; want only the BotCreated opened and applied once", opener.opened, c.count("bot-1"))
	}
}

// flakyOpener fails its first opening, then counts the ones it makes.
type flakyOpener struct {
	mu       sync.Mutex
	failed   bool
	opened   int
	failures int
}

func (o *flakyOpener) Open(_ context.Context, env eventstore.Envelope) (eventstore.Envelope, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.failed {
		o.failed = true
		o.failures++
		return eventstore.Envelope{}, errors.New("key store unreachable")
	}
	o.opened++
	return env, nil
}

// TestGroupsOpenEachEventOnceBetweenThem: every group receives its own
// copy of an event's message, but the event is parsed and opened once for
// all of them; an opening that failed is not kept, so the group that met
// it gets the event again and opens it.
func TestGroupsOpenEachEventOnceBetweenThem(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var counts []*counting
	var groups []*consumer.Group
	for _, name := range []string{"first", "second", "third"} {
		c := &counting{created: map[string]int{}, orgs: map[string]string{}}
		g := c.projection()
		g.Name = name
		counts, groups = append(counts, c), append(groups, g)
	}
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(), groups...)
	opener := &flakyOpener{}
	engine.OpenWith(opener)
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	ctx := runOverBus(t, engine, func(string) (message.Subscriber, error) { return pubsub, nil })
	for i, id := range []string{"bot-1", "bot-2"} {
		msg, err := eventstore.ToMessage(envelope(t, uint64(i+1), "org-a", id))
		if err != nil {
			t.Fatal(err)
		}
		if err := pubsub.Publish("events", msg); err != nil {
			t.Fatal(err)
		}
	}
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := engine.WaitFor(wait, 2); err != nil {
		t.Fatal(err)
	}
	for i, c := range counts {
		for _, id := range []string{"bot-1", "bot-2"} {
			if n := c.count(id); n != 1 {
				t.Errorf("group %s applied %s %d times, want once", groups[i].Name, id, n)
			}
		}
	}
	opener.mu.Lock()
	defer opener.mu.Unlock()
	if opener.failures != 1 || opener.opened != 2 {
		t.Errorf("opened %d times after %d failure; want each of the 2 events opened once for the 3 groups, after the 1 failure", opener.opened, opener.failures)
	}
}

// TestEveryTypeGroupOverTheBus: a group of OnEvery handlers, which cqrs
// dispatches through one handler, applies each event of a listed type
// once, with the apply listed for that type, next to an ordinary group,
// and ignores the types it does not list.
func TestEveryTypeGroupOverTheBus(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	seen := map[string][]uint64{}
	record := func(label string) func(context.Context, eventstore.Envelope) error {
		return func(_ context.Context, env eventstore.Envelope) error {
			mu.Lock()
			defer mu.Unlock()
			seen[label+" "+env.Type] = append(seen[label+" "+env.Type], env.Position)
			return nil
		}
	}
	every := &consumer.Group{Name: "every", Handlers: append(
		consumer.OnEvery([]domain.Event{bots.BotCreated{}}, record("created")),
		consumer.OnEvery([]domain.Event{bots.BotArchived{}}, record("archived"))...)}
	c := &counting{created: map[string]int{}, orgs: map[string]string{}}
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(), every, c.projection())
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	ctx := runOverBus(t, engine, func(string) (message.Subscriber, error) { return pubsub, nil })
	archived := envelope(t, 2, "org-a", "bot-1")
	archived.Type = "BotArchived"
	unlisted := envelope(t, 3, "org-a", "bot-1")
	unlisted.Type = "BotUpdated"
	for _, env := range []eventstore.Envelope{envelope(t, 1, "org-a", "bot-1"), archived, unlisted, envelope(t, 4, "org-a", "bot-2")} {
		msg, err := eventstore.ToMessage(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := pubsub.Publish("events", msg); err != nil {
			t.Fatal(err)
		}
	}
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := engine.WaitFor(wait, 4); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string][]uint64{"created BotCreated": {1, 4}, "archived BotArchived": {2}}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the every-type group applied %v, want %v", seen, want)
	}
	if c.count("bot-1") != 1 || c.count("bot-2") != 1 {
		t.Errorf("the ordinary group applied bot-1 %d and bot-2 %d times, want once each", c.count("bot-1"), c.count("bot-2"))
	}
}

// TestGroupsPassOverWhatTheyDoNotHandle: on a bus that hands a group only
// the events it has a handler for (bus/fanout with the engine's Wants and
// Pass), the group still reaches every position, in order, and applies
// what it handles once.
func TestGroupsPassOverWhatTheyDoNotHandle(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &counting{created: map[string]int{}, orgs: map[string]string{}}
	engine := consumer.NewEngine(logger, memory.NewCheckpoints(), c.projection())
	bus := fanout.New()
	t.Cleanup(func() { bus.Close() })
	ctx := runOverBus(t, engine, func(group string) (message.Subscriber, error) {
		return bus.Filtered(fanout.Filter{Wants: engine.Wants(group), Pass: engine.Pass(group)}), nil
	})
	var envs []eventstore.Envelope
	for i := range 6 {
		env := envelope(t, uint64(i+1), "org-a", fmt.Sprintf("bot-%d", i))
		if i%2 == 1 {
			env.Type = "SomethingElse"
		}
		envs = append(envs, env)
	}
	// The last two again: a redelivery, passed over or handled, changes nothing.
	envs = append(envs, envs[4], envs[5])
	for _, env := range envs {
		msg, err := eventstore.ToMessage(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Publish("events", msg); err != nil {
			t.Fatal(err)
		}
	}
	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	if err := engine.WaitFor(wait, 6); err != nil {
		t.Fatalf("the group did not reach the last position: %v", err)
	}
	for i := range 6 {
		want := 1 - i%2
		if n := c.count(fmt.Sprintf("bot-%d", i)); n != want {
			t.Errorf("bot-%d applied %d times, want %d", i, n, want)
		}
	}
}
