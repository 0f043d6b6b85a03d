package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/eventstore"
)

// WorkerCheckpoint is the durable position of one single-active worker (a
// Kafka relay, a process) in the log whose identity is logID, shared by
// every replica of a deployment: the replica that holds the worker's role
// resumes from what the last holder saved. A position saved for another
// log reads as 0 (start from the beginning), and the next save replaces
// it, so a deployment pointed at a new log never skips its events.
func (s *Store) WorkerCheckpoint(logID, worker string) eventstore.Checkpoint {
	return &workerCheckpoint{db: s.db, logID: logID, worker: worker}
}

type workerCheckpoint struct {
	db     *db
	logID  string
	worker string
}

const (
	workerPositionSQL = `SELECT position FROM worker_checkpoints WHERE worker = $1 AND log_id = $2`
	// Within one log a worker's position never moves back: a holder that
	// lost its role and saves late cannot undo its successor's progress.
	workerSaveSQL = `INSERT INTO worker_checkpoints (worker, log_id, position, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (worker) DO UPDATE SET
		position = CASE WHEN worker_checkpoints.log_id = EXCLUDED.log_id
			THEN GREATEST(worker_checkpoints.position, EXCLUDED.position) ELSE EXCLUDED.position END,
		log_id = EXCLUDED.log_id, updated_at = now()`
)

func (c *workerCheckpoint) Load(ctx context.Context) (uint64, error) {
	var pos int64
	err := c.db.pool.QueryRow(ctx, workerPositionSQL, c.worker, c.logID).Scan(&pos)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("checkpoint of worker %s: %w", c.worker, err)
	}
	return uint64(pos), nil
}

func (c *workerCheckpoint) Save(ctx context.Context, position uint64) error {
	if position > math.MaxInt64 {
		return fmt.Errorf("checkpoint of worker %s: position %d out of range", c.worker, position)
	}
	if _, err := c.db.pool.Exec(ctx, workerSaveSQL, c.worker, c.logID, int64(position)); err != nil {
		return fmt.Errorf("checkpoint of worker %s: save %d: %w", c.worker, position, err)
	}
	return nil
}
