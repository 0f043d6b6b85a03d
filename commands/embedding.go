package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
)

// Embedder turns texts into vectors (ai/embed's port, as ingestion uses it).
type Embedder interface {
	Model() string
	Dimensions() int
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// EmbeddingStore keeps chunk vectors of an organization by (model, chunk
// hash: the chunk's keyed digest, see WithDigestKeys), durably: what it
// holds is never embedded again. Adapters: knowledge/embeddings (memory,
// SQLite) and projections/postgres.
type EmbeddingStore interface {
	Get(ctx context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error)
	Put(ctx context.Context, scope access.Scope, model string, vectors map[string][]float32) error
}

// DefaultEmbedBatch is how many texts ChunkEmbedding sends to the embedder
// at a time when its BatchSize is not set.
const DefaultEmbedBatch = 64

// ChunkEmbedding is the embedding step of ingestion: before a document's
// chunks are recorded, it makes sure the store holds a vector for each of
// them under the embedder's model. It looks the chunks up first and calls
// the embedder only for texts the store lacks, BatchSize texts at a time;
// each batch is stored before the next is sent, so an ingestion that fails
// half-way keeps what it paid for.
type ChunkEmbedding struct {
	Embedder  Embedder
	Store     EmbeddingStore
	BatchSize int
}

// Model returns the model the step embeds with.
func (c ChunkEmbedding) Model() string { return c.Embedder.Model() }

// Embed stores a vector for every chunk (by its Hash) that the store lacks.
// It returns how many texts it sent to the embedder.
func (c ChunkEmbedding) Embed(ctx context.Context, scope access.Scope, chunks []knowledge.Chunk) (int, error) {
	model := c.Embedder.Model()
	var hashes []string
	texts := map[string]string{}
	for _, ch := range chunks {
		if _, ok := texts[ch.Hash]; !ok {
			texts[ch.Hash] = ch.Text
			hashes = append(hashes, ch.Hash)
		}
	}
	have, err := c.Store.Get(ctx, scope, model, hashes)
	if err != nil {
		return 0, fmt.Errorf("look up embeddings: %w", err)
	}
	missing := slices.DeleteFunc(hashes, func(h string) bool { _, ok := have[h]; return ok })
	size := c.BatchSize
	if size <= 0 {
		size = DefaultEmbedBatch
	}
	sent := 0
	for batch := range slices.Chunk(missing, size) {
		in := make([]string, len(batch))
		for i, h := range batch {
			in[i] = texts[h]
		}
		vectors, err := c.Embedder.Embed(ctx, in)
		if err != nil {
			return sent, fmt.Errorf("embed %d chunks: %w", len(in), err)
		}
		if len(vectors) != len(batch) {
			return sent, fmt.Errorf("embed %d chunks: the embedder returned %d vectors", len(in), len(vectors))
		}
		sent += len(in)
		fresh := make(map[string][]float32, len(batch))
		for i, h := range batch {
			if len(vectors[i]) != c.Embedder.Dimensions() {
				return sent, fmt.Errorf("embed %d chunks: a vector of %d dimensions, want %d", len(in), len(vectors[i]), c.Embedder.Dimensions())
			}
			fresh[h] = vectors[i]
		}
		if err := c.Store.Put(ctx, scope, model, fresh); err != nil {
			return sent, fmt.Errorf("store embeddings: %w", err)
		}
	}
	return sent, nil
}

// BaseEmbedding is a live knowledge base and the embedding its chunks have.
type BaseEmbedding struct {
	OrgID, ID  string
	Model      string
	Dimensions int
}

// BasesEmbeddedOtherwise reads the knowledge-base events of the log and
// returns the live (not archived) bases whose chunks are embedded with
// another model or size than emb, in log order. Starting a server that
// would mix them is refused (see app.Open).
func BasesEmbeddedOtherwise(ctx context.Context, store eventstore.Store, emb Embedding) ([]BaseEmbedding, error) {
	filter := eventstore.Filter{
		Categories: []string{knowledge.KnowledgeBaseCategory},
		Types:      []string{(knowledge.KnowledgeBaseCreated{}).EventType(), (knowledge.KnowledgeBaseArchived{}).EventType()},
	}
	var (
		bases []BaseEmbedding
		index = map[eventstore.StreamName]int{}
		after uint64
	)
	for {
		envs, err := store.ReadAll(ctx, after, filter, 1000)
		if err != nil {
			return nil, fmt.Errorf("read knowledge bases: %w", err)
		}
		if len(envs) == 0 {
			break
		}
		for _, env := range envs {
			after = env.Position
			switch env.Type {
			case (knowledge.KnowledgeBaseCreated{}).EventType():
				var e knowledge.KnowledgeBaseCreated
				if err := json.Unmarshal(env.Data, &e); err != nil {
					return nil, fmt.Errorf("read knowledge base %s: %w", env.Stream, err)
				}
				index[env.Stream] = len(bases)
				bases = append(bases, BaseEmbedding{OrgID: env.OrgID, ID: e.ID, Model: e.EmbeddingModel, Dimensions: e.Dimensions})
			case (knowledge.KnowledgeBaseArchived{}).EventType():
				if i, ok := index[env.Stream]; ok {
					bases[i].ID = "" // archived: never searched or written again
				}
			}
		}
	}
	return slices.DeleteFunc(bases, func(b BaseEmbedding) bool {
		return b.ID == "" || (b.Model == emb.Model && b.Dimensions == emb.Dimensions)
	}), nil
}
