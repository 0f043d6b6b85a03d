package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// ProjectionGroupPrefix begins the consumer group of every projection.
const ProjectionGroupPrefix = "palisade.projection."

// NewSubscriber returns a watermill-kafka subscriber in consumerGroup,
// which resumes from the group's committed offsets and starts a group
// that has none at the oldest retained offset (see
// [SubscriberSaramaConfig]). An empty consumerGroup reads every partition
// from the oldest offset and commits nothing.
//
// Each message is acknowledged before the next one of its partition is
// handed out, and its offset is committed only once acknowledged
// (asynchronously, every second, and on Close): a consumer stopped
// mid-stream resumes after the last committed offset, and a crash repeats
// at most the messages acknowledged in the last second. (An
// acknowledgement that races Close may miss the final commit too: at least
// once, never at most once.)
func NewSubscriber(brokers []string, consumerGroup string, opts ...Option) (*wkafka.Subscriber, error) {
	o := apply(opts)
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               brokers,
		Unmarshaler:           wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: o.saramaConfig(SubscriberSaramaConfig()),
		ConsumerGroup:         consumerGroup,
	}, o.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber %q: %w", consumerGroup, err)
	}
	return sub, nil
}

// SubscriberSaramaConfig is the consumer configuration NewSubscriber
// starts from. Consumer.Offsets.Initial is sarama.OffsetOldest because
// watermill-kafka's default, OffsetNewest, starts a group without
// committed offsets (a new projection, or one whose offsets expired after
// offsets.retention.minutes) at the end of the topic: it would silently
// miss everything published before it joined, with no way to notice.
// Starting at the oldest offset instead can only repeat events, which
// consumers skip by position.
//
// Consumers never create topics, even where the brokers auto-create them:
// a mistyped topic is an error, not a new empty topic. So the log topic
// must exist (see [EnsureLogTopic]) before projections subscribe to it.
func SubscriberSaramaConfig() *sarama.Config {
	cfg := wkafka.DefaultSaramaSubscriberConfig()
	cfg.Version = saramaVersion
	cfg.ClientID = "palisade-consumer"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.AllowAutoTopicCreation = false
	return cfg
}

// SubscriberFunc returns what consumer.Engine.Attach takes: for each
// projection, a subscriber in its own consumer group,
// ProjectionGroupPrefix + the projection's name. Attach the engine to
// [LogTopic], the one topic whose order projections may rely on.
func SubscriberFunc(brokers []string, opts ...Option) func(group string) (message.Subscriber, error) {
	return func(group string) (message.Subscriber, error) {
		return NewSubscriber(brokers, ProjectionGroupPrefix+group, opts...)
	}
}

// ErrLogTopicPartitioned: the log topic has more than one partition, so
// it cannot carry the log's order.
var ErrLogTopicPartitioned = errors.New("kafka log topic has more than one partition")

// EnsureLogTopic creates [LogTopic] with one partition, the broker's
// default replication factor and cleanup.policy=delete, or checks that the
// existing topic has exactly one partition and is not compacted
// (compaction keeps only the last message per key, here per org).
func EnsureLogTopic(ctx context.Context, brokers []string, opts ...Option) error {
	o := apply(opts)
	cfg := o.saramaConfig(SubscriberSaramaConfig())
	cfg.ClientID = "palisade-admin"
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	err = admin.CreateTopic(LogTopic, &sarama.TopicDetail{
		NumPartitions:     1,
		ReplicationFactor: -1,
		ConfigEntries:     map[string]*string{"cleanup.policy": ptr("delete")},
	}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create %s: %w", LogTopic, err)
	}
	metas, err := admin.DescribeTopics([]string{LogTopic})
	if err != nil {
		return fmt.Errorf("describe %s: %w", LogTopic, err)
	}
	if len(metas) != 1 || !errors.Is(metas[0].Err, sarama.ErrNoError) {
		return fmt.Errorf("describe %s: %v", LogTopic, metas)
	}
	if n := len(metas[0].Partitions); n != 1 {
		return fmt.Errorf("%w: %s has %d", ErrLogTopicPartitioned, LogTopic, n)
	}
	configs, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: LogTopic, ConfigNames: []string{"cleanup.policy"}})
	if err != nil {
		return fmt.Errorf("describe %s configuration: %w", LogTopic, err)
	}
	for _, c := range configs {
		if c.Name == "cleanup.policy" && c.Value != "delete" {
			return fmt.Errorf("kafka: %s has cleanup.policy=%s; it must be delete", LogTopic, c.Value)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
