package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Bots is the PostgreSQL adapter of projections.BotModel.
type Bots struct{ db *db }

var _ projections.BotModel = (*Bots)(nil)

const (
	botColumns = `id, name, instructions, grants, archived, created_by, created_at, updated_at, version`
	botSQL     = `SELECT ` + botColumns + ` FROM bots WHERE org_id = $1 AND id = $2`
	botsSQL    = `SELECT ` + botColumns + ` FROM bots WHERE org_id = $1 ORDER BY id LIMIT $2`
	botsAfter  = `SELECT ` + botColumns + ` FROM bots WHERE org_id = $1 AND id > $3 ORDER BY id LIMIT $2`
	putBotSQL  = `INSERT INTO bots (org_id, id, name, instructions, grants, archived, created_by, created_at, updated_at, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (org_id, id) DO UPDATE SET name = EXCLUDED.name, instructions = EXCLUDED.instructions,
			grants = EXCLUDED.grants, archived = EXCLUDED.archived, created_by = EXCLUDED.created_by,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version`
)

func (b *Bots) Bot(ctx context.Context, scope access.Scope, id string) (projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Bot{}, err
	}
	return getOne(ctx, b.db, org, "bot", botSQL, []any{org, id}, scanBot)
}

func (b *Bots) Bots(ctx context.Context, scope access.Scope, page projections.Page) ([]projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return listPage(ctx, b.db, org, "bots", botsSQL, botsAfter, page, scanBot)
}

func (b *Bots) PutBot(ctx context.Context, scope access.Scope, bot projections.Bot) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, b.db, org, "put bot", putBotSQL, org, bot.ID, bot.Name, bot.Instructions, bot.Grants, bot.Archived,
		bot.CreatedBy, bot.CreatedAt, bot.UpdatedAt, int64(bot.Version))
}

func scanBot(rows pgx.Rows) (projections.Bot, error) {
	var (
		bot     projections.Bot
		version int64
	)
	err := rows.Scan(&bot.ID, &bot.Name, &bot.Instructions, &bot.Grants, &bot.Archived, &bot.CreatedBy,
		&bot.CreatedAt, &bot.UpdatedAt, &version)
	if err != nil {
		return bot, err
	}
	bot.CreatedAt, bot.UpdatedAt, bot.Version = bot.CreatedAt.UTC(), bot.UpdatedAt.UTC(), uint64(version)
	return bot, nil
}
