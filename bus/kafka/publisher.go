package kafka

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/eventstore"
)

// saramaVersion is the protocol version spoken: Kafka 2.8 and later
// (including 4.x, which dropped the oldest versions) and kfake accept it.
var saramaVersion = sarama.V2_8_0_0

// ErrPublisherClosed: Publish was called after Close.
var ErrPublisherClosed = errors.New("kafka publisher closed")

// ErrPublishedOutOfOrder: within one partition, Kafka acknowledged a
// message of a batch that follows one it failed. Publishing the failed
// one again puts it after its successor, where a consumer that skips
// positions it has passed would miss it. See [Publisher.PublishBatch].
var ErrPublishedOutOfOrder = errors.New("kafka acknowledged a message after a failed one of the same partition")

// Outgoing is one message of a batch and the topic it goes to.
type Outgoing struct {
	Topic string
	Msg   *message.Message
}

// Publisher is the relay's publisher: it implements Watermill's
// [message.Publisher] and [Publisher.PublishBatch], on a Sarama
// SyncProducer with watermill-kafka's marshaler, so messages are what
// watermill-kafka's own publisher writes (value = payload, one header per
// metadata field plus the message UUID, key = org id; see README.md).
//
// It replaces watermill-kafka's publisher because that one, in every
// release up to the v3.0.6 used here, calls SyncProducer.SendMessage once
// per message and waits for Kafka's answer before marshaling the next: a
// Publish of 500 messages is 500 produce requests and 500 round trips to
// the partition leader, so the relay could never go faster than one event
// per round trip. This one hands a whole batch to SendMessages, which
// queues every message before waiting, so that Sarama packs them into as
// few produce requests as its limits allow (see [PublisherSaramaConfig]),
// and returns once Kafka acknowledged or refused each one.
type Publisher struct {
	producer  sarama.SyncProducer
	marshaler wkafka.Marshaler
	maxBytes  int

	// mu guards closed; Publish holds it shared, so Close waits for the
	// sends in flight rather than closing the producer under them.
	mu     sync.RWMutex
	closed bool
}

// NewPublisher returns the relay's publisher: messages keyed by org id
// (see [PublisherSaramaConfig] for the producer's guarantees), headers
// the message metadata, that is the envelope as [eventstore.ToMessage]
// wrote it. Publish and PublishBatch block until Kafka acknowledged every
// message, so the relay saves its checkpoint only after that.
func NewPublisher(brokers []string, opts ...Option) (*Publisher, error) {
	o := apply(opts)
	cfg := o.saramaConfig(PublisherSaramaConfig())
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	return &Publisher{
		producer:  producer,
		marshaler: wkafka.NewWithPartitioningMarshaler(partitionKey),
		maxBytes:  cfg.Producer.MaxMessageBytes,
	}, nil
}

// PublisherSaramaConfig is the producer configuration NewPublisher starts
// from: every message acknowledged by all in-sync replicas, retried by an
// idempotent producer with one request in flight (so a retry neither
// duplicates nor reorders a message within a partition), and partitioned
// by the murmur2 hash of its key, the org id.
//
// Batching is left to Sarama's defaults (no Flush trigger set): the
// producer sends whatever it has queued as soon as the previous request
// was answered, so a message alone is sent at once, and a batch given to
// PublishBatch goes in one request, or two when the first message leaves
// before the rest are queued. Producer.MaxMessageBytes (1 MB) bounds the
// messages of one partition in one request.
func PublisherSaramaConfig() *sarama.Config {
	cfg := wkafka.DefaultSaramaSyncPublisherConfig()
	cfg.Version = saramaVersion
	cfg.ClientID = "palisade-relay"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Partitioner = newMurmur2Partitioner
	// Watermill waits 2s before retrying metadata, which makes the first
	// publish to an auto-created topic slow for no benefit.
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	return cfg
}

