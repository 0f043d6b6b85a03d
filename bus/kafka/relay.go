package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/eventstore"
)

// DefaultBatchSize is how many events a [Relay] publishes at most in one
// batch.
const DefaultBatchSize = 500

// BatchPublisher is what a [Relay] publishes to: [Publisher], or
// [WithoutContent] around one.
type BatchPublisher interface {
	message.Publisher
	// PublishBatch publishes batch in order and returns nil only once
	// every message was acknowledged.
	PublishBatch(batch []Outgoing) error
}

// Relay carries the log to Kafka in batches: it reads the log after its
// checkpoint, in global order, publishes what has arrived (up to
// BatchSize events) in one PublishBatch, and saves the checkpoint at the
// last event of the batch once Kafka acknowledged all of it. It is
// [eventstore.Relay] with one publish and one checkpoint save per batch
// instead of per event; eventstore.Relay stays the in-process bus's relay.
//
// Batches are what is there, never waited for: when the log is idle, an
// appended event is published at once, alone; when the relay falls
// behind (at start, or under load), batches fill up to BatchSize.
//
// Delivery is at least once, and effectively once for consumers that skip
// repeats: a batch that fails, or a crash between Kafka's
// acknowledgement and the checkpoint save, publishes again the events
// after the checkpoint, that is that batch (and, with a
// [PeriodicCheckpoint], the batches of the last interval), never fewer.
// Projections skip an event whose position is not above the last one
// they applied; downstream consumers skip by event id, or by position
// within a partition.
type Relay struct {
	store      eventstore.Store
	publisher  BatchPublisher
	topic      eventstore.TopicFunc
	checkpoint eventstore.Checkpoint
	logger     *slog.Logger

	// BatchSize is the most events published in one batch
	// (DefaultBatchSize when not above zero). Set it before Run.
	BatchSize int
}

// NewRelay returns a relay from store to publisher, each event going to
// topic(event), starting after checkpoint.
func NewRelay(store eventstore.Store, publisher BatchPublisher, topic eventstore.TopicFunc, checkpoint eventstore.Checkpoint, logger *slog.Logger) *Relay {
	return &Relay{store: store, publisher: publisher, topic: topic, checkpoint: checkpoint, logger: logger, BatchSize: DefaultBatchSize}
}

// Run publishes until ctx ends (returning nil), the store closes (nil), or
// publishing or saving the checkpoint fails (the error).
func (r *Relay) Run(ctx context.Context) error {
	size := r.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	after, err := r.checkpoint.Load(ctx)
	if err != nil {
		return fmt.Errorf("relay: load checkpoint: %w", err)
	}
	r.logger.Info("relay started", "after", after, "batch_size", size)

	runCtx, cancel := context.WithCancel(ctx)
	// The subscription feeds envs in log order; the loop below takes
	// whatever it finds there as the next batch. It stops when Run
	// returns, which waits for it.
	envs := make(chan eventstore.Envelope, size)
	subDone := make(chan struct{})
	var subErr error
	go func() {
		defer close(subDone)
		subErr = r.store.Subscribe(runCtx, after, eventstore.Filter{}, func(env eventstore.Envelope) error {
			select {
			case envs <- env:
				return nil
			case <-runCtx.Done():
				return runCtx.Err()
			}
		})
	}()
	err = r.loop(runCtx, envs, subDone, size)
	cancel()
	<-subDone
	switch {
	case ctx.Err() != nil:
		// Stopped: whatever was not checkpointed is published again by
		// the next Run.
		return nil
	case err != nil:
		return fmt.Errorf("relay: %w", err)
	case subErr == nil || errors.Is(subErr, eventstore.ErrClosed):
		return nil
	}
	return fmt.Errorf("relay: read the log: %w", subErr)
}

// loop publishes batches from envs until ctx ends or the subscription
// ends (nil), or a batch fails (its error).
func (r *Relay) loop(ctx context.Context, envs <-chan eventstore.Envelope, subDone <-chan struct{}, size int) error {
	batch := make([]Outgoing, 0, size)
	for {
		batch = batch[:0]
		var last uint64
		select {
		case <-ctx.Done():
			return nil
		case <-subDone:
			// Events still in envs are not published: the checkpoint is
			// before them, so the next Run publishes them.
			return nil
		case env := <-envs:
			out, err := r.outgoing(env)
			if err != nil {
				return err
			}
			batch, last = append(batch, out), env.Position
		}
	fill:
		for len(batch) < size {
			select {
			case env := <-envs:
				out, err := r.outgoing(env)
				if err != nil {
					return err
				}
				batch, last = append(batch, out), env.Position
			default:
				break fill
			}
		}
		if err := r.publisher.PublishBatch(batch); err != nil {
			return fmt.Errorf("publish positions %s–%d: %w", batch[0].Msg.Metadata.Get(eventstore.MetaPosition), last, err)
		}
		if err := r.checkpoint.Save(ctx, last); err != nil {
			return fmt.Errorf("save checkpoint %d: %w", last, err)
		}
	}
}

func (r *Relay) outgoing(env eventstore.Envelope) (Outgoing, error) {
	msg, err := eventstore.ToMessage(env)
	if err != nil {
		return Outgoing{}, fmt.Errorf("position %d: %w", env.Position, err)
	}
	return Outgoing{Topic: r.topic(env), Msg: msg}, nil
}
