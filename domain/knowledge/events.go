package knowledge

import "github.com/palisadehq/palisade/domain"

// Stream categories.
const (
	KnowledgeBaseCategory = "kb"
	DocumentCategory      = "doc"
	SearchCategory        = "search"
)

// Grant gives a subject ("user:SUB", "role:ROLE" or "service:ID") permissions on one
// knowledge base.
type Grant struct {
	Subject     string   `json:"subject" audit:"record"`
	Permissions []string `json:"permissions" audit:"record"`
}

// KnowledgeBaseCreated starts a knowledge base's stream. The embedding
// model is fixed at creation: every chunk of the base is embedded with it.
type KnowledgeBaseCreated struct {
	ID             string `json:"id" audit:"record"`
	Name           string `json:"name" audit:"record"`
	Description    string `json:"description" audit:"content"`
	EmbeddingModel string `json:"embedding_model" audit:"record"`
	Dimensions     int    `json:"dimensions"`
}

// KnowledgeBaseUpdated records changed fields; nil fields did not change.
type KnowledgeBaseUpdated struct {
	Name        *string `json:"name,omitempty" audit:"record"`
	Description *string `json:"description,omitempty" audit:"content"`
}

// KnowledgeBaseGrantsSet replaces the grants; none means open to every
// member whose role holds kb:read.
type KnowledgeBaseGrantsSet struct {
	Grants []Grant `json:"grants"`
}

// KnowledgeBaseArchived records that a base is no longer searchable or
// writable.
type KnowledgeBaseArchived struct{}

// DocumentAdded records a document's first version as extracted text.
type DocumentAdded struct {
	ID              string `json:"id" audit:"record"`
	KnowledgeBaseID string `json:"knowledge_base_id" audit:"record"`
	Title           string `json:"title" audit:"content"`
	ContentType     string `json:"content_type" audit:"record"`
	Content         string `json:"content" audit:"content"`
	ContentHash     string `json:"content_hash" audit:"digest"`
	Version         int    `json:"version"`
}

// DocumentReplaced records a new version of a document's content.
type DocumentReplaced struct {
	Title       string `json:"title" audit:"content"`
	ContentType string `json:"content_type" audit:"record"`
	Content     string `json:"content" audit:"content"`
	ContentHash string `json:"content_hash" audit:"digest"`
	Version     int    `json:"version"`
}

// Chunk is one searchable piece of a document version.
type Chunk struct {
	ID      string `json:"id" audit:"record"`
	Ordinal int    `json:"ordinal"`
	Start   int    `json:"start"`
	End     int    `json:"end"`
	Heading string `json:"heading,omitempty" audit:"content"`
	Text    string `json:"text" audit:"content"`
	// Hash names Text in the embedding store: its digest under the
	// organization's digest key (sealing.DigestKey.ContentDigest, computed
	// by the ingestion; the plain SHA-256 in chunks recorded before keyed
	// digests). It is already keyed when recorded, so it is a record.
	Hash string `json:"hash" audit:"record"`
}

// DocumentChunked records the chunks of one version, as the ingestion
// process cut them.
type DocumentChunked struct {
	KnowledgeBaseID string  `json:"knowledge_base_id" audit:"record"`
	Version         int     `json:"version"`
	Chunks          []Chunk `json:"chunks"`
}

// DocumentIngestionFailed records why a version could not be ingested.
type DocumentIngestionFailed struct {
	Version int    `json:"version"`
	Reason  string `json:"reason" audit:"record"`
}

// DocumentDeleted records that a document and its chunks are gone.
type DocumentDeleted struct{}

// SearchHit is one chunk a search returned.
type SearchHit struct {
	ChunkID         string  `json:"chunk_id" audit:"record"`
	DocumentID      string  `json:"document_id" audit:"record"`
	KnowledgeBaseID string  `json:"knowledge_base_id" audit:"record"`
	Score           float64 `json:"score"`
}

// KnowledgeSearched records who searched what, in which bases, and which
// chunks came back, for the audit trail. A search refused for its query
// text (a QueryError) is recorded too: no bases, no hits, and the reason.
type KnowledgeSearched struct {
	Query            string      `json:"query" audit:"content"`
	KnowledgeBaseIDs []string    `json:"knowledge_base_ids" audit:"record"`
	K                int         `json:"k"`
	Hits             []SearchHit `json:"hits"`
	Refused          string      `json:"refused,omitempty" audit:"record"`
}

func (KnowledgeBaseCreated) EventType() string    { return "KnowledgeBaseCreated" }
func (KnowledgeBaseUpdated) EventType() string    { return "KnowledgeBaseUpdated" }
func (KnowledgeBaseGrantsSet) EventType() string  { return "KnowledgeBaseGrantsSet" }
func (KnowledgeBaseArchived) EventType() string   { return "KnowledgeBaseArchived" }
func (DocumentAdded) EventType() string           { return "DocumentAdded" }
func (DocumentReplaced) EventType() string        { return "DocumentReplaced" }
func (DocumentChunked) EventType() string         { return "DocumentChunked" }
func (DocumentIngestionFailed) EventType() string { return "DocumentIngestionFailed" }
func (DocumentDeleted) EventType() string         { return "DocumentDeleted" }
func (KnowledgeSearched) EventType() string       { return "KnowledgeSearched" }

// Events returns a zero value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{
		&KnowledgeBaseCreated{}, &KnowledgeBaseUpdated{}, &KnowledgeBaseGrantsSet{}, &KnowledgeBaseArchived{},
		&DocumentAdded{}, &DocumentReplaced{}, &DocumentChunked{}, &DocumentIngestionFailed{}, &DocumentDeleted{},
		&KnowledgeSearched{},
	}
}