// Publish publishes msgs to topic as one batch: see PublishBatch.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	batch := make([]Outgoing, len(msgs))
	for i, msg := range msgs {
		batch[i] = Outgoing{Topic: topic, Msg: msg}
	}
	return p.PublishBatch(batch)
}

// PublishBatch publishes batch in its order and returns once Kafka
// acknowledged every message, or refused one. Messages of one partition
// keep their order in the batch.
//
// Every message is marshaled and checked against Producer.MaxMessageBytes
// before any is sent, so a message that cannot be published (a topic
// Kafka refuses, a message without an org, one too large) fails the batch
// with nothing sent. A failure once sent fails the batch, though Kafka
// may hold some of its messages: the caller publishes the whole batch
// again, and consumers skip the repeats. Sarama's idempotent producer
// with one request in flight retries a partition's messages in order, so
// what Kafka holds of a failed batch is, per partition, a prefix; should
// that ever not be so, the error wraps [ErrPublishedOutOfOrder].
func (p *Publisher) PublishBatch(batch []Outgoing) error {
	if len(batch) == 0 {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	out := make([]*sarama.ProducerMessage, len(batch))
	for i, o := range batch {
		m, err := p.marshaler.Marshal(o.Topic, o.Msg)
		if err != nil {
			return fmt.Errorf("marshal message %s: %w", o.Msg.UUID, err)
		}
		// Sarama checks this per message once queued, failing that one
		// alone while the rest of its partition goes on: check it first.
		if size := m.ByteSize(2); size > p.maxBytes {
			return fmt.Errorf("message %s for %s is %d bytes, more than Producer.MaxMessageBytes (%d)", o.Msg.UUID, o.Topic, size, p.maxBytes)
		}
		out[i] = m
	}
	err := p.producer.SendMessages(out)
	if err == nil {
		return nil
	}
	var perrs sarama.ProducerErrors
	if !errors.As(err, &perrs) || len(perrs) == 0 {
		return fmt.Errorf("produce %d messages: %w", len(out), err)
	}
	failed := make(map[*sarama.ProducerMessage]bool, len(perrs))
	for _, pe := range perrs {
		failed[pe.Msg] = true
	}
	first := perrs[0]
	err = fmt.Errorf("produce %d messages: %d failed, the first (%s partition %d): %w",
		len(out), len(perrs), first.Msg.Topic, first.Msg.Partition, first.Err)
	if outOfOrder(out, failed) {
		return fmt.Errorf("%w: %w", ErrPublishedOutOfOrder, err)
	}
	return err
}

// outOfOrder reports whether, in some partition, a message that was
// acknowledged follows one that failed.
func outOfOrder(msgs []*sarama.ProducerMessage, failed map[*sarama.ProducerMessage]bool) bool {
	type partition struct {
		topic string
		n     int32
	}
	sawFailure := map[partition]bool{}
	for _, m := range msgs {
		k := partition{m.Topic, m.Partition}
		if failed[m] {
			sawFailure[k] = true
		} else if sawFailure[k] {
			return true
		}
	}
	return false
}

// Close waits for the publishes in flight and closes the producer.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if err := p.producer.Close(); err != nil {
		return fmt.Errorf("close kafka producer: %w", err)
	}
	return nil
}

// partitionKey keys every message by its org id, after checking that the
// topic is a name Kafka accepts: the empty name is how [TopicFunc] says
// that an event's org or category cannot name a topic.
func partitionKey(topic string, msg *message.Message) (string, error) {
	if !validTopic(topic) {
		return "", fmt.Errorf("%w: %q for the event at position %s (org %q, stream %q)", ErrInvalidTopic, topic,
			msg.Metadata.Get(eventstore.MetaPosition), msg.Metadata.Get(eventstore.MetaOrgID), msg.Metadata.Get(eventstore.MetaStream))
	}
	org := msg.Metadata.Get(eventstore.MetaOrgID)
	if org == "" {
		return "", fmt.Errorf("message %s has no %s to key it by", msg.UUID, eventstore.MetaOrgID)
	}
	return org, nil
}
