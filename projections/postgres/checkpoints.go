package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/consumer"
)

// Checkpoints is the PostgreSQL adapter of consumer.Checkpoints. Its
// Advance is the unit of work of the other adapters' writes.
type Checkpoints struct{ db *db }

var _ consumer.Checkpoints = (*Checkpoints)(nil)

const (
	positionSQL = `SELECT position FROM projection_checkpoints WHERE projection = $1`
	// A checkpoint never moves back, even if a unit of an older position
	// commits after a newer one.
	advanceSQL = `INSERT INTO projection_checkpoints (projection, position) VALUES ($1, $2)
		ON CONFLICT (projection) DO UPDATE
		SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position)`
)

func (c *Checkpoints) Position(ctx context.Context, projection string) (uint64, error) {
	var pos int64
	err := c.db.pool.QueryRow(ctx, positionSQL, projection).Scan(&pos)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("checkpoint of %s: %w", projection, err)
	}
	return uint64(pos), nil
}

// Advance runs apply in one transaction, passed to the adapters' writes
// through the context, and records position for projection in the same
// transaction. An error from apply, or from recording, rolls back both.
func (c *Checkpoints) Advance(ctx context.Context, projection string, position uint64, apply func(ctx context.Context) error) error {
	if position > math.MaxInt64 {
		return fmt.Errorf("checkpoint of %s: position %d out of range", projection, position)
	}
	tx, err := c.db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("checkpoint of %s: begin: %w", projection, err)
	}
	// After a commit, this rollback does nothing.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	u := &unit{db: c.db, tx: tx}
	if err := apply(context.WithValue(ctx, unitKey{}, u)); err != nil {
		return err
	}
	// The checkpoint travels with the unit's last pending writes.
	if u.pending == nil {
		u.pending = &pgx.Batch{}
	}
	u.pending.Queue(advanceSQL, projection, int64(position))
	if err := u.flush(ctx); err != nil {
		return fmt.Errorf("checkpoint of %s: write up to %d: %w", projection, position, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("checkpoint of %s: commit %d: %w", projection, position, err)
	}
	return nil
}
