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

// StoredChunk is a chunk with its embedding, as retrieval reads it.
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
}

// ChunkModel is the retrieval read model: chunks with their embeddings.
type ChunkModel interface {
	// ReplaceChunks makes chunks the only chunks of the document.
	ReplaceChunks(ctx context.Context, scope access.Scope, docID string, chunks []StoredChunk) error
	DeleteChunks(ctx context.Context, scope access.Scope, docID string) error
	// Search fuses vector similarity and keyword ranking (reciprocal rank
	// fusion) over the chunks of q.KnowledgeBaseIDs in the scope's org.
	Search(ctx context.Context, scope access.Scope, q ChunkQuery) ([]ChunkHit, error)
}

// Embedder turns texts into vectors.
type Embedder interface {
	Model() string
	Dimensions() int
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// EmbeddingCache keeps embeddings by (model, chunk hash) within an
// organization, so that a rebuild does not embed again what it embedded
// before.
type EmbeddingCache interface {
	Get(ctx context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error)
	Put(ctx context.Context, scope access.Scope, model string, vectors map[string][]float32) error
}

// KnowledgeProjection builds the knowledge-base and document read model and
// the retrieval read model together, as one consumer group: a document is
// "ready" in the same unit of work that makes its chunks searchable, and a
// replaced or deleted document's chunks leave retrieval in the unit that
// records the change. Each recorded chunk is embedded, reusing cached
// embeddings of identical text.
func KnowledgeProjection(m KnowledgeModel, chunks ChunkModel, embedder Embedder, cache EmbeddingCache) *consumer.Group {
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
			if err := storeChunks(ctx, scope, env, e, chunks, embedder, cache); err != nil {
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

// storeChunks embeds the chunks of a DocumentChunked event and makes them
// the document's only chunks.
func storeChunks(ctx context.Context, scope access.Scope, env eventstore.Envelope, e *knowledge.DocumentChunked,
	chunks ChunkModel, embedder Embedder, cache EmbeddingCache) error {
	vectors, err := embedChunks(ctx, scope, embedder, cache, e.Chunks)
	if err != nil {
		return err
	}
	stored := make([]StoredChunk, len(e.Chunks))
	for i, c := range e.Chunks {
		stored[i] = StoredChunk{
			ID: c.ID, KnowledgeBaseID: e.KnowledgeBaseID, DocumentID: env.Stream.EntityID,
			Ordinal: c.Ordinal, Heading: c.Heading, Text: c.Text, Embedding: vectors[c.Hash],
		}
	}
	return chunks.ReplaceChunks(ctx, scope, env.Stream.EntityID, stored)
}

// embedChunks returns the embedding of every chunk by hash, embedding only
// what the cache does not hold.
func embedChunks(ctx context.Context, scope access.Scope, embedder Embedder, cache EmbeddingCache, chunks []knowledge.Chunk) (map[string][]float32, error) {
	hashes := make([]string, 0, len(chunks))
	for _, c := range chunks {
		hashes = append(hashes, c.Hash)
	}
	have, err := cache.Get(ctx, scope, embedder.Model(), hashes)
	if err != nil {
		return nil, err
	}
	if have == nil {
		have = map[string][]float32{}
	}
	var missing []knowledge.Chunk
	seen := map[string]bool{}
	for _, c := range chunks {
		if _, ok := have[c.Hash]; !ok && !seen[c.Hash] {
			missing = append(missing, c)
			seen[c.Hash] = true
		}
	}
	if len(missing) == 0 {
		return have, nil
	}
	texts := make([]string, len(missing))
	for i, c := range missing {
		texts[i] = c.Text
	}
	vectors, err := embedder.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed %d chunks: %w", len(texts), err)
	}
	if len(vectors) != len(missing) {
		return nil, fmt.Errorf("embedder returned %d vectors for %d chunks", len(vectors), len(missing))
	}
	fresh := make(map[string][]float32, len(missing))
	for i, c := range missing {
		fresh[c.Hash] = vectors[i]
		have[c.Hash] = vectors[i]
	}
	if err := cache.Put(ctx, scope, embedder.Model(), fresh); err != nil {
		return nil, err
	}
	return have, nil
}
