package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Conversations is the PostgreSQL adapter of projections.ConversationModel.
type Conversations struct{ db *db }

var _ projections.ConversationModel = (*Conversations)(nil)

const (
	conversationColumns = `id, bot_id, title, started_by, started_by_kind, archived, created_at, updated_at, version`
	conversationSQL     = `SELECT ` + conversationColumns + `, messages FROM conversations WHERE org_id = $1 AND id = $2`
	conversationsSQL    = `SELECT ` + conversationColumns + ` FROM conversations WHERE org_id = $1`
	putConversationSQL  = `INSERT INTO conversations (org_id, ` + conversationColumns + `, messages)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (org_id, id) DO UPDATE SET bot_id = EXCLUDED.bot_id, title = EXCLUDED.title,
			started_by = EXCLUDED.started_by, started_by_kind = EXCLUDED.started_by_kind, archived = EXCLUDED.archived,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
			messages = EXCLUDED.messages`
)

func (c *Conversations) Conversation(ctx context.Context, scope access.Scope, id string) (projections.Conversation, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Conversation{}, err
	}
	return getOne(ctx, c.db, org, "conversation", conversationSQL, []any{org, id}, func(rows pgx.Rows) (projections.Conversation, error) {
		var messages []byte
		conv, err := scanConversation(rows, &messages)
		if err != nil {
			return conv, err
		}
		if err := json.Unmarshal(messages, &conv.Messages); err != nil {
			return conv, fmt.Errorf("messages of %s: %w", conv.ID, err)
		}
		return conv, nil
	})
}

func (c *Conversations) Conversations(ctx context.Context, scope access.Scope, q projections.ConversationQuery) ([]projections.Conversation, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	sql, args := conversationsQuery(org, q)
	return list(ctx, c.db, org, "conversations", sql, args, func(rows pgx.Rows) (projections.Conversation, error) {
		return scanConversation(rows)
	})
}

// conversationsQuery is the list query of q: its filters, then the
// cursor, the order and the limit. Only the arguments come from q.
func conversationsQuery(org string, q projections.ConversationQuery) (string, []any) {
	sql, args := conversationsSQL, []any{org}
	condition := func(column, value string) {
		if value != "" {
			args = append(args, value)
			sql += fmt.Sprintf(` AND %s = $%d`, column, len(args))
		}
	}
	condition("started_by", q.StartedBy)
	condition("started_by_kind", q.StartedByKind)
	condition("bot_id", q.BotID)
	if q.Page.After != "" {
		args = append(args, q.Page.After)
		sql += fmt.Sprintf(` AND id > $%d`, len(args))
	}
	args = append(args, limitOf(q.Page.Limit))
	return sql + fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args)), args
}

func (c *Conversations) PutConversation(ctx context.Context, scope access.Scope, conv projections.Conversation) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	messages, err := json.Marshal(conv.Messages)
	if err != nil {
		return fmt.Errorf("put conversation %s: messages: %w", conv.ID, err)
	}
	return put(ctx, c.db, org, "put conversation", putConversationSQL, org, conv.ID, conv.BotID, conv.Title,
		conv.StartedBy, conv.StartedByKind, conv.Archived, conv.CreatedAt, conv.UpdatedAt, int64(conv.Version), string(messages))
}

// scanConversation scans conversationColumns and then into more, when
// the query selects more columns.
func scanConversation(rows pgx.Rows, more ...any) (projections.Conversation, error) {
	var (
		conv    projections.Conversation
		version int64
	)
	dest := append([]any{&conv.ID, &conv.BotID, &conv.Title, &conv.StartedBy, &conv.StartedByKind, &conv.Archived,
		&conv.CreatedAt, &conv.UpdatedAt, &version}, more...)
	if err := rows.Scan(dest...); err != nil {
		return conv, err
	}
	conv.CreatedAt, conv.UpdatedAt, conv.Version = conv.CreatedAt.UTC(), conv.UpdatedAt.UTC(), uint64(version)
	return conv, nil
}
