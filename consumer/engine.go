package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/tracing"
)

// Kind says what a group builds, which decides whether clients wait for it.
type Kind int

const (
	// ReadModel groups build what queries read. The consistency wait after
	// a command (Engine.WaitFor) covers them.
	ReadModel Kind = iota
	// Process groups do work on behalf of events (ingestion, jobs) and
	// record outcomes as events. Nobody waits for them: a slow process
	// must never delay a command's answer.
	Process
)

// spanPrefix names the spans of a group of this kind.
func (k Kind) spanPrefix() string {
	if k == Process {
		return "process"
	}
	return "projection"
}

func (k Kind) String() string {
	if k == Process {
		return "process"
	}
	return "read model"
}

// Group is one consumer's set of handlers — a read model's projection or a
// process — consumed as one Watermill consumer group so that it sees
// events in log order.
type Group struct {
	Name     string
	Kind     Kind
	Handlers []Handler
	// Checkpoints, when set, keeps this group's position instead of the
	// engine's: a process keeps it beside the log, a read model beside
	// its rows.
	Checkpoints Checkpoints
	tracker     *Tracker
	byType      map[string]Handler
	// everyType: every handler came from OnEvery (see Attach).
	everyType bool
	// applier applies what the bus delivers (nil until Attach).
	applier *applier
	// spanName names the group's spans ("projection audit").
	spanName string
}

// appliedKey carries, in the context of a unit of work, the position its
// checkpoint had already recorded when the unit began.
type appliedKey struct{}

// WithAppliedThrough tells apply, through ctx, that the events up to
// position were already applied to the group's store (by another replica
// sharing it): a Checkpoints adapter shared between replicas calls it
// with the position it found, under its lock, when a unit begins.
func WithAppliedThrough(ctx context.Context, position uint64) context.Context {
	return context.WithValue(ctx, appliedKey{}, position)
}

// AppliedThrough returns the position WithAppliedThrough put in ctx, 0
// when none.
func AppliedThrough(ctx context.Context) uint64 {
	pos, _ := ctx.Value(appliedKey{}).(uint64)
	return pos
}

// Engine runs groups: a catch-up straight from the log at start, then
// live through Watermill's cqrs event group processor.
type Engine struct {
	groups []*Group
	byName map[string]*Group
	logger *slog.Logger

	// mu orders the start of each bus delivery against Stop: a delivery
	// joins applying before Stop begins waiting, or is refused.
	mu       sync.Mutex
	stopped  bool
	applying sync.WaitGroup
	// quit is closed by Stop; appliers counts the groups' appliers
	// running.
	quit     chan struct{}
	stopOnce sync.Once
	appliers sync.WaitGroup

	// opener, when set, opens what the bus carries sealed.
	opener Opener
	// decoded keeps the last events parsed and opened for all groups.
	decoded decodedCache
	// tracer starts a span per batch a read model applies from the bus,
	// per event a process applies and per batch of the rebuild (no-op
	// unless TraceWith gave a provider).
	tracer trace.Tracer
	// traced says whether TraceWith gave a provider: when not, a batch's
	// span options are not even built.
	traced bool
}

// Opener turns an event as the bus carries it (its content sealed, see
// package eventstore/sealed) into the event the handlers apply (content
// opened, or marked shredded when its key is gone).
type Opener interface {
	Open(ctx context.Context, env eventstore.Envelope) (eventstore.Envelope, error)
}

// OpenWith makes the engine open every event it takes from the bus with o
// before a handler sees it. Call it before Attach. Rebuild reads through
// the store it is given, which opens for itself.
func (e *Engine) OpenWith(o Opener) { e.opener = o }

// TraceWith makes the engine trace with tp (nil: off). A process applies
// an event taken from the bus in a span whose parent is the span the
// event's metadata recorded (package tracing), and a read model a batch in
// a span whose parent is its first event's (see startBatchSpan), so a
// trace shows a request and the projections and processes its events
// caused. Call it before Attach.
func (e *Engine) TraceWith(tp trace.TracerProvider) {
	e.tracer, e.traced = tracing.Tracer(tp), tp != nil
}

