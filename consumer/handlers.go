package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/eventstore"
)

// Handler applies one event type for a group (a read model's projection or
// a process).
type Handler struct {
	eventType string
	// decode is nil for handlers that need only the envelope.
	decode func(data []byte) (domain.Event, error)
	apply  func(ctx context.Context, env eventstore.Envelope, e domain.Event) error
	group  cqrs.GroupEventHandler
	// every is set on the handlers of OnEvery, which read only the
	// envelope and do the same for each type.
	every bool
}

// On returns the handler that applies events of type E with apply. The same
// function runs whether the event arrives over the bus or during a rebuild.
func On[E any, PE interface {
	*E
	domain.Event
}](apply func(ctx context.Context, env eventstore.Envelope, e PE) error) Handler {
	applyAny := func(ctx context.Context, env eventstore.Envelope, e domain.Event) error {
		return apply(ctx, env, e.(PE))
	}
	return Handler{
		eventType: PE(new(E)).EventType(),
		decode: func(data []byte) (domain.Event, error) {
			e := PE(new(E))
			if err := json.Unmarshal(data, e); err != nil {
				return nil, err
			}
			return e, nil
		},
		apply: applyAny,
		// From the bus, cqrs decodes the event and calls this; the group's
		// applier applies it later, in a batch (see applier.go).
		group: cqrs.NewGroupEventHandler(func(ctx context.Context, e *E) error {
			return queueCall(ctx, applyAny, PE(e))
		}),
	}
}

// marshaler adapts the log's messages to cqrs: the event name is the
// envelope's type and the payload is the event's JSON.
type marshaler struct{}

func (marshaler) Marshal(any) (*message.Message, error) {
	return nil, errors.New("events reach the bus only through the relay")
}

func (marshaler) Unmarshal(msg *message.Message, v any) error {
	if _, ok := v.(*envelopeOnly); ok {
		return nil // its handler reads only the envelope
	}
	return json.Unmarshal(msg.Payload, v)
}

func (marshaler) Name(v any) string {
	if e, ok := v.(domain.Event); ok {
		return e.EventType()
	}
	return fmt.Sprintf("%T", v)
}

// NameFromMessage names the event's type, except for the messages of a
// group of OnEvery handlers, which cqrs dispatches to the group's one
// handler (see Attach).
func (marshaler) NameFromMessage(msg *message.Message) string {
	if every, _ := msg.Context().Value(everyKey{}).(bool); every {
		return everyEventType
	}
	return msg.Metadata.Get(eventstore.MetaType)
}

// everyEventType names, for cqrs, the one handler of a group of OnEvery
// handlers. Event types are identifiers, so no event's type is this.
const everyEventType = "*"

// everyKey marks, in a message's context, a message for a group of OnEvery
// handlers.
type everyKey struct{}

// every reports whether every handler of p came from OnEvery (reading
// only the envelope).
func (p *Group) every() bool {
	if len(p.Handlers) == 0 {
		return false
	}
	for _, h := range p.Handlers {
		if !h.every {
			return false
		}
	}
	return true
}

// OnEvery returns handlers that call apply for every event type of
// prototypes, for read models (such as the audit index) that keep envelopes
// whatever their payload.
func OnEvery(prototypes []domain.Event, apply func(ctx context.Context, env eventstore.Envelope) error) []Handler {
	applyEnv := func(ctx context.Context, env eventstore.Envelope, _ domain.Event) error {
		return apply(ctx, env)
	}
	handlers := make([]Handler, 0, len(prototypes))
	for _, proto := range prototypes {
		handlers = append(handlers, Handler{
			eventType: proto.EventType(),
			apply:     applyEnv,
			group:     envelopeHandler{event: &envelopeOnly{eventType: proto.EventType()}, apply: applyEnv},
			every:     true,
		})
	}
	return handlers
}

// envelopeOnly stands, for cqrs, for an event whose handler reads only
// its envelope: it names the type, and the marshaler decodes nothing into
// it. One value serves every delivery (nothing writes it), so cqrs's look
// at every handler of a group for each message allocates nothing for
// these, and no payload is decoded for nothing.
type envelopeOnly struct{ eventType string }

func (e *envelopeOnly) EventType() string { return e.eventType }

// envelopeHandler is the cqrs.GroupEventHandler of an event type whose
// handler reads only the envelope.
type envelopeHandler struct {
	event *envelopeOnly
	apply func(ctx context.Context, env eventstore.Envelope, e domain.Event) error
}

func (h envelopeHandler) NewEvent() any { return h.event }

func (h envelopeHandler) Handle(ctx context.Context, _ any) error {
	return queueCall(ctx, h.apply, nil)
}

type envelopeKey struct{}

// WithEnvelope returns ctx carrying env, the event a handler is applying.
func WithEnvelope(ctx context.Context, env eventstore.Envelope) context.Context {
	return context.WithValue(ctx, envelopeKey{}, env)
}

// EnvelopeFrom returns the event a handler is applying, if ctx carries one.
func EnvelopeFrom(ctx context.Context) (eventstore.Envelope, bool) {
	env, ok := ctx.Value(envelopeKey{}).(eventstore.Envelope)
	return env, ok
}
