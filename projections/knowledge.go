package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
)

// KnowledgeBase is a knowledge base as its organization sees it.
type KnowledgeBase struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Description    string            `json:"description"`
	EmbeddingModel string            `json:"embedding_model"`
	Dimensions     int               `json:"dimensions"`
	Grants         []knowledge.Grant `json:"grants"`
	Archived       bool              `json:"archived"`
	CreatedBy      string            `json:"created_by"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// Document states.
const (
	DocumentPending = "pending"
	DocumentReady   = "ready"
	DocumentFailed  = "failed"
)

// Document is a document's metadata and ingestion state.
type Document struct {
	ID              string    `json:"id"`
	KnowledgeBaseID string    `json:"knowledge_base_id"`
	Title           string    `json:"title"`
	ContentType     string    `json:"content_type"`
	ContentHash     string    `json:"content_hash"`
	SizeBytes       int       `json:"size_bytes"`
	Version         int       `json:"version"`
	State           string    `json:"state"`
	FailureReason   string    `json:"failure_reason,omitempty"`
	Chunks          int       `json:"chunks"`
	CreatedBy       string    `json:"created_by"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// StoredChunk is a chunk with its embedding, as retrieval reads it. A nil
// Embedding means the vector is missing: the chunk is found by keyword only.
type StoredChunk struct {
	ID              string
	KnowledgeBaseID string
	DocumentID      string
	Ordinal         int
	Heading         string
	Text            string
	Embedding       []float32
}

// ChunkQuery asks for the k best chunks of some knowledge bases.
type ChunkQuery struct {
	// KnowledgeBaseIDs restricts the search; it must not be empty. The
	// restriction is applied inside the search, never after it.
	KnowledgeBaseIDs []string
	Vector           []float32
	Text             string
	K                int
}

// ChunkHit is one chunk a search found, with its fused score.
type ChunkHit struct {
	ChunkID         string  `json:"chunk_id"`
	DocumentID      string  `json:"document_id"`
	KnowledgeBaseID string  `json:"knowledge_base_id"`
	Ordinal         int     `json:"ordinal"`
	Heading         string  `json:"heading,omitempty"`
	Text            string  `json:"-"`
	Score           float64 `json:"score"`
}

// KnowledgeModel is the read model of knowledge bases and documents.
type KnowledgeModel interface {
	KnowledgeBase(ctx context.Context, scope access.Scope, id string) (KnowledgeBase, error)
	KnowledgeBases(ctx context.Context, scope access.Scope, page Page) ([]KnowledgeBase, error)
	Document(ctx context.Context, scope access.Scope, kbID, docID string) (Document, error)
	DocumentByID(ctx context.Context, scope access.Scope, docID string) (Document, error)
	Documents(ctx context.Context, scope access.Scope, kbID string, page Page) ([]Document, error)

	PutKnowledgeBase(ctx context.Context, scope access.Scope, kb KnowledgeBase) error
	PutDocument(ctx context.Context, scope access.Scope, doc Document) error
	DeleteDocument(ctx context.Context, scope access.Scope, kbID, docID string) error
	// PurgeOrg drops every knowledge base and document of the organization.
	OrgPurger
}

// ChunkModel is the retrieval read model: chunks with their embeddings.
type ChunkModel interface {
	// ReplaceChunks makes chunks the only chunks of the document.
	ReplaceChunks(ctx context.Context, scope access.Scope, docID string, chunks []StoredChunk) error
	DeleteChunks(ctx context.Context, scope access.Scope, docID string) error
	// Search fuses vector similarity and keyword ranking (reciprocal rank
	// fusion) over the chunks of q.KnowledgeBaseIDs in the scope's org.
	Search(ctx context.Context, scope access.Scope, q ChunkQuery) ([]ChunkHit, error)
	// PurgeOrg drops every chunk of the organization.
	OrgPurger
}

