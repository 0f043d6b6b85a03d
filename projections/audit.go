package projections

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

// AuditEvent is one event of an organization's audit record.
//
// Sequence numbers the organization's events 1, 2, 3 … in log order,
// without gaps; the audit read model assigns it as it applies the event,
// so a rebuild from the log gives every event the same number again. It is
// what auditors see and page by, in place of the log's global position:
// the gaps between one organization's positions would show how much every
// other organization wrote.
//
// Event is the envelope as recorded, position included, for the server's
// own use; the JSON form (MarshalJSON) leaves the position out.
type AuditEvent struct {
	Sequence uint64
	Event    eventstore.Envelope
}

// auditEventJSON is the audit API's form of an event: the envelope's
// fields with the organization's sequence and without the global position.
type auditEventJSON struct {
	Sequence      uint64          `json:"sequence"`
	ID            uuid.UUID       `json:"id"`
	Type          string          `json:"type"`
	Stream        string          `json:"stream"`
	StreamVersion uint64          `json:"stream_version"`
	Data          json.RawMessage `json:"data"`
	eventstore.Metadata
}

// MarshalJSON writes the event as the audit API shows it.
func (e AuditEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(auditEventJSON{
		Sequence:      e.Sequence,
		ID:            e.Event.ID,
		Type:          e.Event.Type,
		Stream:        e.Event.Stream.String(),
		StreamVersion: e.Event.StreamVersion,
		Data:          e.Event.Data,
		Metadata:      e.Event.Metadata,
	})
}
