package kafka_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
)

// received is one message as a consumer saw it.
type received struct {
	topic     string
	partition int32
	offset    int64
	key       string
	msg       *message.Message
	position  uint64
}

// consume reads n messages from topics through a watermill-kafka
// subscriber in group, acknowledging each, and closes the subscriber.
func consume(t *testing.T, b *bundle, group string, n int, topics ...string) []received {
	t.Helper()
	return consumeUntil(t, b, group, func(got []received) bool { return len(got) == n }, topics...)
}

// consumeUntil reads from topics through a watermill-kafka subscriber in
// group, acknowledging each message, until enough says the messages read
// are enough, and closes the subscriber. A message read again at an
// offset already read is the consumer group's redelivery (each topic's
// subscription joins the group, and the rebalance can come before the
// first offsets are committed), not a second copy in Kafka: it is
// acknowledged and left out, so that what is returned is what the topics
// hold. A second copy has an offset of its own and is kept.
func consumeUntil(t *testing.T, b *bundle, group string, enough func([]received) bool, topics ...string) []received {
	t.Helper()
	sub, err := kafka.NewSubscriber(b.brokers, group, fastRejoin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sub.Close(); err != nil {
			t.Errorf("close subscriber: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type at struct {
		topic     string
		partition int32
		offset    int64
	}
	var (
		mu   sync.Mutex
		out  []received
		read = map[at]bool{}
	)
	done := make(chan struct{})
	var once sync.Once
	for _, topic := range topics {
		msgs, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for msg := range msgs {
				mu.Lock()
				if enough(out) {
					mu.Unlock()
					return // left unacknowledged: not committed
				}
				r := received{topic: topic, msg: msg}
				r.partition, _ = wkafka.MessagePartitionFromCtx(msg.Context())
				r.offset, _ = wkafka.MessagePartitionOffsetFromCtx(msg.Context())
				key, _ := wkafka.MessageKeyFromCtx(msg.Context())
				r.key = string(key)
				r.position, _ = strconv.ParseUint(msg.Metadata.Get(eventstore.MetaPosition), 10, 64)
				where := at{topic, r.partition, r.offset}
				if read[where] {
					mu.Unlock()
					msg.Ack()
					continue
				}
				read[where] = true
				out = append(out, r)
				full := enough(out)
				mu.Unlock()
				msg.Ack()
				if full {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("received only %d messages from %v", len(out), topics)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(out)
}

// TestRelayKeepsPerOrgOrder publishes two orgs' interleaved events through
// the relay to the category topics and the log topic, and reads them back
// through the watermill-kafka subscriber: each org's events of a category
// are all in one partition, keyed by the org, in log order, none missing;
// the log topic has every event in log order.
func TestRelayKeepsPerOrgOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	head := b.appendMix(t, 0, 25) // 100 events: 50 bot, 50 org, half of each per org
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	categories := b.store.Checkpoint("kafka.categories")
	log := b.store.Checkpoint("kafka.log")
	b.runRelay(t, pub, kafka.TopicFunc(false), categories)
	b.runRelay(t, pub, kafka.LogTopicFunc(), log)
	waitCheckpoint(t, categories, head)
	waitCheckpoint(t, log, head)

	all, err := b.store.ReadAll(context.Background(), 0, eventstore.Filter{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := consume(t, b, "order-test", int(head), "palisade.bot", "palisade.org")
	type lane struct{ topic, org string }
	lanes := map[lane][]uint64{}
	partitions := map[lane]map[int32]bool{}
	for _, r := range got {
		org := r.msg.Metadata.Get(eventstore.MetaOrgID)
		if r.key != org {
			t.Fatalf("position %d keyed %q, org %q", r.position, r.key, org)
		}
		l := lane{r.topic, org}
		lanes[l] = append(lanes[l], r.position)
		if partitions[l] == nil {
			partitions[l] = map[int32]bool{}
		}
		partitions[l][r.partition] = true
	}
	for _, org := range []string{orgA, orgB} {
		for topic, category := range map[string]string{"palisade.bot": "bot", "palisade.org": "org"} {
			l := lane{topic, org}
			var want []uint64
			for _, env := range all {
				if env.OrgID == org && env.Stream.Category == category {
					want = append(want, env.Position)
				}
			}
			if !slices.Equal(lanes[l], want) {
				t.Errorf("%s of %s: positions %v, want %v", topic, org, lanes[l], want)
			}
			if len(partitions[l]) != 1 {
				t.Errorf("%s of %s spread over partitions %v", topic, org, partitions[l])
			}
		}
	}

	logged := consume(t, b, "order-test", int(head), kafka.LogTopic)
	for i, r := range logged {
		if r.position != uint64(i+1) {
			t.Fatalf("log topic message %d has position %d", i, r.position)
		}
	}
}

// TestMessagesCarryDocumentedHeaders reads the category topic with another
// client (franz-go), as a downstream system would: the key is the org id,
// the partition is the one Kafka's default partitioner picks for it, the
// value is the event's data, and the headers are the envelope's fields
// under the names README.md documents.
func TestMessagesCarryDocumentedHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	e := newEvent(t, orgA, bots.BotCreated{ID: "bot-1", Name: "Helper"})
	e.IdempotencyKey = "key-1"
	e.Authorization = "role owner grants bots:manage"
	res, err := b.store.Append(ctx, eventstore.MustStreamName(bots.Category, orgA, "bot-1"), eventstore.NoStream(), []eventstore.NewEvent{e})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cp := eventstore.NewMemoryCheckpoint(0)
	b.runRelay(t, pub, kafka.TopicFunc(true), cp)
	waitCheckpoint(t, cp, res.LastPosition)

	topic := "palisade." + orgA + ".bot"
	client, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil {
		fetches := client.PollFetches(pollCtx)
		if err := pollCtx.Err(); err != nil {
			t.Fatalf("no record on %s: %v", topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) { rec = r })
	}
	env, err := b.store.ReadAll(ctx, 0, eventstore.Filter{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"_watermill_message_uuid": env[0].ID.String(),
		"org_id":                  orgA,
		"type":                    "BotCreated",
		"position":                "1",
		"stream":                  "bot-" + orgA + "_bot-1",
		"stream_version":          "0",
		"correlation_id":          e.CorrelationID,
		"causation_id":            e.CausationID,
		"trace_id":                e.TraceID,
		"actor":                   `{"subject":"user-1","kind":"user","roles":["owner"]}`,
		"occurred_at":             env[0].OccurredAt.Format(time.RFC3339Nano),
		"schema_version":          "1",
		"authorization":           e.Authorization,
		"idempotency_key":         "key-1",
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	if len(headers) != len(want) {
		t.Errorf("headers %v, want exactly %v", headers, want)
	}
	if string(rec.Key) != orgA || string(rec.Value) != string(e.Data) {
		t.Errorf("key %q value %s, want %q %s", rec.Key, rec.Value, orgA, e.Data)
	}
	wantPartition := kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte(orgA)}, 4)
	if int(rec.Partition) != wantPartition {
		t.Errorf("partition %d, Kafka's partitioner picks %d", rec.Partition, wantPartition)
	}
}

// TestRelayStopsOnUntopicableOrg: with per-org topics, an org id that
// cannot be part of a topic name stops the relay instead of publishing
// somewhere an ACL would not expect.
func TestRelayStopsOnUntopicableOrg(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.store.Append(ctx, eventstore.MustStreamName(bots.Category, "acme.eu", "bot-1"), eventstore.NoStream(),
		[]eventstore.NewEvent{newEvent(t, "acme.eu", bots.BotCreated{ID: "bot-1"})}); err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cp := eventstore.NewMemoryCheckpoint(0)
	relay := kafka.NewRelay(b.store, pub, kafka.TopicFunc(true), cp, b.logger)
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = relay.Run(runCtx)
	if !errors.Is(err, kafka.ErrInvalidTopic) {
		t.Fatalf("relay returned %v, want ErrInvalidTopic", err)
	}
	if pos, _ := cp.Load(ctx); pos != 0 {
		t.Fatalf("checkpoint advanced to %d past an unpublished event", pos)
	}
}
