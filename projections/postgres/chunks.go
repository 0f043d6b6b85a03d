package postgres

import (
	"context"
	"fmt"

	"github.com/pgvector/pgvector-go"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// ChunkDimensions is the dimensions of knowledge_chunks.embedding, a
// vector(384) column with one HNSW index: chunks and queries must have
// exactly this many.
const ChunkDimensions = 384

// Chunks is the PostgreSQL adapter of projections.ChunkModel. Search ranks
// as the memory adapter does: by cosine similarity, and by keyword score
// (1 + ln n for each query term a chunk holds n > 0 times), each ranking
// cut at a candidate depth, fused by reciprocal rank fusion, ties broken by
// chunk id; where a search covers more than keywordCandidates chunks, the
// keyword ranking scores only those that could score highest (see Search
// and planKeywordCells). Words are split by PostgreSQL's text-search parser ('simple'
// configuration), which agrees with the memory adapter's on ordinary words
// and differs on compounds ("e-mail" also yields "e-mail" itself), host
// names, paths and decimal numbers.
type Chunks struct {
	db     *db
	tuning searchTuning
	// keywordIndex says whether the keyword ranking's GIN index can serve
	// under row-level security: whether tsvector @@ tsquery is leakproof in
	// the database (migration 00017). Without it, search ranks keywords
	// exactly by reading every covered chunk that holds a word of the query
	// (searchScanSQL), as it did before the index: a bounded ranking
	// without its index would read more.
	keywordIndex bool
}

var _ projections.ChunkModel = (*Chunks)(nil)

const (
	deleteChunksSQL = `DELETE FROM knowledge_chunks WHERE org_id = $1 AND document_id = $2`
	// All of a document's chunks in one statement, sent with the unit's
	// other writes, and their keyword terms with them (migration 00017).
	// (COPY would be faster, but PostgreSQL refuses COPY FROM into a table
	// under row-level security.) A chunk id already stored under another
	// document moves to this one. Deleting a chunk deletes its terms (the
	// foreign key cascades).
	insertChunksSQL = `WITH c AS (
			SELECT * FROM unnest($3::text[], $4::text[], $5::integer[], $6::text[], $7::text[], $8::vector[])
				AS c (knowledge_base_id, chunk_id, ordinal, heading, text, embedding)
		),
		chunks AS (
			INSERT INTO knowledge_chunks
				(org_id, knowledge_base_id, document_id, chunk_id, ordinal, heading, text, embedding)
			SELECT $1, c.knowledge_base_id, $2, c.chunk_id, c.ordinal, c.heading, c.text, c.embedding FROM c
			ON CONFLICT (org_id, chunk_id) DO UPDATE SET knowledge_base_id = EXCLUDED.knowledge_base_id,
				document_id = EXCLUDED.document_id, ordinal = EXCLUDED.ordinal, heading = EXCLUDED.heading,
				text = EXCLUDED.text, embedding = EXCLUDED.embedding
		)
		INSERT INTO knowledge_chunk_terms (org_id, chunk_id, knowledge_base_id, tsv, levels)
		SELECT $1, c.chunk_id, c.knowledge_base_id, t.tsv, keyword_levels(t.tsv)
		FROM c CROSS JOIN LATERAL to_tsvector('simple', c.text) AS t (tsv)
		ON CONFLICT (org_id, chunk_id) DO UPDATE SET knowledge_base_id = EXCLUDED.knowledge_base_id,
			tsv = EXCLUDED.tsv, levels = EXCLUDED.levels`
)

func (c *Chunks) ReplaceChunks(ctx context.Context, scope access.Scope, docID string, chunks []projections.StoredChunk) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		if ch.Embedding != nil && len(ch.Embedding) != ChunkDimensions {
			return fmt.Errorf("replace chunks of %s: %w: chunk %s has %d, the table %d",
				docID, ErrDimensions, ch.ID, len(ch.Embedding), ChunkDimensions)
		}
	}
	if err := c.db.exec(ctx, org, deleteChunksSQL, org, docID); err != nil {
		return fmt.Errorf("replace chunks of %s: %w", docID, err)
	}
	// A chunk id given twice is stored once, as its last occurrence (one
	// INSERT … ON CONFLICT may not touch a row twice).
	last := make(map[string]int, len(chunks))
	for i, ch := range chunks {
		last[ch.ID] = i
	}
	if len(last) == 0 {
		return nil
	}
	var (
		n                         = len(last)
		kbs, ids, headings, texts = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		ordinals                  = make([]int32, 0, n)
		vectors                   = make([]*pgvector.Vector, 0, n) // nil: no vector (NULL)
	)
	for i, ch := range chunks {
		if last[ch.ID] == i {
			kbs, ids, headings, texts = append(kbs, ch.KnowledgeBaseID), append(ids, ch.ID), append(headings, ch.Heading), append(texts, ch.Text)
			var vector *pgvector.Vector
			if ch.Embedding != nil {
				v := pgvector.NewVector(ch.Embedding)
				vector = &v
			}
			ordinals, vectors = append(ordinals, int32(ch.Ordinal)), append(vectors, vector)
		}
	}
	if err := c.db.exec(ctx, org, insertChunksSQL, org, docID, kbs, ids, ordinals, headings, texts, vectors); err != nil {
		return fmt.Errorf("replace chunks of %s: %w", docID, err)
	}
	return nil
}

func (c *Chunks) DeleteChunks(ctx context.Context, scope access.Scope, docID string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if err := c.db.exec(ctx, org, deleteChunksSQL, org, docID); err != nil {
		return fmt.Errorf("delete chunks of %s: %w", docID, err)
	}
	return nil
}

// KeywordIndex reports whether the keyword ranking is served by its index
// (tsvector @@ tsquery is leakproof in the database; see migration 00017),
// rather than by reading every chunk that holds a word of the query.
func (c *Chunks) KeywordIndex() bool { return c.keywordIndex }
