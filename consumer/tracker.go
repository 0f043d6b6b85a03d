package consumer

import (
	"context"
	"sync"
	"sync/atomic"
)

// Tracker holds the last log position a group has applied and lets
// callers wait for a position. Only the waiters whose position has been
// reached are woken, so many concurrent waiters cost nothing per event.
type Tracker struct {
	position atomic.Uint64
	mu       sync.Mutex
	waiters  []waiter
}

type waiter struct {
	position uint64
	ready    chan struct{}
}

func newTracker() *Tracker { return &Tracker{} }

// Position returns the last applied position.
func (t *Tracker) Position() uint64 { return t.position.Load() }

// Advance records that position has been applied and wakes the waiters it
// satisfies.
func (t *Tracker) Advance(position uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if position <= t.position.Load() {
		return
	}
	t.position.Store(position)
	kept := t.waiters[:0]
	for _, w := range t.waiters {
		if w.position <= position {
			close(w.ready)
		} else {
			kept = append(kept, w)
		}
	}
	clear(t.waiters[len(kept):])
	t.waiters = kept
}

// Wait returns once position has been applied, or with ctx's error.
func (t *Tracker) Wait(ctx context.Context, position uint64) error {
	if t.position.Load() >= position {
		return nil
	}
	t.mu.Lock()
	if t.position.Load() >= position {
		t.mu.Unlock()
		return nil
	}
	w := waiter{position: position, ready: make(chan struct{})}
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		t.forget(w.ready)
		return ctx.Err()
	}
}

// forget removes a waiter that gave up.
func (t *Tracker) forget(ready chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, w := range t.waiters {
		if w.ready == ready {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			return
		}
	}
}
