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
	// lockSQL takes the projection's checkpoint row for the transaction
	// (creating it at 0) and returns the position recorded: replicas that
	// apply the same event serialize here, and the later one finds it done.
	lockSQL = `INSERT INTO projection_checkpoints (projection, position) VALUES ($1, 0)
		ON CONFLICT (projection) DO UPDATE SET position = projection_checkpoints.position
		RETURNING position`
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
//
// Every replica of a deployment runs the projections into the same
// tables, so Advance first locks the projection's checkpoint row: a unit
// whose events another replica already applied finds its position
// recorded and does nothing (apply is not called); one that overlaps them
// runs apply with the recorded position in its context
// ([consumer.AppliedThrough]), and apply skips the events at or below it.
// No event is applied twice, whichever replica applies it.
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
	var recorded int64
	if err := tx.QueryRow(ctx, lockSQL, projection).Scan(&recorded); err != nil {
		return fmt.Errorf("checkpoint of %s: lock: %w", projection, err)
	}
	if position > 0 && uint64(recorded) >= position {
		return nil // applied by another replica; the rollback frees the row
	}
	u := &unit{db: c.db, tx: tx}
	ctx = consumer.WithAppliedThrough(ctx, uint64(recorded))
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