// NewEngine prepares groups whose positions are kept in checkpoints,
// unless a group brings its own.
func NewEngine(logger *slog.Logger, checkpoints Checkpoints, groups ...*Group) *Engine {
	e := &Engine{byName: map[string]*Group{}, logger: logger, tracer: tracing.Tracer(nil), quit: make(chan struct{})}
	for _, p := range groups {
		if p.Checkpoints == nil {
			p.Checkpoints = checkpoints
		}
		p.tracker = newTracker()
		p.byType = map[string]Handler{}
		for _, h := range p.Handlers {
			p.byType[h.eventType] = h
		}
		p.everyType = p.every()
		p.spanName = p.Kind.spanPrefix() + " " + p.Name
		e.groups = append(e.groups, p)
		e.byName[p.Name] = p
	}
	return e
}

// rebuildBatch is how many events a catch-up applies per unit of work.
const rebuildBatch = 1000

// Rebuild loads each group's checkpoint and applies the rest of the
// log, reading the store directly (no bus) in batches of one unit of work
// each, and returns the position reached.
func (e *Engine) Rebuild(ctx context.Context, store eventstore.Store) (_ uint64, err error) {
	// The rebuild is a trace of its own: its batches mix organizations
	// and requests long answered, so no event's trace is its parent.
	ctx, span := e.tracer.Start(ctx, "rebuild", trace.WithNewRoot())
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "rebuild failed")
		}
		span.End()
	}()
	for _, p := range e.groups {
		pos, err := p.Checkpoints.Position(ctx, p.Name)
		if err != nil {
			return 0, fmt.Errorf("%s %s: load checkpoint: %w", p.Kind, p.Name, err)
		}
		p.tracker.Advance(pos)
	}
	// Reading the next batch overlaps applying this one: decoding the log
	// and folding events each take about half the time, on separate cores.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		envs []eventstore.Envelope
		err  error
	}
	batches := make(chan batch, 2)
	go func() {
		defer close(batches)
		after := e.lowest(func(*Group) bool { return true })
		for {
			envs, err := store.ReadAll(ctx, after, eventstore.Filter{}, rebuildBatch)
			if err != nil {
				err = fmt.Errorf("rebuild: read after %d: %w", after, err)
			}
			select {
			case batches <- batch{envs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(envs) < rebuildBatch {
				return
			}
			after = envs[len(envs)-1].Position
		}
	}()
	reached := e.lowest(func(*Group) bool { return true })
	for b := range batches {
		if b.err != nil {
			return reached, b.err
		}
		if len(b.envs) == 0 {
			break
		}
		if err := e.applyBatch(ctx, b.envs); err != nil {
			return reached, err
		}
		reached = b.envs[len(b.envs)-1].Position
	}
	return reached, nil
}

// Follow applies the log to the groups straight from store, with no bus: a
// catch-up from their checkpoints (as Rebuild does), then each event
// appended after, as the store delivers it, until ctx ends (nil) or a
// unit fails (its error; the group's position stays before the event, so
// the next Follow applies it again). Each event's unit is traced as a bus
// delivery is: a child of the span its metadata records. This is how a
// single-active process runs on the replica that holds its role (see
// package cluster): no other replica's bus must hand it events.
func (e *Engine) Follow(ctx context.Context, store eventstore.Store) error {
	from, err := e.Rebuild(ctx, store)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	err = store.Subscribe(ctx, from, eventstore.Filter{}, func(env eventstore.Envelope) error {
		for _, p := range e.groups {
			if env.Position <= p.tracker.Position() {
				continue
			}
			spanCtx, span := e.startSpan(ctx, p, env)
			err := e.applyGroup(spanCtx, p, []eventstore.Envelope{env}, make([]domain.Event, 1), 0)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, "handler failed")
			}
			span.End()
			if err != nil {
				return fmt.Errorf("%s %s: %w", p.Kind, p.Name, err)
			}
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("consumer: follow the log from %d: %w", from, err)
}

// applyBatch applies envs (in log order) to every group that has not
// seen them, one unit of work per group. Decoded payloads are shared
// between groups, which must not modify them.
func (e *Engine) applyBatch(ctx context.Context, envs []eventstore.Envelope) error {
	decoded := make([]domain.Event, len(envs))
	last := envs[len(envs)-1].Position
	for _, p := range e.groups {
		from := 0
		for from < len(envs) && envs[from].Position <= p.tracker.Position() {
			from++
		}
		if from == len(envs) {
			continue
		}
		ctx, span := e.tracer.Start(ctx, p.Kind.spanPrefix()+" batch "+p.Name, trace.WithAttributes(
			attribute.String("palisade.group", p.Name),
			attribute.Int("palisade.events", len(envs)-from),
			attribute.Int64("palisade.position.first", int64(envs[from].Position)),
			attribute.Int64("palisade.position.last", int64(last)),
		))
		if err := e.applyGroup(ctx, p, envs, decoded, from); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "batch failed")
			span.End()
			return fmt.Errorf("%s %s: %w", p.Kind, p.Name, err)
		}
		span.End()
	}
	return nil
}

