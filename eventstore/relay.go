package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Checkpoint remembers how far a reader of the log has got.
type Checkpoint interface {
	Load(ctx context.Context) (uint64, error)
	Save(ctx context.Context, position uint64) error
}

// MemoryCheckpoint is a Checkpoint kept in memory, for readers whose
// consumers are rebuilt from the log at every start anyway.
type MemoryCheckpoint struct {
	mu       sync.Mutex
	position uint64
}

// NewMemoryCheckpoint returns a checkpoint starting at position.
func NewMemoryCheckpoint(position uint64) *MemoryCheckpoint {
	return &MemoryCheckpoint{position: position}
}

// Load returns the saved position.
func (c *MemoryCheckpoint) Load(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.position, nil
}

// Save records position.
func (c *MemoryCheckpoint) Save(_ context.Context, position uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.position = position
	return nil
}

// TopicFunc names the bus topic an event is published to.
type TopicFunc func(Envelope) string

// Relay carries the log to a Watermill publisher in global order, starting
// after its checkpoint. Delivery is at least once: the checkpoint is saved
// after publishing, so a crash in between republishes, and consumers are
// idempotent by position.
type Relay struct {
	store      Store
	publisher  message.Publisher
	topic      TopicFunc
	checkpoint Checkpoint
	logger     *slog.Logger
}

// NewRelay returns a relay from store to publisher.
func NewRelay(store Store, publisher message.Publisher, topic TopicFunc, checkpoint Checkpoint, logger *slog.Logger) *Relay {
	return &Relay{store: store, publisher: publisher, topic: topic, checkpoint: checkpoint, logger: logger}
}

// Run publishes until ctx ends or publishing fails.
func (r *Relay) Run(ctx context.Context) error {
	after, err := r.checkpoint.Load(ctx)
	if err != nil {
		return fmt.Errorf("relay: load checkpoint: %w", err)
	}
	r.logger.Info("relay started", "after", after)
	err = r.store.Subscribe(ctx, after, Filter{}, func(env Envelope) error {
		msg, err := ToMessage(env)
		if err != nil {
			return err
		}
		if err := r.publisher.Publish(r.topic(env), msg); err != nil {
			return fmt.Errorf("publish position %d: %w", env.Position, err)
		}
		return r.checkpoint.Save(ctx, env.Position)
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
		return nil
	}
	return fmt.Errorf("relay: %w", err)
}
