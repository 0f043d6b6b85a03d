package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/projections"
)

// Knowledge is the PostgreSQL adapter of projections.KnowledgeModel.
type Knowledge struct{ db *db }

var _ projections.KnowledgeModel = (*Knowledge)(nil)

const (
	kbColumns = `id, name, description, embedding_model, dimensions, grants, archived, created_by, created_at, updated_at`
	kbSQL     = `SELECT ` + kbColumns + ` FROM knowledge_bases WHERE org_id = $1 AND id = $2`
	kbsSQL    = `SELECT ` + kbColumns + ` FROM knowledge_bases WHERE org_id = $1 ORDER BY id LIMIT $2`
	kbsAfter  = `SELECT ` + kbColumns + ` FROM knowledge_bases WHERE org_id = $1 AND id > $3 ORDER BY id LIMIT $2`
	putKBSQL  = `INSERT INTO knowledge_bases (org_id, ` + kbColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (org_id, id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
			embedding_model = EXCLUDED.embedding_model, dimensions = EXCLUDED.dimensions, grants = EXCLUDED.grants,
			archived = EXCLUDED.archived, created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
			updated_at = EXCLUDED.updated_at`

	docColumns = `id, knowledge_base_id, title, content_type, content_hash, size_bytes, version, state,
		failure_reason, chunks, created_by, created_at, updated_at`
	docSQL    = `SELECT ` + docColumns + ` FROM documents WHERE org_id = $1 AND id = $2`
	docsSQL   = `SELECT ` + docColumns + ` FROM documents WHERE org_id = $1 AND knowledge_base_id = $3 ORDER BY id LIMIT $2`
	docsAfter = `SELECT ` + docColumns + ` FROM documents WHERE org_id = $1 AND knowledge_base_id = $3 AND id > $4
		ORDER BY id LIMIT $2`
	putDocSQL = `INSERT INTO documents (org_id, ` + docColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (org_id, id) DO UPDATE SET knowledge_base_id = EXCLUDED.knowledge_base_id, title = EXCLUDED.title,
			content_type = EXCLUDED.content_type, content_hash = EXCLUDED.content_hash, size_bytes = EXCLUDED.size_bytes,
			version = EXCLUDED.version, state = EXCLUDED.state, failure_reason = EXCLUDED.failure_reason,
			chunks = EXCLUDED.chunks, created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
			updated_at = EXCLUDED.updated_at`
	// A document id belongs to one knowledge base in its organization: the
	// id alone names the row, as in the memory adapter.
	deleteDocSQL = `DELETE FROM documents WHERE org_id = $1 AND id = $2`
)

func (k *Knowledge) KnowledgeBase(ctx context.Context, scope access.Scope, id string) (projections.KnowledgeBase, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.KnowledgeBase{}, err
	}
	return getOne(ctx, k.db, org, "knowledge base", kbSQL, []any{org, id}, scanKB)
}

func (k *Knowledge) KnowledgeBases(ctx context.Context, scope access.Scope, page projections.Page) ([]projections.KnowledgeBase, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return listPage(ctx, k.db, org, "knowledge bases", kbsSQL, kbsAfter, page, scanKB)
}

func (k *Knowledge) Document(ctx context.Context, scope access.Scope, kbID, docID string) (projections.Document, error) {
	doc, err := k.DocumentByID(ctx, scope, docID)
	if err != nil {
		return projections.Document{}, err
	}
	if doc.KnowledgeBaseID != kbID {
		return projections.Document{}, fmt.Errorf("document: %w", projections.ErrNotFound)
	}
	return doc, nil
}

func (k *Knowledge) DocumentByID(ctx context.Context, scope access.Scope, docID string) (projections.Document, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Document{}, err
	}
	return getOne(ctx, k.db, org, "document", docSQL, []any{org, docID}, scanDocument)
}

func (k *Knowledge) Documents(ctx context.Context, scope access.Scope, kbID string, page projections.Page) ([]projections.Document, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	sql, args := docsSQL, []any{org, limitOf(page.Limit), kbID}
	if page.After != "" {
		sql, args = docsAfter, append(args, page.After)
	}
	return list(ctx, k.db, org, "documents", sql, args, scanDocument)
}

func (k *Knowledge) PutKnowledgeBase(ctx context.Context, scope access.Scope, kb projections.KnowledgeBase) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	grants := kb.Grants
	if grants == nil {
		grants = []knowledge.Grant{}
	}
	return put(ctx, k.db, org, "put knowledge base", putKBSQL, org, kb.ID, kb.Name, kb.Description, kb.EmbeddingModel,
		kb.Dimensions, grants, kb.Archived, kb.CreatedBy, kb.CreatedAt, kb.UpdatedAt)
}

func (k *Knowledge) PutDocument(ctx context.Context, scope access.Scope, doc projections.Document) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, k.db, org, "put document", putDocSQL, org, doc.ID, doc.KnowledgeBaseID, doc.Title, doc.ContentType,
		doc.ContentHash, int64(doc.SizeBytes), doc.Version, doc.State, doc.FailureReason, doc.Chunks, doc.CreatedBy,
		doc.CreatedAt, doc.UpdatedAt)
}

func (k *Knowledge) DeleteDocument(ctx context.Context, scope access.Scope, _, docID string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, k.db, org, "delete document", deleteDocSQL, org, docID)
}

func scanKB(rows pgx.Rows) (projections.KnowledgeBase, error) {
	var kb projections.KnowledgeBase
	err := rows.Scan(&kb.ID, &kb.Name, &kb.Description, &kb.EmbeddingModel, &kb.Dimensions, &kb.Grants, &kb.Archived,
		&kb.CreatedBy, &kb.CreatedAt, &kb.UpdatedAt)
	if err != nil {
		return kb, err
	}
	// The memory adapter never hands out nil grants.
	if kb.Grants == nil {
		kb.Grants = []knowledge.Grant{}
	}
	kb.CreatedAt, kb.UpdatedAt = kb.CreatedAt.UTC(), kb.UpdatedAt.UTC()
	return kb, nil
}

func scanDocument(rows pgx.Rows) (projections.Document, error) {
	var (
		doc  projections.Document
		size int64
	)
	err := rows.Scan(&doc.ID, &doc.KnowledgeBaseID, &doc.Title, &doc.ContentType, &doc.ContentHash, &size, &doc.Version,
		&doc.State, &doc.FailureReason, &doc.Chunks, &doc.CreatedBy, &doc.CreatedAt, &doc.UpdatedAt)
	if err != nil {
		return doc, err
	}
	doc.SizeBytes = int(size)
	doc.CreatedAt, doc.UpdatedAt = doc.CreatedAt.UTC(), doc.UpdatedAt.UTC()
	return doc, nil
}