// applyGroup applies envs[from:] to group p as one unit of work and
// advances its position to the last of envs. decoded holds the payloads
// decoded so far, shared between groups.
func (e *Engine) applyGroup(ctx context.Context, p *Group, envs []eventstore.Envelope, decoded []domain.Event, from int) error {
	last := envs[len(envs)-1].Position
	err := p.Checkpoints.Advance(ctx, p.Name, last, func(ctx context.Context) error {
		applied := AppliedThrough(ctx)
		for i := from; i < len(envs); i++ {
			env := envs[i]
			if env.Position <= applied {
				continue // another replica applied it
			}
			h, ok := p.byType[env.Type]
			if !ok {
				continue
			}
			if decoded[i] == nil && h.decode != nil {
				var err error
				if decoded[i], err = h.decode(env.Data); err != nil {
					return fmt.Errorf("decode %s at %d: %w", env.Type, env.Position, err)
				}
			}
			if err := h.apply(ctx, env, decoded[i]); err != nil {
				return fmt.Errorf("apply %s at %d: %w", env.Type, env.Position, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.tracker.Advance(last)
	return nil
}

// Names lists the groups, one consumer group each.
func (e *Engine) Names() []string {
	names := make([]string, len(e.groups))
	for i, p := range e.groups {
		names[i] = p.Name
	}
	return names
}

// Position returns the lowest position every read model has applied: what
// a query can rely on. Processes do not hold it back.
func (e *Engine) Position() uint64 {
	return e.lowest(isReadModel)
}

func isReadModel(g *Group) bool { return g.Kind == ReadModel }

// lowest returns the lowest position of the groups that match.
func (e *Engine) lowest(match func(*Group) bool) uint64 {
	var lowest uint64
	first := true
	for _, p := range e.groups {
		if !match(p) {
			continue
		}
		if pos := p.tracker.Position(); first || pos < lowest {
			lowest, first = pos, false
		}
	}
	return lowest
}

// WaitFor returns once every read model has applied position. It is the
// consistency wait of commands and queries, so it never waits for a
// process: those report through the events they record (a document's
// state, a job's state).
func (e *Engine) WaitFor(ctx context.Context, position uint64) error {
	for _, p := range e.groups {
		if !isReadModel(p) {
			continue
		}
		if err := p.tracker.Wait(ctx, position); err != nil {
			return fmt.Errorf("read model %s at %d, waiting for %d: %w", p.Name, p.tracker.Position(), position, err)
		}
	}
	return nil
}

// WaitForGroup returns once the named group (read model or process) has
// applied position, for tests and tools that must see a process's work.
func (e *Engine) WaitForGroup(ctx context.Context, name string, position uint64) error {
	p := e.byName[name]
	if p == nil {
		return fmt.Errorf("consumer: no group %q", name)
	}
	if err := p.tracker.Wait(ctx, position); err != nil {
		return fmt.Errorf("%s %s at %d, waiting for %d: %w", p.Kind, p.Name, p.tracker.Position(), position, err)
	}
	return nil
}

// Positions reports each group's position, for readiness and metrics.
func (e *Engine) Positions() map[string]uint64 {
	out := make(map[string]uint64, len(e.groups))
	for _, p := range e.groups {
		out[p.Name] = p.tracker.Position()
	}
	return out
}

// SubscriberFunc returns the subscriber a group's consumer group reads
// from (one per group, so each group sees every event in order).
type SubscriberFunc func(group string) (message.Subscriber, error)

// Attach registers every group on router as a cqrs event group reading
// topic, and starts each group's applier. A delivery is acknowledged once
// it is queued in its group's applier, which applies the queue in batches
// (see applier.go). Redelivered events (at or below what a group queued)
// are acknowledged without being applied again.
func (e *Engine) Attach(router *message.Router, topic string, subscriber SubscriberFunc) error {
	for _, p := range e.groups {
		if p.applier == nil {
			p.applier = newApplier(e, p)
			e.appliers.Add(1)
			go p.applier.run()
		}
	}
	router.AddMiddleware(e.positionMiddleware)
	processor, err := cqrs.NewEventGroupProcessorWithConfig(router, cqrs.EventGroupProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.EventGroupProcessorGenerateSubscribeTopicParams) (string, error) {
			return topic, nil
		},
		SubscriberConstructor: func(p cqrs.EventGroupProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return subscriber(p.EventGroupName)
		},
		AckOnUnknownEvent: true,
		Marshaler:         marshaler{},
		Logger:            NewWatermillLogger(e.logger),
	})
	if err != nil {
		return fmt.Errorf("consumer: event processor: %w", err)
	}
	for _, p := range e.groups {
		groups := make([]cqrs.GroupEventHandler, len(p.Handlers))
		for i, h := range p.Handlers {
			groups[i] = h.group
		}
		if p.everyType {
			// One handler for cqrs to look at instead of one per type:
			// cqrs looks at each handler of a group for every message it
			// dispatches (and allocates a log field map for each that does
			// not match), which for the audit group, with a handler for
			// every type, was about a fifth of the command path's
			// allocations. positionMiddleware marks this group's messages
			// so that the marshaler names them all by this handler's type.
			byType := p.byType
			groups = []cqrs.GroupEventHandler{envelopeHandler{
				event: &envelopeOnly{eventType: everyEventType},
				apply: func(ctx context.Context, env eventstore.Envelope, e domain.Event) error {
					return byType[env.Type].apply(ctx, env, e)
				},
			}}
		}
		if err := processor.AddHandlersGroup(p.Name, groups...); err != nil {
			return fmt.Errorf("consumer: add %s: %w", p.Name, err)
		}
	}
	return nil
}

// Stop makes the groups apply no further event from the bus and returns
// once every batch being applied is, so that what the handlers wrote
// happens before whatever the caller does next (closing the stores they
// use, above all). Call it after closing the router: Watermill's router
// returns from Close with a handler still running when a message was
// handed over after it began waiting for its handlers, or when one
// outlasts its CloseTimeout. What was acknowledged and not yet applied
// (still queued, or refused here) stays unapplied: its group's position
// does not move, so the next start's catch-up applies it from the log.
func (e *Engine) Stop() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.stopOnce.Do(func() { close(e.quit) })
	e.applying.Wait()
	e.appliers.Wait()
}

// startApplying reports whether a delivery may be applied, counting it
// until it returns when it may.
func (e *Engine) startApplying() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return false
	}
	e.applying.Add(1)
	return true
}

