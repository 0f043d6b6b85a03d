package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/palisadehq/palisade/eventstore"
)

// PeriodicCheckpoint saves a relay's position to a durable checkpoint at
// most once per interval instead of after every event. The relay saves
// after every acknowledged publish; with a durable checkpoint that is a
// synced write per event, which costs several times the publish itself.
// Saving less often keeps delivery at least once: after a crash the relay
// publishes again at most the events of the last interval, which
// consumers skip as repeats. (It has nothing Kafka-specific and may move
// to eventstore.)
type PeriodicCheckpoint struct {
	durable  eventstore.Checkpoint
	interval time.Duration

	mu      sync.Mutex
	pending uint64
	saved   uint64
	last    time.Time
}

// NewPeriodicCheckpoint wraps durable, saving to it at most every interval.
func NewPeriodicCheckpoint(durable eventstore.Checkpoint, interval time.Duration) *PeriodicCheckpoint {
	return &PeriodicCheckpoint{durable: durable, interval: interval}
}

// Load returns the latest position given to Save, or the durable one.
func (c *PeriodicCheckpoint) Load(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending > 0 {
		return c.pending, nil
	}
	pos, err := c.durable.Load(ctx)
	if err != nil {
		return 0, err
	}
	c.pending, c.saved = pos, pos
	return pos, nil
}

// Save records position, and writes it through when the interval since the
// last write has passed.
func (c *PeriodicCheckpoint) Save(ctx context.Context, position uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = position
	if time.Since(c.last) < c.interval {
		return nil
	}
	return c.flushLocked(ctx)
}

// Flush writes the latest position through; call it after the relay
// stopped, so that a clean shutdown repeats nothing.
func (c *PeriodicCheckpoint) Flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked(ctx)
}

func (c *PeriodicCheckpoint) flushLocked(ctx context.Context) error {
	if c.pending == c.saved {
		return nil
	}
	if err := c.durable.Save(ctx, c.pending); err != nil {
		return err
	}
	c.saved, c.last = c.pending, time.Now()
	return nil
}
