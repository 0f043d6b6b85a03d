package consumer

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/eventstore"
)

// decodedSlots is how many recent deliveries the engine keeps decoded. The
// in-process bus hands one event to every group before the next, so one
// slot would do there; over Kafka the groups read at their own pace, and a
// few hundred events cover how far apart they usually are.
const decodedSlots = 256

// decodedCache keeps the envelopes of the events the bus delivered last,
// parsed and, once a group needed it, opened. Every group receives its own
// copy of each event's message, and parsing its metadata (the actor's JSON
// above all) and opening its content cost more than any projection's
// apply; with a dozen groups that was most of what the bus cost per event.
// Now the first group to see an event parses it (and opens it), and the
// others take the result.
//
// A slot is chosen by the event's position and matched on the position
// and the message id together, so a slot that holds another event is
// simply replaced. Entries are never changed once published, except for
// the opened envelope, which is set once under the entry's lock. An
// opening that fails is not kept: every group tries again, as before.
//
// What this keeps in memory: the last decodedSlots events, opened content
// included. A key destroyed while an event is in a slot does not take its
// plaintext from groups that have yet to apply it, for as long as it stays
// there (the next decodedSlots events at most).
type decodedCache struct {
	slots [decodedSlots]atomic.Pointer[decodedEvent]
}

// decodedEvent is one event as the bus carried it, parsed.
type decodedEvent struct {
	id  string
	env eventstore.Envelope

	mu     sync.Mutex
	opened *eventstore.Envelope
}

// envelope returns msg's envelope, parsed by the first group to ask.
func (c *decodedCache) envelope(msg *message.Message) (*decodedEvent, error) {
	position, err := strconv.ParseUint(msg.Metadata.Get(eventstore.MetaPosition), 10, 64)
	if err != nil {
		// FromMessage says what is wrong with it.
		_, err := eventstore.FromMessage(msg)
		return nil, err
	}
	slot := &c.slots[position%decodedSlots]
	old := slot.Load()
	if old.is(position, msg.UUID) {
		return old, nil
	}
	env, err := eventstore.FromMessage(msg)
	if err != nil {
		return nil, err
	}
	d := &decodedEvent{id: msg.UUID, env: env}
	if !slot.CompareAndSwap(old, d) {
		// Another group parsed an event into the slot meanwhile: when it
		// is this one, share its entry, so that it is opened once.
		if cur := slot.Load(); cur.is(position, msg.UUID) {
			return cur, nil
		}
	}
	return d, nil
}

// is reports whether d (nil for an empty slot) holds the event at
// position carried by the message id.
func (d *decodedEvent) is(position uint64, id string) bool {
	return d != nil && d.env.Position == position && d.id == id
}

// open returns the event opened by o, opening it the first time.
func (d *decodedEvent) open(ctx context.Context, o Opener) (eventstore.Envelope, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opened != nil {
		return *d.opened, nil
	}
	opened, err := o.Open(ctx, d.env)
	if err != nil {
		return eventstore.Envelope{}, err
	}
	d.opened = &opened
	return opened, nil
}
