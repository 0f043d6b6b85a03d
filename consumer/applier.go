package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/eventstore"
)

// Applying what the bus delivers, in batches.
//
// The bus hands a group one event at a time and the next only once the
// previous is acknowledged (watermill-kafka per partition, GoChannel when
// it blocks until the ack). Applying each event before acknowledging it
// made every event cross the whole chain alone: the 2026-12-06
// measurement found the Kafka consumer idle half the time. So a delivery
// is only parsed and queued, in order, in the group's applier, and
// acknowledged; the applier runs the rest of the router's handler, cqrs's
// event group processor (which decodes the event and calls the group's
// handler for its type; the handler queues its call, see queueCall), and
// then applies what piled up in one unit of work per batch (one
// transaction and one checkpoint advance), and only then moves the
// group's position, which is what the consistency wait (WaitFor) reads.
//
// An acknowledged event that is still queued is not lost when the
// process dies: the group's checkpoint has not passed it, and every start
// catches up from the log, not from the bus (Rebuild), before it follows
// the bus again. A batch whose unit fails is retried, after a backoff,
// until it succeeds or the engine stops; nothing after it is applied
// before it.

// maxBatch is the most events a group applies from the bus in one unit of
// work.
const maxBatch = 500

// maxQueued bounds the events a group holds acknowledged but not yet
// applied; while the queue is full the group takes nothing more from the
// bus.
const maxQueued = 2 * maxBatch

// The backoff between attempts at a batch whose unit failed.
const (
	minRetry = 10 * time.Millisecond
	maxRetry = 5 * time.Second
)

// delivery is one event taken from the bus for a group: its envelope and
// the calls the group's handlers asked for (none when the group has no
// handler for its type; applying it then only moves the position).
type delivery struct {
	env eventstore.Envelope
	// msg and dispatch, until the applier ran it, are the message and
	// the rest of the router's handler: cqrs's dispatch to the group's
	// handlers for the event's type, which queue their calls.
	msg      *message.Message
	dispatch message.HandlerFunc
	calls    []call
	// span, when the group is a process with a handler for the event's
	// type, ends once the event is applied (a read model's batch has one
	// span for all its events, see Engine.startBatchSpan).
	span trace.Span
}

// handled reports whether the group has a handler for d's event: it is
// to be dispatched, or was.
func (d *delivery) handled() bool { return d.dispatch != nil || d.calls != nil }

// call is one handler's apply of one decoded event.
type call struct {
	apply func(ctx context.Context, env eventstore.Envelope, e domain.Event) error
	event domain.Event
}

type deliveryKey struct{}

// queueCall records, in the delivery that ctx carries, that apply must
// run on e. It is what the handlers the cqrs processor dispatches to do:
// they decide nothing and write nothing, the applier applies later.
func queueCall(ctx context.Context, apply func(context.Context, eventstore.Envelope, domain.Event) error, e domain.Event) error {
	d, ok := ctx.Value(deliveryKey{}).(*delivery)
	if !ok {
		return errors.New("consumer handler called outside a delivery of the engine")
	}
	d.calls = append(d.calls, call{apply: apply, event: e})
	return nil
}

// applier queues a group's deliveries in log order and applies them in
// batches, one goroutine per group.
type applier struct {
	engine *Engine
	group  *Group

	mu    sync.Mutex
	queue []*delivery
	// through is the highest position queued.
	through uint64

	// space holds a token per queued delivery: a full channel holds the
	// bus back.
	space chan struct{}
	// wake tells the applier that the queue has grown.
	wake chan struct{}
}

func newApplier(e *Engine, p *Group) *applier {
	return &applier{engine: e, group: p, space: make(chan struct{}, maxQueued), wake: make(chan struct{}, 1)}
}

// seen reports whether position was queued or applied already (a
// redelivery).
func (a *applier) seen(position uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return position <= max(a.through, a.group.tracker.Position())
}