// positionMiddleware makes groups idempotent and hands what the bus
// delivers to the groups' appliers: it parses the envelope (once for all
// groups, see decodedCache), skips what was already queued or applied, and
// queues the delivery, whether or not the group had a handler for the
// event's type, with the rest of the router's handler (cqrs's dispatch to
// the group's handler for the type, which the applier runs; see
// queueCall). Once Stop was called it queues nothing.
func (e *Engine) positionMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		p := e.byName[message.HandlerNameFromCtx(msg.Context())]
		if p == nil || p.applier == nil {
			return h(msg)
		}
		if !e.startApplying() {
			return nil, nil
		}
		defer e.applying.Done()
		decoded, ok := e.take(p, msg)
		if !ok {
			return nil, nil
		}
		env := decoded.env
		d := &delivery{env: env}
		// Nothing of the group applies an event of a type it has no
		// handler for: only the position moves. Opening its content and
		// cqrs's dispatch (a look at every handler of the group, two
		// allocations each) would be work for nothing, done by every
		// group for every event.
		if _, ok := p.byType[env.Type]; ok {
			if e.opener != nil {
				opened, err := decoded.open(msg.Context(), e.opener)
				if err != nil {
					e.logger.Error("consumer: cannot open the event's content; it will be redelivered",
						"group", p.Name, "type", env.Type, "position", env.Position, "org_id", env.OrgID, "err", err)
					return nil, err
				}
				d.env = opened
				msg.Payload = message.Payload(opened.Data)
			}
			if p.Kind == Process {
				// A process step is a span of its own; a read model's
				// events are traced per batch, by the applier.
				_, d.span = e.startSpan(msg.Context(), p, d.env)
			}
			// cqrs's dispatch runs in the group's applier, just before
			// the apply: it is most of a delivery's work (a look at
			// every handler of the group), and the bus hands out the
			// next event only once this one is acknowledged.
			if p.everyType {
				msg.SetContext(context.WithValue(msg.Context(), everyKey{}, true))
			}
			d.msg, d.dispatch = msg, h
		}
		p.applier.enqueue(d)
		return nil, nil
	}
}

