package events

// AuditContentStream is the entity of the security stream that records
// reads of audit content, "security-{orgID}_audit-content".
const AuditContentStream = "audit-content"

// AuditContentRead records that a principal holding audit:read-content
// was shown content from the audit record: the query it asked (the reader
// is the event's actor) and how much content the answer carried. It is
// appended before the content is given, so no content leaves unrecorded.
type AuditContentRead struct {
	Types         []string `json:"types,omitempty" audit:"record"`
	Stream        string   `json:"stream,omitempty" audit:"record"`
	Actor         string   `json:"actor,omitempty" audit:"record"`
	CorrelationID string   `json:"correlation_id,omitempty" audit:"record"`
	// After is the query's cursor: an audit sequence (in events recorded
	// before audit sequences existed, a log position).
	After uint64 `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	// Events is how many events the answer held, ContentFields how many
	// content values among them were shown.
	Events        int `json:"events"`
	ContentFields int `json:"content_fields"`
}

func (AuditContentRead) EventType() string { return "AuditContentRead" }
