package kafka_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections/memory"
)

// TestConsumerResumesFromCommittedOffsets stops a consumer mid-stream and
// starts another in the same group: together they see every event, and
// the second starts where the first stopped, not at the beginning. A new
// group, meanwhile, starts at the oldest offset.
func TestConsumerResumesFromCommittedOffsets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	head := b.appendMix(t, 0, 20) // 80 events
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cp := eventstore.NewMemoryCheckpoint(0)
	b.runRelay(t, pub, kafka.TopicFunc(false), cp)
	waitCheckpoint(t, cp, head)
	topics := []string{"palisade.bot", "palisade.org"}

	const stopAfter = 30
	first := consume(t, b, "resume", stopAfter, topics...)
	seen := map[uint64]int{}
	for _, r := range first {
		seen[r.position]++
	}
	second := consumeUntil(t, b, "resume", func(got []received) bool {
		missing := int(head) - len(seen)
		for _, r := range got {
			if seen[r.position] == 0 {
				missing--
			}
		}
		return missing == 0
	}, topics...)
	// No loss, and no restart from the beginning: the second consumer
	// begins at each partition's committed offset, which may be behind the
	// last message the first one acknowledged (an acknowledgement racing
	// the subscriber's close is not committed; delivery is at least once).
	next := map[string]int64{}
	for _, r := range first {
		k := r.topic + "/" + strconv.Itoa(int(r.partition))
		next[k] = max(next[k], r.offset+1)
	}
	repeats := 0
	for _, r := range second {
		if seen[r.position] > 0 {
			repeats++
		}
		if k := r.topic + "/" + strconv.Itoa(int(r.partition)); r.offset < next[k]-1 {
			t.Errorf("second consumer read offset %d of %s, first one acknowledged up to %d", r.offset, k, next[k]-1)
		}
	}
	if repeats > len(next) {
		t.Errorf("%d events repeated, more than one per partition (%d)", repeats, len(next))
	}
	t.Logf("%d of %d events repeated after the restart", repeats, head)

	fresh := consume(t, b, "another-group", int(head), topics...)
	if !slices.ContainsFunc(fresh, func(r received) bool { return r.position == 1 }) {
		t.Fatal("a new group did not start at the oldest offset")
	}
}

// counter is a tiny projection: it counts how often each bot was created
// and each org renamed, so that a repeat shows.
type counter struct {
	mu      sync.Mutex
	bots    map[string]int
	renames map[string]int
	failed  bool
}

func newCounter() *counter { return &counter{bots: map[string]int{}, renames: map[string]int{}} }

func (c *counter) projections() []*consumer.Group {
	return []*consumer.Group{
		{Name: "bot-counter", Handlers: []consumer.Handler{
			consumer.On(func(_ context.Context, env eventstore.Envelope, e *bots.BotCreated) error {
				c.mu.Lock()
				defer c.mu.Unlock()
				// The first apply of bot-3 of org B fails once: the
				// group's applier applies it again (the events of its
				// batch before it stay applied, memory keeps them).
				if e.ID == "bot-3" && env.OrgID == orgB && !c.failed {
					c.failed = true
					return errors.New("transient failure")
				}
				c.bots[env.OrgID+"/"+e.ID]++
				return nil
			}),
		}},
		{Name: "rename-counter", Handlers: []consumer.Handler{
			consumer.On(func(_ context.Context, env eventstore.Envelope, e *tenancy.OrganizationRenamed) error {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.renames[e.Name]++
				return nil
			}),
		}},
	}
}

// startEngine attaches an engine of projections to the log topic on a
// router with the kafka subscriber, one consumer group per projection.
func startEngine(t testing.TB, b *bundle, ps ...*consumer.Group) *consumer.Engine {
	t.Helper()
	engine := consumer.NewEngine(b.logger, memory.NewCheckpoints(), ps...)
	wlog := watermill.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Attach(router, kafka.LogTopic, kafka.SubscriberFunc(b.brokers)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	select {
	case <-router.Running():
	case err := <-done:
		t.Fatalf("router: %v", err)
	}
	return engine
}

// TestProjectionsApplyEachEventOnce runs projections through the engine on
// the log topic and delivers events again, both by republishing the whole
// log (as a relay restarted from an old checkpoint would) and by an apply
// that fails once: each event is applied exactly once.
func TestProjectionsApplyEachEventOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := kafka.EnsureLogTopic(ctx, b.brokers); err != nil {
		t.Fatal(err)
	}
	head := b.appendMix(t, 0, 10) // 40 events
	c := newCounter()
	engine := startEngine(t, b, c.projections()...)
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cp := eventstore.NewMemoryCheckpoint(0)
	stop := b.runRelay(t, pub, kafka.LogTopicFunc(), cp)
	waitCheckpoint(t, cp, head)
	stop()
	wait, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := engine.WaitFor(wait, head); err != nil {
		t.Fatal(err)
	}

	// Republish everything, then one new event: once the engine has it,
	// it has been through every repeat before it (one partition, in order).
	again := eventstore.NewMemoryCheckpoint(0)
	b.runRelay(t, pub, kafka.LogTopicFunc(), again)
	sentinel := b.appendMix(t, 10, 1)
	if err := engine.WaitFor(wait, sentinel); err != nil {
		t.Fatal(err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.failed {
		t.Fatal("the failing delivery never happened")
	}
	if len(c.bots) != 2*11 || len(c.renames) != 2*11 {
		t.Fatalf("applied %d bots and %d renames, want 22 each", len(c.bots), len(c.renames))
	}
	for k, n := range c.bots {
		if n != 1 {
			t.Errorf("bot %s applied %d times", k, n)
		}
	}
	for k, n := range c.renames {
		if n != 1 {
			t.Errorf("rename %q applied %d times", k, n)
		}
	}
}

// TestEnsureLogTopic creates the log topic once, and refuses one that
// cannot carry the log's order: partitioned, or compacted.
func TestEnsureLogTopic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fresh, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for range 2 {
		if err := kafka.EnsureLogTopic(ctx, fresh.ListenAddrs()); err != nil {
			t.Fatal(err)
		}
	}

	partitioned, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, kafka.LogTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer partitioned.Close()
	if err := kafka.EnsureLogTopic(ctx, partitioned.ListenAddrs()); !errors.Is(err, kafka.ErrLogTopicPartitioned) {
		t.Fatalf("partitioned log topic: %v", err)
	}

	admin, err := sarama.NewClusterAdmin(fresh.ListenAddrs(), kafka.SubscriberSaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.AlterConfig(sarama.TopicResource, kafka.LogTopic, map[string]*string{"cleanup.policy": ptr("compact")}, false); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureLogTopic(ctx, fresh.ListenAddrs()); err == nil || !strings.Contains(err.Error(), "cleanup.policy=compact") {
		t.Fatalf("compacted log topic: %v", err)
	}
}
