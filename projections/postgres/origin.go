package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Errors of [Store.Claim]: the read models may not be served from the log
// that claims them. Each wraps [ErrNotThisLog], so a caller that only needs
// to know whether to rebuild matches that.
var (
	ErrNotThisLog = errors.New("read models do not belong to this event log")
	// ErrOtherLog: the read models were built from a log of another identity.
	ErrOtherLog = fmt.Errorf("%w: they were built from another log", ErrNotThisLog)
	// ErrAheadOfLog: the read models applied positions beyond the log's
	// last one (the log was restored from an older copy, or cut short).
	ErrAheadOfLog = fmt.Errorf("%w: they are ahead of it", ErrNotThisLog)
	// ErrUnbound: the read models hold rows but no log identity (they were
	// built before identities were recorded).
	ErrUnbound = fmt.Errorf("%w: they record no log identity", ErrNotThisLog)
)

// Origin is what the read models record of the log they were built from.
type Origin struct {
	// LogID is the log's identity, "" while no log has claimed them.
	LogID string
	// Position is the furthest position any read model has applied.
	Position uint64
}

const (
	originSQL = `SELECT COALESCE((SELECT log_id FROM read_model_origin WHERE singleton), ''),
		COALESCE((SELECT max(position) FROM projection_checkpoints), 0)`
	bindSQL = `INSERT INTO read_model_origin (log_id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`
)

// Origin reads which log the read models were built from and how far.
func (s *Store) Origin(ctx context.Context) (Origin, error) {
	var (
		o   Origin
		pos int64
	)
	if err := s.db.pool.QueryRow(ctx, originSQL).Scan(&o.LogID, &pos); err != nil {
		return Origin{}, fmt.Errorf("read the read models' log identity: %w", err)
	}
	o.Position = uint64(pos)
	return o, nil
}

// Claim checks that the read models may be served from the log whose
// identity is logID and whose last position is head, and binds empty read
// models to it. It fails with [ErrOtherLog], [ErrAheadOfLog] or
// [ErrUnbound] (all [ErrNotThisLog]) when they may not: serving them would
// answer from another log's members and resources, or from events the log
// no longer holds. Replicas may claim at the same time: the first binding
// wins and the others check against it.
func (s *Store) Claim(ctx context.Context, logID string, head uint64) (Origin, error) {
	if logID == "" {
		return Origin{}, errors.New("claim read models: empty log identity")
	}
	o, err := s.Origin(ctx)
	if err != nil {
		return Origin{}, err
	}
	if o.LogID == "" {
		if o.Position > 0 {
			return o, fmt.Errorf("%w (they reached position %d)", ErrUnbound, o.Position)
		}
		if _, err := s.db.pool.Exec(ctx, bindSQL, logID); err != nil {
			return Origin{}, fmt.Errorf("bind the read models to log %s: %w", logID, err)
		}
		if o, err = s.Origin(ctx); err != nil {
			return Origin{}, err
		}
	}
	switch {
	case o.LogID != logID:
		return o, fmt.Errorf("%w: built from log %s, this log is %s", ErrOtherLog, o.LogID, logID)
	case o.Position > head:
		return o, fmt.Errorf("%w: they reached position %d, the log ends at %d", ErrAheadOfLog, o.Position, head)
	}
	return o, nil
}

// keptOnReset are the tables a reset leaves alone: goose's record of the
// schema, and the embedding store, which is a cache of vectors by
// organization, model and content hash rather than a read model (a chunk
// takes a vector from it only when its own content matches), and which
// the ingestion process, whose progress is kept beside the log, would not
// fill again; and the workers' checkpoints, which are positions in a named
// log rather than state built from it (see WorkerCheckpoint); and the
// data keys, which no replay rebuilds: a reset that dropped them would
// crypto-shred every organization (see DataKeys); and the audit chain's
// record, the witness the log is checked against, which a rebuild from
// the log must never recompute (see ChainRecord).
var keptOnReset = []string{"goose_db_version", "embedding_cache", "worker_checkpoints",
	"data_keys", "data_key_subjects", "data_key_tombstones",
	"audit_chain", "audit_chain_heads", "audit_chain_events", "audit_chain_checkpoints"}

// Reset empties every read model of the schema (empty: public), their
// checkpoints and their log identity, as the owner role, so that the next
// server to start rebuilds them from its own log and binds them to it. It
// takes the schema's migration lock, so it never runs beside a migration.
// Servers still running on the schema must be stopped first: they would
// go on writing to what they believe is there.
func Reset(ctx context.Context, ownerURL, schema string) error {
	schema, err := schemaOf(schema)
	if err != nil {
		return err
	}
	connCfg, err := pgx.ParseConfig(ownerURL)
	if err != nil {
		return fmt.Errorf("reset read models: parse URL: %w", err)
	}
	connCfg.RuntimeParams["search_path"] = searchPath(schema)
	db := stdlib.OpenDB(*connCfg)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reset read models: connect: %w", err)
	}
	defer conn.Close()
	lockID := advisoryLockID(schema)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("reset read models: lock schema %s: %w", schema, err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)
	}()
	rows, err := conn.QueryContext(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT (c.relname = ANY($2))
		ORDER BY c.relname`, schema, keptOnReset)
	if err != nil {
		return fmt.Errorf("reset read models: list tables of %s: %w", schema, err)
	}
	var tables []string
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			rows.Close()
			return fmt.Errorf("reset read models: %w", err)
		}
		tables = append(tables, pgx.Identifier{schema, table}.Sanitize())
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reset read models: %w", err)
	}
	if len(tables) == 0 {
		return fmt.Errorf("reset read models: schema %s holds no read models (was it migrated?)", schema)
	}
	// One statement: every read model, its checkpoint and the identity go
	// together or not at all.
	stmt := "TRUNCATE " + strings.Join(tables, ", ")
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("reset read models of schema %s: %w", schema, err)
	}
	return nil
}
