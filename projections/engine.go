package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/eventstore"
)

// Handler applies one event type to a read model.
type Handler struct {
	eventType string
	// decode is nil for handlers that need only the envelope.
	decode func(data []byte) (domain.Event, error)
	apply  func(ctx context.Context, env eventstore.Envelope, e domain.Event) error
	group  cqrs.GroupEventHandler
}

// On returns the handler that applies events of type E with apply. The same
// function runs whether the event arrives over the bus or during a rebuild.
func On[E any, PE interface {
	*E
	domain.Event
}](apply func(ctx context.Context, env eventstore.Envelope, e PE) error) Handler {
	h := Handler{
		eventType: PE(new(E)).EventType(),
		decode: func(data []byte) (domain.Event, error) {
			e := PE(new(E))
			if err := json.Unmarshal(data, e); err != nil {
				return nil, err
			}
			return e, nil
		},
		apply: func(ctx context.Context, env eventstore.Envelope, e domain.Event) error {
			return apply(ctx, env, e.(PE))
		},
	}
	h.group = cqrs.NewGroupEventHandler(func(ctx context.Context, e *E) error {
		env, ok := envelopeFrom(ctx)
		if !ok {
			return errors.New("projection handler called without an envelope")
		}
		return apply(ctx, env, PE(e))
	})
	return h
}

// Projection is one read model's set of handlers, consumed as one Watermill
// consumer group so that it sees events in log order.
type Projection struct {
	Name     string
	Handlers []Handler
	tracker  *Tracker
	byType   map[string]Handler
}

// Engine runs projections: a rebuild straight from the log at start, then
// live through Watermill's cqrs event group processor.
type Engine struct {
	projections []*Projection
	byName      map[string]*Projection
	logger      *slog.Logger
}

// NewEngine prepares projections.
func NewEngine(logger *slog.Logger, projections ...*Projection) *Engine {
	e := &Engine{byName: map[string]*Projection{}, logger: logger}
	for _, p := range projections {
		p.tracker = newTracker()
		p.byType = map[string]Handler{}
		for _, h := range p.Handlers {
			p.byType[h.eventType] = h
		}
		e.projections = append(e.projections, p)
		e.byName[p.Name] = p
	}
	return e
}

// Rebuild applies the whole log after the projections' positions, reading
// the store directly (no bus), and returns the position reached.
func (e *Engine) Rebuild(ctx context.Context, store eventstore.Store) (uint64, error) {
	const batch = 2000
	after := e.Position()
	for {
		envs, err := store.ReadAll(ctx, after, eventstore.Filter{}, batch)
		if err != nil {
			return after, fmt.Errorf("rebuild: read after %d: %w", after, err)
		}
		for _, env := range envs {
			if err := e.Apply(ctx, env); err != nil {
				return after, err
			}
			after = env.Position
		}
		if len(envs) < batch {
			return after, nil
		}
	}
}

// Apply applies one envelope to every projection that has not seen it.
func (e *Engine) Apply(ctx context.Context, env eventstore.Envelope) error {
	var decoded domain.Event
	for _, p := range e.projections {
		if env.Position <= p.tracker.Position() {
			continue
		}
		if h, ok := p.byType[env.Type]; ok {
			if decoded == nil && h.decode != nil {
				var err error
				if decoded, err = h.decode(env.Data); err != nil {
					return fmt.Errorf("projection %s: decode %s at %d: %w", p.Name, env.Type, env.Position, err)
				}
			}
			if err := h.apply(ctx, env, decoded); err != nil {
				return fmt.Errorf("projection %s: apply %s at %d: %w", p.Name, env.Type, env.Position, err)
			}
		}
		p.tracker.Advance(env.Position)
	}
	return nil
}

// Names lists the projections, one consumer group each.
func (e *Engine) Names() []string {
	names := make([]string, len(e.projections))
	for i, p := range e.projections {
		names[i] = p.Name
	}
	return names
}

// Position returns the lowest position every projection has applied.
func (e *Engine) Position() uint64 {
	var lowest uint64
	for i, p := range e.projections {
		if pos := p.tracker.Position(); i == 0 || pos < lowest {
			lowest = pos
		}
	}
	return lowest
}

// WaitFor returns once every projection has applied position.
func (e *Engine) WaitFor(ctx context.Context, position uint64) error {
	for _, p := range e.projections {
		if err := p.tracker.Wait(ctx, position); err != nil {
			return fmt.Errorf("projection %s at %d, waiting for %d: %w", p.Name, p.tracker.Position(), position, err)
		}
	}
	return nil
}

