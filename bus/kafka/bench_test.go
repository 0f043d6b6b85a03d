package kafka_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

// The benchmarks report events/s for b.N events of two orgs, against
// kfake in the same process (so one machine's cores run the store, the
// relay, Kafka and the consumers at once). Run with -benchtime=20000x or
// more: each iteration is one event, and setup is not timed.

// relayKind is one way of carrying the log to Kafka: before issue 13,
// eventstore.Relay publishing one event per call through watermill-kafka's
// publisher (one produce request and one checkpoint save per event); after,
// kafka.Relay publishing batches through kafka.Publisher.
type relayKind struct {
	name  string
	start func(b *testing.B, bb *bundle, cp eventstore.Checkpoint) (stop func())
}

var relayKinds = []relayKind{
	{"per-event-watermill-kafka", func(b *testing.B, bb *bundle, cp eventstore.Checkpoint) func() {
		pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
			Brokers:               bb.brokers,
			Marshaler:             wkafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) { return m.Metadata.Get(eventstore.MetaOrgID), nil }),
			OverwriteSaramaConfig: kafka.PublisherSaramaConfig(),
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pub.Close() })
		return bb.runRunner(b, eventstore.NewRelay(bb.store, pub, kafka.LogTopicFunc(), cp, bb.logger))
	}},
	{"batched", func(b *testing.B, bb *bundle, cp eventstore.Checkpoint) func() {
		pub, err := kafka.NewPublisher(bb.brokers)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pub.Close() })
		return bb.runRelay(b, pub, kafka.LogTopicFunc(), cp)
	}},
}

// BenchmarkRelay measures log → Kafka: a relay publishing to the log
// topic, with the embedded store's durable checkpoint saved after every
// publish or through a PeriodicCheckpoint.
func BenchmarkRelay(b *testing.B) {
	for _, kind := range relayKinds {
		for _, bc := range []struct {
			name       string
			checkpoint func(*bundle) eventstore.Checkpoint
		}{
			{"durable-every-publish", func(bb *bundle) eventstore.Checkpoint { return bb.store.Checkpoint("bench") }},
			{"durable-every-100ms", func(bb *bundle) eventstore.Checkpoint {
				return kafka.NewPeriodicCheckpoint(bb.store.Checkpoint("bench"), 100*time.Millisecond)
			}},
		} {
			b.Run(kind.name+"/"+bc.name, func(b *testing.B) {
				bb := setup(b)
				head := bb.appendBatch(b, (b.N+1)/2)
				cp := bc.checkpoint(bb)
				b.ResetTimer()
				start := time.Now()
				stop := kind.start(b, bb, cp)
				waitCheckpoint(b, cp, head)
				took := time.Since(start)
				b.StopTimer()
				stop()
				b.ReportMetric(float64(head)/took.Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkConsume measures Kafka → projection: the audit projection (it
// keeps every envelope) consuming the log topic through the
// watermill-kafka subscriber, the router and consumer.Engine, from a
// topic already holding every event.
func BenchmarkConsume(b *testing.B) {
	bb := setup(b)
	head := bb.appendBatch(b, (b.N+1)/2)
	pub, err := kafka.NewPublisher(bb.brokers)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	cp := eventstore.NewMemoryCheckpoint(0)
	stop := bb.runRelay(b, pub, kafka.LogTopicFunc(), cp)
	waitCheckpoint(b, cp, head)
	stop()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime(b)
	engine := startEngine(b, bb, projections.AuditProjection(memory.NewAudit(), events.NewRegistry().Prototypes()))
	waitEngine(b, engine, head)
	took, used := time.Since(start), cpuTime(b)-cpu
	b.StopTimer()
	b.ReportMetric(float64(head)/took.Seconds(), "events/s")
	b.ReportMetric(float64(used.Microseconds())/float64(head), "cpu-µs/event")
}

// BenchmarkEndToEnd measures log → Kafka → projection with both running at
// once: from starting the relay (periodic durable checkpoint) and the
// projection on a log already holding b.N events, until the projection
// has applied the last one.
func BenchmarkEndToEnd(b *testing.B) {
	for _, kind := range relayKinds {
		b.Run(kind.name, func(b *testing.B) {
			bb := setup(b)
			head := bb.appendBatch(b, (b.N+1)/2)
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime(b)
			engine := startEngine(b, bb, projections.AuditProjection(memory.NewAudit(), events.NewRegistry().Prototypes()))
			cp := kafka.NewPeriodicCheckpoint(bb.store.Checkpoint("bench"), 100*time.Millisecond)
			kind.start(b, bb, cp)
			waitEngine(b, engine, head)
			took, used := time.Since(start), cpuTime(b)-cpu
			b.StopTimer()
			b.ReportMetric(float64(head)/took.Seconds(), "events/s")
			b.ReportMetric(float64(used.Microseconds())/float64(head), "cpu-µs/event")
		})
	}
}

// cpuTime returns the CPU time the process has used so far (user and
// system, every goroutine): the figure a machine shared with other jobs
// moves least, where events/s depends on the cores they leave.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitEngine(b *testing.B, engine *consumer.Engine, position uint64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := engine.WaitFor(ctx, position); err != nil {
		b.Fatal(err)
	}
}