// enqueue queues d once there is room, unless its position was queued
// already. Once the engine stops it queues nothing: d is then not
// applied, and its position does not move (the next start's catch-up
// applies it from the log).
func (a *applier) enqueue(d *delivery) {
	select {
	case a.space <- struct{}{}:
	case <-a.engine.quit:
		endSpan(d, errStopped)
		return
	}
	a.mu.Lock()
	select {
	case <-a.engine.quit:
		// abandon (under this lock) may have run already: d must not
		// join the queue.
		a.mu.Unlock()
		endSpan(d, errStopped)
		return
	default:
	}
	if d.env.Position <= max(a.through, a.group.tracker.Position()) {
		a.mu.Unlock()
		<-a.space
		endSpan(d, nil)
		return
	}
	a.queue = append(a.queue, d)
	a.through = d.env.Position
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run applies the queue until the engine stops. A batch begun is
// finished (or its attempt fails) before run returns; what is still
// queued then is left unapplied.
func (a *applier) run() {
	defer a.engine.appliers.Done()
	retry := minRetry
	for {
		batch := a.next()
		if batch == nil {
			a.abandon()
			return
		}
		applied, err := a.apply(batch)
		a.dequeue(applied)
		if err != nil {
			first, last := batch[applied].env, batch[len(batch)-1].env
			a.engine.logger.Error("consumer: cannot apply a batch; retrying it",
				"group", a.group.Name, "kind", a.group.Kind.String(),
				"from", first.Position, "through", last.Position, "events", len(batch)-applied,
				"retry_in", retry.String(), "err", err)
			select {
			case <-time.After(retry):
			case <-a.engine.quit:
				a.abandon()
				return
			}
			retry = min(retry*2, maxRetry)
			continue
		}
		retry = minRetry
	}
}

// dequeue removes the n oldest deliveries, applied.
func (a *applier) dequeue(n int) {
	if n == 0 {
		return
	}
	a.mu.Lock()
	clear(a.queue[:n])
	a.queue = a.queue[n:]
	a.mu.Unlock()
	for range n {
		<-a.space
	}
}

// next waits for deliveries and returns the oldest, at most maxBatch, or
// nil once the engine stops.
func (a *applier) next() []*delivery {
	for {
		select {
		case <-a.engine.quit:
			return nil
		default:
		}
		a.mu.Lock()
		n := min(len(a.queue), maxBatch)
		batch := a.queue[:n:n]
		a.mu.Unlock()
		if n > 0 {
			return batch
		}
		select {
		case <-a.wake:
		case <-a.engine.quit:
			return nil
		}
	}
}

// apply applies batch as one unit of work of the group's checkpoints,
// moves the group's position to its last event and returns how many of
// batch's deliveries are applied: all of them, or, when the unit fails,
// none (the unit rolled back) or, for checkpoints whose units keep what
// they wrote before failing (KeepsFailedWrites), those applied whole
// before the failure, whose position it then records.
func (a *applier) apply(batch []*delivery) (n int, err error) {
	p := a.group
	for i, d := range batch {
		if d.dispatch == nil {
			continue
		}
		d.msg.SetContext(context.WithValue(d.msg.Context(), deliveryKey{}, d))
		if _, err := d.dispatch(d.msg); err != nil {
			// A payload that does not decode fails again: the group
			// waits here, as it did when the bus redelivered it, once
			// what came before it is applied.
			d.calls = nil
			err = fmt.Errorf("%s %s: dispatch %s at %d: %w", p.Kind, p.Name, d.env.Type, d.env.Position, err)
			if i == 0 {
				return 0, err
			}
			applied, aerr := a.apply(batch[:i])
			return applied, errors.Join(aerr, err)
		}
		d.msg, d.dispatch = nil, nil
	}
	// The span starts once every event is dispatched: a batch cut short
	// by an event that does not decode is applied by the call above, with
	// a span of its own over what it applies, not one inside another.
	var span trace.Span
	if p.Kind == ReadModel {
		span = a.engine.startBatchSpan(p, batch)
	}
	if span != nil {
		defer func() {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "batch failed")
			}
			span.End()
		}()
	}
	last := batch[len(batch)-1].env.Position
	whole := 0
	err = p.Checkpoints.Advance(context.Background(), p.Name, last, func(ctx context.Context) error {
		applied := AppliedThrough(ctx)
		if span != nil {
			ctx = trace.ContextWithSpan(ctx, span)
		}
		for i, d := range batch {
			whole = i
			if d.env.Position <= applied {
				continue // another replica applied it
			}
			for _, c := range d.calls {
				cctx := WithEnvelope(ctx, d.env)
				if d.span != nil {
					cctx = trace.ContextWithSpan(cctx, d.span)
				}
				if err := c.apply(cctx, d.env, c.event); err != nil {
					err = fmt.Errorf("apply %s at %d: %w", d.env.Type, d.env.Position, err)
					if d.span != nil {
						d.span.RecordError(err)
					}
					return err
				}
			}
		}
		whole = len(batch)
		return nil
	})
	if err != nil {
		err = fmt.Errorf("%s %s: %w", p.Kind, p.Name, err)
		if _, keeps := p.Checkpoints.(KeepsFailedWrites); !keeps || whole == 0 {
			return 0, err
		}
		// What was applied before the failure stays: record it, so that
		// the retry neither repeats it nor skips what follows.
		through := batch[whole-1].env.Position
		if rerr := p.Checkpoints.Advance(context.Background(), p.Name, through, noWork); rerr != nil {
			return 0, errors.Join(err, fmt.Errorf("record the position %d reached before the failure: %w", through, rerr))
		}
		last = through
		batch = batch[:whole]
	}
	p.tracker.Advance(last)
	for _, d := range batch {
		endSpan(d, nil)
	}
	return len(batch), err
}

// KeepsFailedWrites is implemented by Checkpoints whose unit of work
// cannot be undone: when apply fails, what it wrote before failing stays
// (the in-memory read models; processes, whose work is appending
// events). The engine applies several events per unit, so it must know:
// after a failed unit it records the events applied before the failure
// as applied and retries from the failing one, where for checkpoints that
// roll a failed unit back (a database transaction) it retries the whole
// unit.
type KeepsFailedWrites interface {
	Checkpoints
	// KeepsFailedWrites marks the adapter; it does nothing.
	KeepsFailedWrites()
}

// noWork is the unit of work that only records a position.
func noWork(context.Context) error { return nil }

// abandon ends the spans of what the engine stopped before applying.
func (a *applier) abandon() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.queue {
		endSpan(d, errStopped)
	}
}

var errStopped = errors.New("the engine stopped before the event was applied; the next start applies it from the log")

// endSpan ends d's span, if any, with err as its status when not nil.
func endSpan(d *delivery, err error) {
	if d.span == nil {
		return
	}
	if err != nil {
		d.span.RecordError(err)
		d.span.SetStatus(codes.Error, err.Error())
	}
	d.span.End()
}
