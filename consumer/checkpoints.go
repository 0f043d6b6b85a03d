package consumer

import (
	"context"
	"sync"

	"github.com/palisadehq/palisade/eventstore"
)

// Checkpoints keeps each group's position. An adapter that stores
// read models in a database records the position in the same transaction
// as the writes of the events it covers, so a crash can neither apply an
// event twice nor skip one.
type Checkpoints interface {
	// Position returns the last position recorded for group (0: none).
	Position(ctx context.Context, group string) (uint64, error)
	// Advance runs apply as one unit of work and records position for
	// group in that same unit: both happen or neither does. The
	// context passed to apply carries the unit (for example a transaction)
	// that the read-model writes must use.
	Advance(ctx context.Context, group string, position uint64, apply func(ctx context.Context) error) error
}

// ProcessCheckpoints keeps processes' positions in durable checkpoints
// beside the log. A process's work is appending events, which cannot share
// a transaction with the checkpoint, so a crash can repeat work; processes
// are idempotent by the expected versions of what they append. That also
// lets the durable save be lazy: at most every saveEvery positions, so the
// many events a process ignores cost no write each.
type ProcessCheckpoints struct {
	open      func(name string) eventstore.Checkpoint
	saveEvery uint64
	mu        sync.Mutex
	saved     map[string]uint64
}

// NewProcessCheckpoints saves through open at most every saveEvery positions.
func NewProcessCheckpoints(open func(name string) eventstore.Checkpoint, saveEvery uint64) *ProcessCheckpoints {
	return &ProcessCheckpoints{open: open, saveEvery: saveEvery, saved: map[string]uint64{}}
}

// Position loads the durable checkpoint of the group named group.
func (c *ProcessCheckpoints) Position(ctx context.Context, group string) (uint64, error) {
	pos, err := c.open(group).Load(ctx)
	if err == nil {
		c.mu.Lock()
		c.saved[group] = pos
		c.mu.Unlock()
	}
	return pos, err
}

// KeepsFailedWrites tells the engine that a failed unit is not undone: a
// process's work is appending events.
func (c *ProcessCheckpoints) KeepsFailedWrites() {}

// Advance runs apply, then saves position when a save is due.
func (c *ProcessCheckpoints) Advance(ctx context.Context, group string, position uint64, apply func(context.Context) error) error {
	if err := apply(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	due := position >= c.saved[group]+c.saveEvery
	if due {
		c.saved[group] = position
	}
	c.mu.Unlock()
	if !due {
		return nil
	}
	return c.open(group).Save(ctx, position)
}
