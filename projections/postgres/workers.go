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
// it, so a deployment pointed at a new log never skips its events. Its
// Save is unconditional: a holder of the worker's role saves through
// FencedWorkerCheckpoint instead, so that a term replaced by another
// replica's stops.
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

// ErrFenced: a worker's checkpoint save of a term that a later term (on
// another replica, or a later one of this replica) has replaced. The
// saving holder has lost the worker's role and must stop its work.
var ErrFenced = errors.New("another replica has taken the worker's role since this term began")

const (
	// A term inserts the worker's row if there is none (position 0 reads
	// as none) and increments its epoch, taking the row's lock, so that a
	// fenced save under way either commits before it (and the term's Load
	// sees it) or finds the new epoch and is refused.
	workerBeginTermSQL = `INSERT INTO worker_checkpoints (worker, log_id, position, epoch, updated_at) VALUES ($1, $2, 0, 1, now())
		ON CONFLICT (worker) DO UPDATE SET epoch = worker_checkpoints.epoch + 1
		RETURNING epoch`
	// One statement: UPDATE re-reads the row it locks, so an epoch moved
	// on by a concurrent term is seen, never a stale copy.
	workerFencedSaveSQL = `UPDATE worker_checkpoints SET
		position = CASE WHEN log_id = $2 THEN GREATEST(position, $3) ELSE $3 END,
		log_id = $2, updated_at = now()
		WHERE worker = $1 AND epoch = $4`
)

// BeginWorkerTerm starts a term of the worker's role for the replica that
// has just been elected for it, and returns the term's epoch: the fencing
// token its FencedWorkerCheckpoint saves carry. Call it before loading the
// position, so that every save of an earlier term either is in the
// position loaded or is refused.
func (s *Store) BeginWorkerTerm(ctx context.Context, logID, worker string) (uint64, error) {
	var epoch int64
	if err := s.db.pool.QueryRow(ctx, workerBeginTermSQL, worker, logID).Scan(&epoch); err != nil {
		return 0, fmt.Errorf("begin a term of worker %s: %w", worker, err)
	}
	return uint64(epoch), nil
}

// FencedWorkerCheckpoint is WorkerCheckpoint for the holder of the term
// epoch (BeginWorkerTerm): it loads the same position, and its Save is
// refused with ErrFenced once a later term has begun. Epoch 0 is no term:
// every save is refused.
func (s *Store) FencedWorkerCheckpoint(logID, worker string, epoch uint64) eventstore.Checkpoint {
	return &fencedWorkerCheckpoint{workerCheckpoint: workerCheckpoint{db: s.db, logID: logID, worker: worker}, epoch: epoch}
}

type fencedWorkerCheckpoint struct {
	workerCheckpoint
	epoch uint64
}

func (c *fencedWorkerCheckpoint) Save(ctx context.Context, position uint64) error {
	if position > math.MaxInt64 || c.epoch > math.MaxInt64 {
		return fmt.Errorf("checkpoint of worker %s: position %d or term %d out of range", c.worker, position, c.epoch)
	}
	if c.epoch == 0 {
		return fmt.Errorf("checkpoint of worker %s: save %d outside any term: %w", c.worker, position, ErrFenced)
	}
	tag, err := c.db.pool.Exec(ctx, workerFencedSaveSQL, c.worker, c.logID, int64(position), int64(c.epoch))
	if err != nil {
		return fmt.Errorf("checkpoint of worker %s: save %d: %w", c.worker, position, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("checkpoint of worker %s: save %d of term %d: %w", c.worker, position, c.epoch, ErrFenced)
	}
	return nil
}
