package events

// IdempotencyCategory is the stream category of recorded idempotent
// responses, "idempotency-{orgID}_{key id}": one stream per (principal,
// Idempotency-Key), whose only event is the response first given.
const IdempotencyCategory = "idempotency"

// IdempotentResponseRecorded records the response a command carrying an
// Idempotency-Key answered, so that a retry after a restart is answered the
// same, and a different request under the key is refused. What was asked
// is the method, the path, the query string and the SHA-256 of the body.
// A one-time secret in the response (a service account's token) is never
// recorded.
type IdempotentResponseRecorded struct {
	Method      string `json:"method" audit:"record"`
	Path        string `json:"path" audit:"record"`
	Query       string `json:"query,omitempty" audit:"record"`
	BodySHA256  string `json:"body_sha256" audit:"digest"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty" audit:"record"`
	Location    string `json:"location,omitempty" audit:"record"`
	// Body is the response body, byte for byte unless a secret was taken
	// out of it (then SecretOmitted is set).
	Body          string `json:"body" audit:"content"`
	SecretOmitted bool   `json:"secret_omitted,omitempty"`
}

func (IdempotentResponseRecorded) EventType() string { return "IdempotentResponseRecorded" }