// take parses msg for group p (once for all groups), unless the group
// queued or applied it already.
func (e *Engine) take(p *Group, msg *message.Message) (*decodedEvent, bool) {
	decoded, err := e.decoded.envelope(msg)
	if err != nil {
		e.logger.Error("consumer: dropping malformed message", "group", p.Name, "message", msg.UUID, "err", err)
		return nil, false
	}
	if p.applier.seen(decoded.env.Position) {
		return nil, false
	}
	return decoded, true
}

// Wants reports, for an in-process bus that can spare a group the events
// it has no handler for (bus/fanout's Filter), whether the group named
// has one for msg's type. What it does not want goes to Pass instead.
func (e *Engine) Wants(group string) func(msg *message.Message) bool {
	p := e.byName[group]
	return func(msg *message.Message) bool {
		if p == nil {
			return true
		}
		_, ok := p.byType[msg.Metadata.Get(eventstore.MetaType)]
		return ok
	}
}

// Pass returns what the bus calls, in log order, with the events it does
// not hand to the group named because Wants said no: the group's position
// moves past them after what it queued before, exactly as when they come
// through the router (see positionMiddleware).
func (e *Engine) Pass(group string) func(msg *message.Message) {
	p := e.byName[group]
	return func(msg *message.Message) {
		if p == nil || p.applier == nil || !e.startApplying() {
			return
		}
		defer e.applying.Done()
		if decoded, ok := e.take(p, msg); ok {
			p.applier.enqueue(&delivery{env: decoded.env})
		}
	}
}
