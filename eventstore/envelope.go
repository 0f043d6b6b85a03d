package eventstore

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Actor is the effective principal that was authorized for an event: the
// subject, its kind, the role snapshot at the time, the token scope that
// narrowed it, a service account's creator, and the delegation chain it
// acted under.
type Actor struct {
	Subject string   `json:"subject"`
	Kind    string   `json:"kind"`
	Roles   []string `json:"roles,omitempty"`
	// Scope lists the permissions the token's scope allowed. nil (absent
	// from the JSON) means the token carried no scope; an empty list means
	// a scope that allowed nothing. The difference matters: a process
	// rebuilds the principal with this scope.
	Scope []string `json:"scope"`
	// CreatedBy is the user who created the service account, when the
	// actor is one.
	CreatedBy  string   `json:"created_by,omitempty"`
	OnBehalfOf []string `json:"on_behalf_of,omitempty"`
	// InvokerKind is the kind of OnBehalfOf[0] (user or service), so a
	// process can resolve a delegated actor's invoker as it is now.
	InvokerKind string `json:"invoker_kind,omitempty"`
}

// MarshalJSON writes the actor, leaving out a nil Scope (no scope) but
// keeping an empty one (a scope that allowed nothing).
func (a Actor) MarshalJSON() ([]byte, error) {
	type plain Actor
	var scope *[]string
	if a.Scope != nil {
		scope = &a.Scope
	}
	return json.Marshal(struct {
		plain
		Scope *[]string `json:"scope,omitempty"`
	}{plain(a), scope})
}

// Metadata is everything about an event that is not its payload. Adapters
// store it as one JSON document (EventStoreDB's user metadata).
type Metadata struct {
	OrgID         string `json:"org_id"`
	Actor         Actor  `json:"actor"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	TraceID       string `json:"trace_id,omitempty"`
	// SpanID is the W3C span id of the span that appended the event, when
	// tracing was on and sampled it: what the event causes continues the
	// trace below that span (package tracing).
	SpanID string `json:"span_id,omitempty"`
	// Authorization is the access decision that let the command through.
	Authorization string `json:"authorization,omitempty"`
	// IdempotencyKey is the client's Idempotency-Key, when it sent one.
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	SchemaVersion  int       `json:"schema_version"`
	OccurredAt     time.Time `json:"occurred_at"`
}

// NewEvent is an event about to be appended.
type NewEvent struct {
	// ID is the event id. Left zero, the store assigns a UUIDv7; a caller
	// that may retry an append sets it so the retry is recognisable.
	ID   uuid.UUID
	Type string
	Metadata
	Data json.RawMessage
}

// Envelope is an event as recorded in the log.
type Envelope struct {
	ID            uuid.UUID       `json:"id"`
	Type          string          `json:"type"`
	Stream        StreamName      `json:"-"`
	StreamVersion uint64          `json:"stream_version"`
	Position      uint64          `json:"position"`
	Data          json.RawMessage `json:"data"`
	Metadata
}

// MarshalJSON writes the envelope with its stream as a plain name.
func (e Envelope) MarshalJSON() ([]byte, error) {
	type plain Envelope
	return json.Marshal(struct {
		plain
		Stream string `json:"stream"`
	}{plain(e), e.Stream.String()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Envelope) UnmarshalJSON(b []byte) error {
	type plain Envelope
	var v struct {
		plain
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	stream, err := ParseStreamName(v.Stream)
	if err != nil {
		return err
	}
	*e = Envelope(v.plain)
	e.Stream = stream
	return nil
}

// NewEventID returns a fresh UUIDv7: time-ordered, so ids sort roughly by
// creation and index well.
func NewEventID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