// Embedder turns texts into vectors.
type Embedder interface {
	Model() string
	Dimensions() int
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Embeddings is the store of chunk vectors by (model, chunk hash) that
// the ingestion process fills before it records a document's chunks. The
// knowledge projection only reads it: it never embeds (no I/O in
// projections), so a rebuild costs no embedding call.
type Embeddings interface {
	Get(ctx context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error)
}

// KnowledgeProjection builds the knowledge-base and document read model and
// the retrieval read model together, as one consumer group: a document is
// "ready" in the same unit of work that makes its chunks searchable, and a
// replaced or deleted document's chunks leave retrieval in the unit that
// records the change. Each recorded chunk takes its vector from the
// embedding store, under the model its base records.
//
// A chunk whose vector the store lacks (the store was lost or is behind
// the log) is stored without one: it stays searchable by keyword, and the
// vector ranking passes over it. The projection never embeds it itself: a
// rebuild must not call the network. Recording the document again (a new
// version through the ingestion process) gives it vectors.
func KnowledgeProjection(m KnowledgeModel, chunks ChunkModel, vectors Embeddings) *consumer.Group {
	update := func(ctx context.Context, env eventstore.Envelope, kbID string, change func(*KnowledgeBase)) error {
		scope, err := eventScope(env)
		if err != nil {
			return err
		}
		kb, err := m.KnowledgeBase(ctx, scope, kbID)
		if err != nil {
			return err
		}
		change(&kb)
		kb.UpdatedAt = env.OccurredAt
		return m.PutKnowledgeBase(ctx, scope, kb)
	}
	updateDoc := func(ctx context.Context, env eventstore.Envelope, change func(*Document)) error {
		scope, err := eventScope(env)
		if err != nil {
			return err
		}
		kbID, err := documentKB(ctx, m, scope, env.Stream.EntityID)
		if err != nil {
			return err
		}
		doc, err := m.Document(ctx, scope, kbID, env.Stream.EntityID)
		if err != nil {
			return err
		}
		change(&doc)
		doc.UpdatedAt = env.OccurredAt
		return m.PutDocument(ctx, scope, doc)
	}
	return &consumer.Group{Name: "knowledge", Handlers: []consumer.Handler{
		purgeOnClose(m, chunks),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.KnowledgeBaseCreated) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PutKnowledgeBase(ctx, scope, KnowledgeBase{
				ID: e.ID, Name: e.Name, Description: e.Description, EmbeddingModel: e.EmbeddingModel,
				Dimensions: e.Dimensions, Grants: []knowledge.Grant{}, CreatedBy: env.Actor.Subject,
				CreatedAt: env.OccurredAt, UpdatedAt: env.OccurredAt,
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.KnowledgeBaseUpdated) error {
			return update(ctx, env, env.Stream.EntityID, func(kb *KnowledgeBase) {
				if e.Name != nil {
					kb.Name = *e.Name
				}
				if e.Description != nil {
					kb.Description = *e.Description
				}
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.KnowledgeBaseGrantsSet) error {
			return update(ctx, env, env.Stream.EntityID, func(kb *KnowledgeBase) { kb.Grants = e.Grants })
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *knowledge.KnowledgeBaseArchived) error {
			return update(ctx, env, env.Stream.EntityID, func(kb *KnowledgeBase) { kb.Archived = true })
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentAdded) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PutDocument(ctx, scope, Document{
				ID: e.ID, KnowledgeBaseID: e.KnowledgeBaseID, Title: e.Title, ContentType: e.ContentType,
				ContentHash: e.ContentHash, SizeBytes: len(e.Content), Version: e.Version, State: DocumentPending,
				CreatedBy: env.Actor.Subject, CreatedAt: env.OccurredAt, UpdatedAt: env.OccurredAt,
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentReplaced) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			if err := chunks.DeleteChunks(ctx, scope, env.Stream.EntityID); err != nil {
				return err
			}
			return updateDoc(ctx, env, func(d *Document) {
				d.Title, d.ContentType, d.ContentHash, d.SizeBytes = e.Title, e.ContentType, e.ContentHash, len(e.Content)
				d.Version, d.State, d.FailureReason, d.Chunks = e.Version, DocumentPending, "", 0
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentChunked) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			if err := storeChunks(ctx, m, scope, env, e, chunks, vectors); err != nil {
				return err
			}
			return updateDoc(ctx, env, func(d *Document) {
				if d.Version == e.Version {
					d.State, d.Chunks = DocumentReady, len(e.Chunks)
				}
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentIngestionFailed) error {
			return updateDoc(ctx, env, func(d *Document) {
				if d.Version == e.Version {
					d.State, d.FailureReason = DocumentFailed, e.Reason
				}
			})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *knowledge.DocumentDeleted) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			kbID, err := documentKB(ctx, m, scope, env.Stream.EntityID)
			if err != nil {
				return err
			}
			if err := chunks.DeleteChunks(ctx, scope, env.Stream.EntityID); err != nil {
				return err
			}
			return m.DeleteDocument(ctx, scope, kbID, env.Stream.EntityID)
		}),
	}}
}

// documentKB returns the knowledge base of a document. Document events
// after the first name no base; a document id belongs to exactly one.
func documentKB(ctx context.Context, m KnowledgeModel, scope access.Scope, docID string) (string, error) {
	doc, err := m.DocumentByID(ctx, scope, docID)
	if err != nil {
		return "", err
	}
	return doc.KnowledgeBaseID, nil
}

// storeChunks makes the chunks of a DocumentChunked event the document's
// only chunks, with the vectors the embedding store holds for them.
func storeChunks(ctx context.Context, m KnowledgeModel, scope access.Scope, env eventstore.Envelope, e *knowledge.DocumentChunked,
	chunks ChunkModel, vectors Embeddings) error {
	kb, err := m.KnowledgeBase(ctx, scope, e.KnowledgeBaseID)
	if err != nil {
		return err
	}
	hashes := make([]string, len(e.Chunks))
	for i, c := range e.Chunks {
		hashes[i] = c.Hash
	}
	have, err := vectors.Get(ctx, scope, kb.EmbeddingModel, hashes)
	if err != nil {
		return fmt.Errorf("chunks of %s: %w", env.Stream, err)
	}
	stored := make([]StoredChunk, len(e.Chunks))
	for i, c := range e.Chunks {
		vector := have[c.Hash]
		if len(vector) != kb.Dimensions {
			vector = nil // keyword-only until re-embedded; never a vector of another size
		}
		stored[i] = StoredChunk{
			ID: c.ID, KnowledgeBaseID: e.KnowledgeBaseID, DocumentID: env.Stream.EntityID,
			Ordinal: c.Ordinal, Heading: c.Heading, Text: c.Text, Embedding: vector,
		}
	}
	return chunks.ReplaceChunks(ctx, scope, env.Stream.EntityID, stored)
}
