package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// schemaVersion is stored in PRAGMA user_version; a file written by a
// newer schema is refused rather than misread. Version 2 added the log's
// identity (table log_identity).
const schemaVersion = 2

// The log. position is the rowid, assigned by the writer (max + 1, never
// reused because nothing is ever deleted). metadata is the JSON of
// eventstore.Metadata; data is the event's JSON exactly as appended;
// occurred_at is in microseconds since the Unix epoch, UTC.
const schema = `
CREATE TABLE events (
	position    INTEGER PRIMARY KEY,
	id          BLOB    NOT NULL UNIQUE,
	stream      TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	category    TEXT    NOT NULL,
	org_id      TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	occurred_at INTEGER NOT NULL,
	metadata    TEXT    NOT NULL,
	data        BLOB    NOT NULL,
	UNIQUE (stream, version)
) STRICT;

CREATE INDEX events_by_org ON events (org_id, position);

CREATE TABLE checkpoints (
	name       TEXT    PRIMARY KEY,
	position   INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
` + identitySchema

// identitySchema holds the log's identity: one row, written once when the
// file gets this table, never changed. A copy of the file is the same log
// (a backup restored is the same log, at an older position); a new file
// is another log.
const identitySchema = `
CREATE TABLE log_identity (
	singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
	log_id     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
`

const (
	envelopeColumns = `position, id, stream, version, type, occurred_at, metadata, data`

	// sqlInsertEvents is followed by one sqlInsertValues per row.
	sqlInsertEvents = `INSERT INTO events
	(position, id, stream, version, category, org_id, type, occurred_at, metadata, data)
	VALUES ` + sqlInsertValues
	sqlInsertValues   = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlLastVersion    = `SELECT version FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1`
	sqlHead           = `SELECT COALESCE(MAX(position), 0) FROM events`
	sqlSaveCheckpoint = `INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`
	sqlLoadCheckpoint = `SELECT position FROM checkpoints WHERE name = ?`
	sqlInsertIdentity = `INSERT INTO log_identity (singleton, log_id, created_at) VALUES (1, ?, ?)`
	sqlLogID          = `SELECT log_id FROM log_identity WHERE singleton = 1`
	sqlReadStream     = `SELECT ` + envelopeColumns + ` FROM events
	WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`
)

// migrate creates the schema in an empty file, brings a file of an older
// schema up to date, and refuses a file whose schema it does not know.
func migrate(ctx context.Context, conn *sql.Conn) error {
	var version int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("file has schema version %d, this build knows up to %d", version, schemaVersion)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin schema creation: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	switch version {
	case 0:
		// A file with user_version 0 may still hold tables of something else.
		var tables int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
			return fmt.Errorf("inspect file: %w", err)
		}
		if tables > 0 {
			return fmt.Errorf("file holds %d tables but no event store schema", tables)
		}
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	case 1:
		// A log written before it had an identity gets one now, once: the
		// file's later copies carry it.
		if _, err := tx.ExecContext(ctx, identitySchema); err != nil {
			return fmt.Errorf("add the log identity to schema version 1: %w", err)
		}
	default:
		return fmt.Errorf("file has unknown schema version %d", version)
	}
	if _, err := tx.ExecContext(ctx, sqlInsertIdentity, uuid.NewString(), time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("record the log identity: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema: %w", err)
	}
	return nil
}
