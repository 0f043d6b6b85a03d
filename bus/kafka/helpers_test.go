package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// Two organizations, as the relay's tests need: ids shaped like real ones.
const (
	orgA = "0198c0de-0000-7000-8000-00000000000a"
	orgB = "0198c0de-0000-7000-8000-00000000000b"
)

// bundle is what a test of this package works with: an in-process Kafka
// cluster and an embedded event store in the test's temporary directory.
type bundle struct {
	brokers []string
	cluster *kfake.Cluster
	store   *embedded.Store
	logger  *slog.Logger
}

// setup starts a kfake cluster with the category topics and the log topic
// seeded (4 partitions for categories, 1 for the log; other topics are
// created on first use with 4) and opens an embedded store.
func setup(t testing.TB) *bundle {
	t.Helper()
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(4, "palisade.org", "palisade.bot", "palisade.security"),
		kfake.SeedTopics(1, kafka.LogTopic),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(4),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	store, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return &bundle{
		brokers: cluster.ListenAddrs(),
		cluster: cluster,
		store:   store,
		logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func newEvent(t testing.TB, org string, e interface{ EventType() string }) eventstore.NewEvent {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.NewEvent{Type: e.EventType(), Data: data, Metadata: eventstore.Metadata{
		OrgID:         org,
		Actor:         eventstore.Actor{Subject: "user-1", Kind: "user", Roles: []string{"owner"}},
		CorrelationID: "corr-" + org[len(org)-1:],
		CausationID:   "cause-1",
		TraceID:       "4bf92f3577b34da6a3ce929da0e47736",
		SchemaVersion: 1,
		OccurredAt:    eventstore.Now(),
	}}
}

// appendMix appends rounds from..from+rounds-1 of events of two orgs: per round, a bot of
// each org and a rename of each org, interleaved so that consecutive log
// positions alternate between orgs and categories.
func (b *bundle) appendMix(t testing.TB, from, rounds int) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	for i := from; i < from+rounds; i++ {
		for _, org := range []string{orgA, orgB} {
			id := fmt.Sprintf("bot-%d", i)
			res, err := b.store.Append(ctx, eventstore.MustStreamName(bots.Category, org, id), eventstore.NoStream(),
				[]eventstore.NewEvent{newEvent(t, org, bots.BotCreated{ID: id, Name: id})})
			if err != nil {
				t.Fatal(err)
			}
			res, err = b.store.Append(ctx, eventstore.MustStreamName(tenancy.Category, org, org), eventstore.Any(),
				[]eventstore.NewEvent{newEvent(t, org, tenancy.OrganizationRenamed{Name: fmt.Sprintf("%s round %d", org, i)})})
			if err != nil {
				t.Fatal(err)
			}
			last = res.LastPosition
		}
	}
	return last
}

// appendBatch appends n bot events per org in batches of 100, quickly.
func (b *bundle) appendBatch(t testing.TB, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	for start := 0; start < n; start += 100 {
		for _, org := range []string{orgA, orgB} {
			events := make([]eventstore.NewEvent, 0, 100)
			for i := start; i < min(n, start+100); i++ {
				events = append(events, newEvent(t, org, bots.BotUpdated{Name: ptr(fmt.Sprintf("name %d", i))}))
			}
			res, err := b.store.Append(ctx, eventstore.MustStreamName(bots.Category, org, "bench"), eventstore.Any(), events)
			if err != nil {
				t.Fatal(err)
			}
			last = res.LastPosition
		}
	}
	return last
}

// fastRejoin makes group members notice a rebalance within 100ms instead
// of at the next 3s heartbeat: every topic a subscriber subscribes to is
// one more member of its group, whose joining rebalances the others.
var fastRejoin = kafka.WithSaramaConfig(func(cfg *sarama.Config) {
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
})

func ptr[T any](v T) *T { return &v }

// runRelay runs a relay to publisher with topic until the checkpoint
// reaches position, and returns the relay's error channel's stop func.
func (b *bundle) runRelay(t testing.TB, pub kafka.BatchPublisher, topic eventstore.TopicFunc, checkpoint eventstore.Checkpoint) (stop func()) {
	t.Helper()
	return b.runRunner(t, kafka.NewRelay(b.store, pub, topic, checkpoint, b.logger))
}

// runRunner runs a relay until the test ends or stop is called.
func (b *bundle) runRunner(t testing.TB, relay interface{ Run(context.Context) error }) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return stop
}

// waitCheckpoint waits until checkpoint reaches position.
func waitCheckpoint(t testing.TB, checkpoint eventstore.Checkpoint, position uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := checkpoint.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got >= position {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay checkpoint at %d, want %d", got, position)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
