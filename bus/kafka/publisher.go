package kafka

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/eventstore"
)

// saramaVersion is the protocol version spoken: Kafka 2.8 and later
// (including 4.x, which dropped the oldest versions) and kfake accept it.
var saramaVersion = sarama.V2_8_0_0

// NewPublisher returns the relay's publisher: a watermill-kafka publisher
// whose messages are keyed by org id (see [PublisherSaramaConfig] for the
// producer's guarantees) and whose headers are the message metadata, that
// is the envelope as [eventstore.ToMessage] wrote it. Publish blocks until
// Kafka acknowledged each message, so the relay saves its checkpoint only
// after that.
func NewPublisher(brokers []string, opts ...Option) (*wkafka.Publisher, error) {
	o := apply(opts)
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             wkafka.NewWithPartitioningMarshaler(partitionKey),
		OverwriteSaramaConfig: o.saramaConfig(PublisherSaramaConfig()),
	}, o.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	return pub, nil
}

// PublisherSaramaConfig is the producer configuration NewPublisher starts
// from: every message acknowledged by all in-sync replicas, retried by an
// idempotent producer with one request in flight (so a retry neither
// duplicates nor reorders a message within a partition), and partitioned
// by the murmur2 hash of its key, the org id.
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
