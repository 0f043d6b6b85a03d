package eventstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// Watermill message metadata keys. Only metadata crosses a bus, so every
// part of the envelope but the payload travels here; downstream consumers
// rely on these names (they are documented in the README).
const (
	MetaType           = "type"
	MetaOrgID          = "org_id"
	MetaPosition       = "position"
	MetaStream         = "stream"
	MetaStreamVersion  = "stream_version"
	MetaCorrelationID  = "correlation_id"
	MetaCausationID    = "causation_id"
	MetaTraceID        = "trace_id"
	MetaSpanID         = "span_id"
	MetaActor          = "actor"
	MetaOccurredAt     = "occurred_at"
	MetaSchemaVersion  = "schema_version"
	MetaAuthorization  = "authorization"
	MetaIdempotencyKey = "idempotency_key"
)

// ToMessage turns an envelope into a Watermill message whose UUID is the
// event id and whose payload is the event's JSON data.
func ToMessage(env Envelope) (*message.Message, error) {
	actor, err := json.Marshal(env.Actor)
	if err != nil {
		return nil, fmt.Errorf("encode actor: %w", err)
	}
	msg := message.NewMessage(env.ID.String(), message.Payload(env.Data))
	md := msg.Metadata
	md.Set(MetaType, env.Type)
	md.Set(MetaOrgID, env.OrgID)
	md.Set(MetaPosition, strconv.FormatUint(env.Position, 10))
	md.Set(MetaStream, env.Stream.String())
	md.Set(MetaStreamVersion, strconv.FormatUint(env.StreamVersion, 10))
	md.Set(MetaCorrelationID, env.CorrelationID)
	md.Set(MetaCausationID, env.CausationID)
	md.Set(MetaTraceID, env.TraceID)
	if env.SpanID != "" {
		md.Set(MetaSpanID, env.SpanID)
	}
	md.Set(MetaActor, string(actor))
	md.Set(MetaOccurredAt, env.OccurredAt.UTC().Format(time.RFC3339Nano))
	md.Set(MetaSchemaVersion, strconv.Itoa(env.SchemaVersion))
	md.Set(MetaAuthorization, env.Authorization)
	md.Set(MetaIdempotencyKey, env.IdempotencyKey)
	return msg, nil
}

// FromMessage reads back an envelope written by ToMessage, checking that
// the org in the metadata agrees with the stream's org.
func FromMessage(msg *message.Message) (Envelope, error) {
	md := msg.Metadata
	var env Envelope
	var err error
	if env.ID, err = uuid.Parse(msg.UUID); err != nil {
		return Envelope{}, fmt.Errorf("message id: %w", err)
	}
	if env.Stream, err = ParseStreamName(md.Get(MetaStream)); err != nil {
		return Envelope{}, err
	}
	if env.Position, err = strconv.ParseUint(md.Get(MetaPosition), 10, 64); err != nil {
		return Envelope{}, fmt.Errorf("message position: %w", err)
	}
	if env.StreamVersion, err = strconv.ParseUint(md.Get(MetaStreamVersion), 10, 64); err != nil {
		return Envelope{}, fmt.Errorf("message stream version: %w", err)
	}
	if env.OccurredAt, err = time.Parse(time.RFC3339Nano, md.Get(MetaOccurredAt)); err != nil {
		return Envelope{}, fmt.Errorf("message time: %w", err)
	}
	if env.SchemaVersion, err = strconv.Atoi(md.Get(MetaSchemaVersion)); err != nil {
		return Envelope{}, fmt.Errorf("message schema version: %w", err)
	}
	if err := json.Unmarshal([]byte(md.Get(MetaActor)), &env.Actor); err != nil {
		return Envelope{}, fmt.Errorf("message actor: %w", err)
	}
	env.Type = md.Get(MetaType)
	env.OrgID = md.Get(MetaOrgID)
	env.CorrelationID = md.Get(MetaCorrelationID)
	env.CausationID = md.Get(MetaCausationID)
	env.TraceID = md.Get(MetaTraceID)
	env.SpanID = md.Get(MetaSpanID)
	env.Authorization = md.Get(MetaAuthorization)
	env.IdempotencyKey = md.Get(MetaIdempotencyKey)
	env.Data = json.RawMessage(msg.Payload)
	if env.OrgID == "" || env.OrgID != env.Stream.OrgID {
		return Envelope{}, fmt.Errorf("%w: message org %q, stream %s", ErrOrgMismatch, env.OrgID, env.Stream)
	}
	return env, nil
}
