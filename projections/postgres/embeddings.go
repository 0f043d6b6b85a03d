package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/palisadehq/palisade/domain/access"
)

// Embeddings is the PostgreSQL adapter of the embedding store (the port
// commands.EmbeddingStore, read by projections.Embeddings): chunk vectors
// of an organization by (model, chunk hash), in the embedding_cache
// table. Its vectors have the dimensions of their model, whatever they
// are. It is not a read model: no projection writes it and a rebuild
// leaves it alone. The ingestion process writes it, each Put in a
// transaction of its own.
type Embeddings struct{ db *db }

const (
	getEmbeddingsSQL = `SELECT hash, embedding FROM embedding_cache WHERE org_id = $1 AND model = $2 AND hash = ANY($3)`
	putEmbeddingsSQL = `INSERT INTO embedding_cache (org_id, model, hash, embedding)
		SELECT $1, $2, hash, embedding FROM unnest($3::text[], $4::vector[]) AS e (hash, embedding)
		ON CONFLICT (org_id, model, hash) DO UPDATE SET embedding = EXCLUDED.embedding`
	forgetEmbeddingsSQL = `DELETE FROM embedding_cache WHERE org_id = $1`
)

// Get returns the stored vectors of hashes under model, by hash. Inside a
// unit of work of the store it reads in the unit's transaction.
func (e *Embeddings) Get(ctx context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	out := map[string][]float32{}
	if len(hashes) == 0 {
		return out, nil
	}
	err = e.db.query(ctx, org, getEmbeddingsSQL, []any{org, model, hashes}, func(rows pgx.Rows) error {
		var (
			hash string
			vec  pgvector.Vector
		)
		if err := rows.Scan(&hash, &vec); err != nil {
			return err
		}
		out[hash] = vec.Slice()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedding store: %w", err)
	}
	return out, nil
}

// Put stores vectors under model, by hash, replacing what was stored, in
// a transaction of its own, committed before it returns.
func (e *Embeddings) Put(ctx context.Context, scope access.Scope, model string, vectors map[string][]float32) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if len(vectors) == 0 {
		return nil
	}
	// In key order, so that two writers storing the same hashes lock their
	// rows in the same order.
	hashes := make([]string, 0, len(vectors))
	for h := range vectors {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	vecs := make([]pgvector.Vector, len(hashes))
	for i, h := range hashes {
		if len(vectors[h]) == 0 {
			return fmt.Errorf("embedding store: %w: empty embedding for %s", ErrDimensions, h)
		}
		vecs[i] = pgvector.NewVector(vectors[h])
	}
	err = pgx.BeginFunc(ctx, e.db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(setOrgSQL, org)
		b.Queue(putEmbeddingsSQL, org, model, hashes, vecs)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("embedding store: %w", err)
	}
	return nil
}

// PurgeOrg removes every vector of the scope's organization, under every
// model, in a transaction of its own, committed before it returns. The
// dead rows stay in the table's pages until PostgreSQL vacuums them.
func (e *Embeddings) PurgeOrg(ctx context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, e.db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(setOrgSQL, org)
		b.Queue(forgetEmbeddingsSQL, org)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("embedding store: forget %s: %w", org, err)
	}
	return nil
}
