package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain"
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
	var bot projections.Bot
	found := false
	err = b.db.query(ctx, org, botSQL, []any{org, id}, func(rows pgx.Rows) error {
		found = true
		bot, err = scanBot(rows)
		return err
	})
	if err != nil {
		return projections.Bot{}, fmt.Errorf("bot: %w", err)
	}
	if !found {
		return projections.Bot{}, fmt.Errorf("bot: %w", domain.ErrNotFound)
	}
	return bot, nil
}

func (b *Bots) Bots(ctx context.Context, scope access.Scope, page projections.Page) ([]projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	sql, args := pageQuery(botsSQL, botsAfter, org, page)
	out := []projections.Bot{}
	err = b.db.query(ctx, org, sql, args, func(rows pgx.Rows) error {
		bot, err := scanBot(rows)
		out = append(out, bot)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bots: %w", err)
	}
	return out, nil
}

func (b *Bots) PutBot(ctx context.Context, scope access.Scope, bot projections.Bot) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	err = b.db.exec(ctx, org, putBotSQL, org, bot.ID, bot.Name, bot.Instructions, bot.Grants, bot.Archived,
		bot.CreatedBy, bot.CreatedAt, bot.UpdatedAt, int64(bot.Version))
	if err != nil {
		return fmt.Errorf("put bot: %w", err)
	}
	return nil
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
