package projections

import (
	"context"
	"sync"
	"sync/atomic"
)

// Tracker holds the last log position a projection has applied and lets
// callers wait for a position.
type Tracker struct {
	position atomic.Uint64
	mu       sync.Mutex
	advanced chan struct{} // closed and replaced at every advance
}

func newTracker() *Tracker { return &Tracker{advanced: make(chan struct{})} }

// Position returns the last applied position.
func (t *Tracker) Position() uint64 { return t.position.Load() }

// Advance records that position has been applied and wakes waiters.
func (t *Tracker) Advance(position uint64) {
	t.mu.Lock()
	if position > t.position.Load() {
		t.position.Store(position)
		close(t.advanced)
		t.advanced = make(chan struct{})
	}
	t.mu.Unlock()
}

// Wait returns once position has been applied, or with ctx's error.
func (t *Tracker) Wait(ctx context.Context, position uint64) error {
	for {
		if t.position.Load() >= position {
			return nil
		}
		t.mu.Lock()
		ch := t.advanced
		done := t.position.Load() >= position
		t.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
