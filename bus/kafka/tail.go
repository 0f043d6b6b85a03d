package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/eventstore"
)

// ErrMalformed: a message is not an event as the relay publishes it.
var ErrMalformed = errors.New("kafka message is not a palisade event")

// Tail is the reference consumer behind `palisade tail`: it reads topics
// (category topics, or [LogTopic]) and writes each event to w as one line
// of JSON, the envelope as [eventstore.Envelope.MarshalJSON] writes it,
// rebuilt from the message with [eventstore.FromMessage]. It returns nil
// when ctx ends.
//
// With a consumer group it resumes where the group's last run stopped and
// commits each event's offset once its line is written; without one
// (group "") it prints everything the topics retain and commits nothing.
// Events of one partition (one org's events of one topic) are printed in
// log order; events of different partitions or topics interleave.
//
// A message that is not a Palisade event (no valid envelope headers, or an
// org_id that disagrees with the stream's org) stops Tail with an
// [ErrMalformed] error naming its topic, partition and offset; it is not
// committed.
func Tail(ctx context.Context, brokers []string, topics []string, group string, w io.Writer, opts ...Option) (err error) {
	if len(topics) == 0 {
		return errors.New("kafka tail: no topic given")
	}
	sub, err := NewSubscriber(brokers, group, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sub.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("kafka tail: close: %w", cerr)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := subscribeAll(ctx, sub, topics)
	if err != nil {
		return err
	}
	for {
		var in topicMessage
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			in = m
		}
		env, err := eventstore.FromMessage(in.msg)
		if err != nil {
			in.msg.Nack()
			return fmt.Errorf("%w: %s partition %d offset %d: %w", ErrMalformed, in.topic,
				partition(in.msg), partitionOffset(in.msg), err)
		}
		line, err := json.Marshal(env)
		if err != nil {
			in.msg.Nack()
			return fmt.Errorf("kafka tail: encode position %d: %w", env.Position, err)
		}
		if _, err := w.Write(append(line, '\n')); err != nil {
			in.msg.Nack()
			return fmt.Errorf("kafka tail: write: %w", err)
		}
		in.msg.Ack()
	}
}

func partition(msg *message.Message) int32 {
	p, _ := wkafka.MessagePartitionFromCtx(msg.Context())
	return p
}

func partitionOffset(msg *message.Message) int64 {
	off, _ := wkafka.MessagePartitionOffsetFromCtx(msg.Context())
	return off
}

type topicMessage struct {
	topic string
	msg   *message.Message
}

// subscribeAll subscribes to every topic and merges what arrives. Order
// holds within each topic's partitions, as each delivers its next message
// only after the previous one was acknowledged; across topics there is
// none. The channel closes once every subscription has ended.
func subscribeAll(ctx context.Context, sub message.Subscriber, topics []string) (<-chan topicMessage, error) {
	out := make(chan topicMessage)
	var wg sync.WaitGroup
	for _, topic := range topics {
		in, err := sub.Subscribe(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range in {
				select {
				case out <- topicMessage{topic, msg}:
				case <-ctx.Done():
					// The subscriber redelivers an unacknowledged message
					// to the group's next member.
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}