// Positions reports each projection's position, for readiness and metrics.
func (e *Engine) Positions() map[string]uint64 {
	out := make(map[string]uint64, len(e.projections))
	for _, p := range e.projections {
		out[p.Name] = p.tracker.Position()
	}
	return out
}

// SubscriberFunc returns the subscriber a projection's consumer group reads
// from (one per group, so each group sees every event in order).
type SubscriberFunc func(group string) (message.Subscriber, error)

// Attach registers every projection on router as a cqrs event group reading
// topic. Redelivered events (at or below a projection's position) are
// acknowledged without being applied again.
func (e *Engine) Attach(router *message.Router, topic string, subscriber SubscriberFunc) error {
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
		Logger:            watermill.NewSlogLogger(e.logger),
	})
	if err != nil {
		return fmt.Errorf("projections: event processor: %w", err)
	}
	for _, p := range e.projections {
		groups := make([]cqrs.GroupEventHandler, len(p.Handlers))
		for i, h := range p.Handlers {
			groups[i] = h.group
		}
		if err := processor.AddHandlersGroup(p.Name, groups...); err != nil {
			return fmt.Errorf("projections: add %s: %w", p.Name, err)
		}
	}
	return nil
}

// positionMiddleware makes projections idempotent and tracks their
// positions: it parses the envelope once, skips what was already applied,
// and advances the projection after a successful handler, whether or not
// the group had a handler for the event's type.
func (e *Engine) positionMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		p := e.byName[message.HandlerNameFromCtx(msg.Context())]
		if p == nil {
			return h(msg)
		}
		env, err := eventstore.FromMessage(msg)
		if err != nil {
			e.logger.Error("projection: dropping malformed message", "projection", p.Name, "message", msg.UUID, "err", err)
			return nil, nil
		}
		if env.Position <= p.tracker.Position() {
			return nil, nil
		}
		msg.SetContext(withEnvelope(msg.Context(), env))
		out, err := h(msg)
		if err != nil {
			e.logger.Error("projection: handler failed; the event will be redelivered",
				"projection", p.Name, "type", env.Type, "position", env.Position, "org_id", env.OrgID, "err", err)
			return out, err
		}
		p.tracker.Advance(env.Position)
		return out, nil
	}
}

type envelopeKey struct{}

func withEnvelope(ctx context.Context, env eventstore.Envelope) context.Context {
	return context.WithValue(ctx, envelopeKey{}, env)
}

func envelopeFrom(ctx context.Context) (eventstore.Envelope, bool) {
	env, ok := ctx.Value(envelopeKey{}).(eventstore.Envelope)
	return env, ok
}

// marshaler adapts the log's messages to cqrs: the event name is the
// envelope's type and the payload is the event's JSON.
type marshaler struct{}

func (marshaler) Marshal(any) (*message.Message, error) {
	return nil, errors.New("events reach the bus only through the relay")
}

func (marshaler) Unmarshal(msg *message.Message, v any) error {
	return json.Unmarshal(msg.Payload, v)
}

func (marshaler) Name(v any) string {
	if e, ok := v.(domain.Event); ok {
		return e.EventType()
	}
	return fmt.Sprintf("%T", v)
}

func (marshaler) NameFromMessage(msg *message.Message) string {
	return msg.Metadata.Get(eventstore.MetaType)
}

// OnEvery returns handlers that call apply for every event type of
// prototypes, for read models (such as the audit index) that keep envelopes
// whatever their payload.
func OnEvery(prototypes []domain.Event, apply func(ctx context.Context, env eventstore.Envelope) error) []Handler {
	handlers := make([]Handler, 0, len(prototypes))
	for _, proto := range prototypes {
		t := reflect.TypeOf(proto).Elem()
		handlers = append(handlers, Handler{
			eventType: proto.EventType(),
			apply: func(ctx context.Context, env eventstore.Envelope, _ domain.Event) error {
				return apply(ctx, env)
			},
			group: anyEventHandler{typ: t, apply: apply},
		})
	}
	return handlers
}

// anyEventHandler is a cqrs.GroupEventHandler for a type known at run time.
type anyEventHandler struct {
	typ   reflect.Type
	apply func(ctx context.Context, env eventstore.Envelope) error
}

func (h anyEventHandler) NewEvent() any { return reflect.New(h.typ).Interface() }

func (h anyEventHandler) Handle(ctx context.Context, _ any) error {
	env, ok := envelopeFrom(ctx)
	if !ok {
		return errors.New("projection handler called without an envelope")
	}
	return h.apply(ctx, env)
}
