// Package fanout is the in-process bus: a Watermill [message.Publisher]
// and [message.Subscriber] that hands every message published on a topic
// to every subscriber of that topic, and returns from Publish once each of
// them has acknowledged it.
//
// It does what Watermill's gochannel does with BlockPublishUntilSubscriberAck
// (each subscriber gets the messages in the order they were published; a
// nack hands that subscriber the message again; a message published with
// no subscriber is dropped), with one difference that is its reason to
// exist: gochannel copies each message for each subscriber, metadata
// included, and with a dozen consumer groups and a dozen metadata entries
// per event those copies were about a fifth of the bytes the command path
// allocated. Here each subscriber gets a message of its own (acks are per
// subscriber) that shares the published message's Metadata and Payload.
// Subscribers must not change either; Palisade's consumers only read them
// (the engine replaces a message's Payload, which is the message's own
// field, not the shared bytes).
package fanout

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrClosed is returned by Publish and Subscribe once the bus is closed.
var ErrClosed = errors.New("fanout: the bus is closed")

// PubSub is the bus. Its zero value is not usable; call New.
type PubSub struct {
	mu      sync.RWMutex
	subs    map[string][]*subscription
	closed  bool
	closing chan struct{}
	// running counts the subscriptions' closers, waited for by Close.
	running sync.WaitGroup
}

// New returns an open bus.
func New() *PubSub {
	return &PubSub{subs: map[string][]*subscription{}, closing: make(chan struct{})}
}

// subscription is one Subscribe call's channel.
type subscription struct {
	ctx context.Context
	out chan *message.Message
	// filter, when set, passes over what the subscriber does not want
	// (see Filtered).
	filter Filter
	// sending is held while a message is being handed over, so that the
	// channel is closed only between two hand-overs.
	sending sync.Mutex
	closed  bool
}

// Subscribe returns a channel of the messages published on topic from now
// on. It is closed when ctx ends or the bus closes.
func (p *PubSub) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return p.subscribe(ctx, topic, Filter{})
}

// Filter lets a subscriber pass over messages it has no use for. Publish
// asks Wants of each message, in order; a message it does not want goes
// to Pass, called by Publish itself before the next message is handed to
// anyone, instead of through the channel. A consumer group that only
// notes how far it has read (a projection with no handler for an event's
// type) is spared the message's hand-over, its router's handling and
// the acknowledgement.
type Filter struct {
	Wants func(*message.Message) bool
	Pass  func(*message.Message)
}

// Filtered returns a Subscriber of this bus whose subscriptions apply f.
func (p *PubSub) Filtered(f Filter) message.Subscriber { return filtered{p, f} }

type filtered struct {
	bus    *PubSub
	filter Filter
}

func (f filtered) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return f.bus.subscribe(ctx, topic, f.filter)
}

// Close does nothing: the bus is closed by its owner.
func (filtered) Close() error { return nil }

func (p *PubSub) subscribe(ctx context.Context, topic string, f Filter) (<-chan *message.Message, error) {
	if (f.Wants == nil) != (f.Pass == nil) {
		return nil, errors.New("fanout: a filter needs both Wants and Pass")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	s := &subscription{ctx: ctx, out: make(chan *message.Message), filter: f}
	p.subs[topic] = append(p.subs[topic], s)
	p.running.Add(1)
	go func() {
		defer p.running.Done()
		select {
		case <-ctx.Done():
		case <-p.closing:
		}
		p.remove(topic, s)
		s.sending.Lock()
		s.closed = true
		close(s.out)
		s.sending.Unlock()
	}()
	return s.out, nil
}

func (p *PubSub) remove(topic string, s *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs[topic] = slices.DeleteFunc(p.subs[topic], func(o *subscription) bool { return o == s })
}

// ErrAbandoned is returned by Publish when a subscriber went away (its
// context ended, or the bus closed) before it acknowledged a message: the
// caller must not take the message as delivered.
var ErrAbandoned = errors.New("fanout: a subscriber went away before acknowledging")

// Publish hands each message, in order, to every subscriber of topic, and
// returns once each has acknowledged it. A subscriber that nacks gets the
// message again. A subscriber that goes away meanwhile (its context ends,
// or the bus closes) makes Publish stop there with ErrAbandoned; from then
// on it is passed over entirely, filter included, so that nothing after a
// message it never took is passed to it as if it had.
func (p *PubSub) Publish(topic string, messages ...*message.Message) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	subs := slices.Clone(p.subs[topic])
	p.mu.RUnlock()
	var wg sync.WaitGroup
	var abandoned atomic.Bool
	wanting := make([]*subscription, 0, len(subs))
	for _, msg := range messages {
		wanting = wanting[:0]
		for _, s := range subs {
			if p.gone(s) {
				continue
			}
			if s.filter.Wants == nil || s.filter.Wants(msg) {
				wanting = append(wanting, s)
			} else {
				s.filter.Pass(msg)
			}
		}
		for _, s := range wanting[min(1, len(wanting)):] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !p.deliver(s, msg) {
					abandoned.Store(true)
				}
			}()
		}
		if len(wanting) > 0 && !p.deliver(wanting[0], msg) {
			abandoned.Store(true)
		}
		wg.Wait()
		if abandoned.Load() {
			return ErrAbandoned
		}
	}
	return nil
}

// gone reports whether s has ended or is ending: its context is done or
// the bus is closing. Both are for good, so a subscriber found gone once
// stays gone.
func (p *PubSub) gone(s *subscription) bool {
	if s.ctx.Err() != nil {
		return true
	}
	select {
	case <-p.closing:
		return true
	default:
		return false
	}
}

// deliver hands msg to s until s acknowledges it (true), or s or the bus
// ends first (false).
func (p *PubSub) deliver(s *subscription, msg *message.Message) bool {
	for {
		m := message.NewMessage(msg.UUID, msg.Payload)
		m.Metadata = msg.Metadata
		m.SetContext(s.ctx)
		s.sending.Lock()
		if s.closed {
			s.sending.Unlock()
			return false
		}
		select {
		case s.out <- m:
		case <-s.ctx.Done():
			s.sending.Unlock()
			return false
		case <-p.closing:
			s.sending.Unlock()
			return false
		}
		s.sending.Unlock()
		select {
		case <-m.Acked():
			return true
		case <-m.Nacked():
		case <-s.ctx.Done():
			return false
		case <-p.closing:
			return false
		}
	}
}

// Close ends every subscription and refuses further publishing; a Publish
// in progress returns without waiting for acknowledgements.
func (p *PubSub) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()
	p.running.Wait()
	return nil
}
