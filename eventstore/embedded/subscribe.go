package embedded

import (
	"context"
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/eventstore"
)

// Subscribe implements [eventstore.Store.Subscribe].
//
// No gap, no repeat: each round takes the wake channel and the head
// together under the lock the writer publishes under, then delivers every
// event in (after, head] and sets after = head. Everything up to head was
// committed before head was published, so a read sees it; anything
// committed later closes that wake channel, so the wait that follows
// cannot miss it. Ranges are contiguous, so nothing is read twice.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handle func(eventstore.Envelope) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.RLock()
		wake, head, shut := s.wake, s.head, s.shut
		s.mu.RUnlock()
		if shut || s.closed.Load() {
			return eventstore.ErrClosed
		}
		for after < head {
			envs, scanned, err := s.readRange(ctx, after, head, filter, subscribeBatch)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return ctxErr
				}
				return fmt.Errorf("subscribe after %d: %w", after, err)
			}
			for _, env := range envs {
				if err := handle(env); err != nil {
					return err
				}
			}
			after = scanned
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// publish makes a commit visible: it is called by the writer, after the
// commit, with the batch's envelopes in position order ending at head.
func (s *Store) publish(head uint64, batches [][]eventstore.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, envs := range batches {
		s.tail.add(envs)
	}
	s.head = head
	close(s.wake)
	s.wake = make(chan struct{})
}

// resetHead publishes a head the writer reread after a failed commit, and
// empties the tail, whose positions may no longer match the file.
func (s *Store) resetHead(head uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head = head
	s.tail.reset(head)
	close(s.wake)
	s.wake = make(chan struct{})
}

// tail is a ring of the most recent envelopes: position p sits at
// ring[p % len(ring)]. Positions are consecutive (the writer assigns them
// without gaps), so the ring holds exactly the positions low..head. Its
// envelopes are never modified once added; readers get copies.
type tail struct {
	ring []eventstore.Envelope
	low  uint64 // lowest position held; head+1 when empty
	high uint64 // highest position held
}

func newTail(size int) tail {
	return tail{ring: make([]eventstore.Envelope, size)}
}

// reset empties the tail of a log whose head is head.
func (t *tail) reset(head uint64) {
	clear(t.ring)
	t.low, t.high = head+1, head
}

// covers reports whether every position after after (up to the head) is
// in the tail.
func (t *tail) covers(after uint64) bool {
	return len(t.ring) > 0 && after+1 >= t.low
}

func (t *tail) add(envs []eventstore.Envelope) {
	if len(t.ring) == 0 {
		return
	}
	size := uint64(len(t.ring))
	for _, env := range envs {
		t.ring[env.Position%size] = env
		t.high = env.Position
	}
	if t.high >= size && t.high-size+1 > t.low {
		t.low = t.high - size + 1
	}
}

// read returns copies of up to limit (none: limit <= 0) envelopes in
// (after, upTo] that pass filter, and the last position it looked at.
// covers(after) must hold and upTo must not exceed high.
func (t *tail) read(after, upTo uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, uint64) {
	size := uint64(len(t.ring))
	var out []eventstore.Envelope
	p := after
	for p < upTo && (limit <= 0 || len(out) < limit) {
		p++
		env := t.ring[p%size]
		if filter.Match(env) {
			out = append(out, cloneEnvelope(env))
		}
	}
	return out, p
}

// cloneEnvelope copies what a handler could change in place.
func cloneEnvelope(env eventstore.Envelope) eventstore.Envelope {
	env.Data = slices.Clone(env.Data)
	env.Actor.Roles = slices.Clone(env.Actor.Roles)
	env.Actor.OnBehalfOf = slices.Clone(env.Actor.OnBehalfOf)
	return env
}
