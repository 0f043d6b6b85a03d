package chain

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the record's file
)

// RecordFile is the record's file name in the data directory.
const RecordFile = "audit-chain.db"

// Record is the durable witness of the chains: per event (org, seq, id,
// type, stream, hash), per organization its head, the signed checkpoints,
// and the position in the log the Chainer has reached. It is written only
// by the Chainer, in one transaction per batch, and never rebuilt from the
// log.
type Record struct {
	db *sql.DB
}

const recordSchema = `
CREATE TABLE IF NOT EXISTS chain_events (
	org      TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	event_id BLOB    NOT NULL,
	type     TEXT    NOT NULL,
	stream   TEXT    NOT NULL,
	hash     BLOB    NOT NULL,
	PRIMARY KEY (org, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chain_heads (
	org  TEXT    PRIMARY KEY,
	seq  INTEGER NOT NULL,
	hash BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chain_checkpoints (
	org       TEXT    NOT NULL,
	seq       INTEGER NOT NULL,
	position  INTEGER NOT NULL,
	head      BLOB    NOT NULL,
	time      INTEGER NOT NULL,
	kid       TEXT    NOT NULL,
	signature BLOB    NOT NULL,
	published INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (org, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chain_position (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	position INTEGER NOT NULL
) STRICT;
`

// OpenRecord opens (creating it with mode 0600 if needed) the record at
// path.
func OpenRecord(ctx context.Context, path string) (*Record, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("chain: open record: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("chain: open record: %w", err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("chain: open record: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, recordSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("chain: create record schema: %w", err)
	}
	return &Record{db: db}, nil
}

// Close closes the file.
func (r *Record) Close() error { return r.db.Close() }

// Entry is one event as the record keeps it.
type Entry struct {
	OrgID   string
	Seq     uint64
	EventID uuid.UUID
	Type    string
	Stream  string
	Hash    Digest
}

// Head is an organization's last recorded link.
type Head struct {
	Seq  uint64
	Hash Digest
}

// stored is a checkpoint with what the record keeps beside it.
type stored struct {
	Checkpoint
	Position uint64
}

// batch is what one Chainer step commits at once.
type batch struct {
	entries     []Entry
	heads       map[string]Head
	checkpoints []stored
	position    uint64
}

// Position returns how far in the log the record reaches (0: nothing yet).
func (r *Record) Position(ctx context.Context) (uint64, error) {
	var p uint64
	err := r.db.QueryRowContext(ctx, `SELECT position FROM chain_position WHERE id = 1`).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("chain: read position: %w", err)
	}
	return p, nil
}

// Heads returns every organization's head.
func (r *Record) Heads(ctx context.Context) (map[string]Head, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT org, seq, hash FROM chain_heads`)
	if err != nil {
		return nil, fmt.Errorf("chain: read heads: %w", err)
	}
	defer rows.Close()
	heads := map[string]Head{}
	for rows.Next() {
		var org string
		var h Head
		var hash []byte
		if err := rows.Scan(&org, &h.Seq, &hash); err != nil {
			return nil, fmt.Errorf("chain: read heads: %w", err)
		}
		copy(h.Hash[:], hash)
		heads[org] = h
	}
	return heads, rows.Err()
}

// lastCheckpoints returns each organization's last checkpointed seq.
func (r *Record) lastCheckpoints(ctx context.Context) (map[string]uint64, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT org, MAX(seq) FROM chain_checkpoints GROUP BY org`)
	if err != nil {
		return nil, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	defer rows.Close()
	last := map[string]uint64{}
	for rows.Next() {
		var org string
		var seq uint64
		if err := rows.Scan(&org, &seq); err != nil {
			return nil, fmt.Errorf("chain: read checkpoints: %w", err)
		}
		last[org] = seq
	}
	return last, rows.Err()
}

// commit writes b in one transaction: the entries, the heads, the
// checkpoints and the new position, or nothing.
func (r *Record) commit(ctx context.Context, b batch) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if len(b.entries) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO chain_events (org, seq, event_id, type, stream, hash) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("chain: prepare: %w", err)
		}
		defer ins.Close()
		for _, e := range b.entries {
			if _, err := ins.ExecContext(ctx, e.OrgID, e.Seq, e.EventID[:], e.Type, e.Stream, e.Hash[:]); err != nil {
				return fmt.Errorf("chain: record %s seq %d: %w", e.OrgID, e.Seq, err)
			}
		}
	}
	for org, h := range b.heads {
		if _, err := tx.ExecContext(ctx, `INSERT INTO chain_heads (org, seq, hash) VALUES (?, ?, ?)
			ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, org, h.Seq, h.Hash[:]); err != nil {
			return fmt.Errorf("chain: head of %s: %w", org, err)
		}
	}
	for _, c := range b.checkpoints {
		if _, err := tx.ExecContext(ctx, `INSERT INTO chain_checkpoints (org, seq, position, head, time, kid, signature)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.OrgID, c.Seq, c.Position, c.Head[:], c.Time.UnixNano(), c.KeyID, c.Signature); err != nil {
			return fmt.Errorf("chain: checkpoint %s seq %d: %w", c.OrgID, c.Seq, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chain_position (id, position) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET position = excluded.position`, b.position); err != nil {
		return fmt.Errorf("chain: position: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("chain: commit: %w", err)
	}
	return nil
}

// Entries returns an organization's recorded events in seq order.
func (r *Record) Entries(ctx context.Context, org string) ([]Entry, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT seq, event_id, type, stream, hash FROM chain_events WHERE org = ? ORDER BY seq`, org)
	if err != nil {
		return nil, fmt.Errorf("chain: read record of %s: %w", org, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e := Entry{OrgID: org}
		var id, hash []byte
		if err := rows.Scan(&e.Seq, &id, &e.Type, &e.Stream, &hash); err != nil {
			return nil, fmt.Errorf("chain: read record of %s: %w", org, err)
		}
		copy(e.EventID[:], id)
		copy(e.Hash[:], hash)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Orgs returns every organization the record knows.
func (r *Record) Orgs(ctx context.Context) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT org FROM chain_heads ORDER BY org`)
	if err != nil {
		return nil, fmt.Errorf("chain: read organizations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var org string
		if err := rows.Scan(&org); err != nil {
			return nil, err
		}
		out = append(out, org)
	}
	return out, rows.Err()
}

// Checkpoints returns up to limit of an organization's checkpoints with a
// seq after after, in seq order (limit <= 0: all).
func (r *Record) Checkpoints(ctx context.Context, org string, after uint64, limit int) ([]Checkpoint, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := r.db.QueryContext(ctx, `SELECT seq, head, time, kid, signature FROM chain_checkpoints
		WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?`, org, after, limit)
	if err != nil {
		return nil, fmt.Errorf("chain: read checkpoints of %s: %w", org, err)
	}
	return scanCheckpoints(rows, org)
}

func scanCheckpoints(rows *sql.Rows, org string) ([]Checkpoint, error) {
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		c := Checkpoint{OrgID: org}
		var head []byte
		var t int64
		if err := rows.Scan(&c.Seq, &head, &t, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("chain: read checkpoints of %s: %w", org, err)
		}
		copy(c.Head[:], head)
		c.Time = time.Unix(0, t).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// unpublished returns checkpoints not yet handed to the publisher, oldest
// first.
func (r *Record) unpublished(ctx context.Context, limit int) ([]Checkpoint, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT org, seq, head, time, kid, signature FROM chain_checkpoints
		WHERE published = 0 ORDER BY time, org, seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("chain: read unpublished checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		var head []byte
		var t int64
		if err := rows.Scan(&c.OrgID, &c.Seq, &head, &t, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("chain: read unpublished checkpoints: %w", err)
		}
		copy(c.Head[:], head)
		c.Time = time.Unix(0, t).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

func (r *Record) markPublished(ctx context.Context, c Checkpoint) error {
	if _, err := r.db.ExecContext(ctx, `UPDATE chain_checkpoints SET published = 1 WHERE org = ? AND seq = ?`, c.OrgID, c.Seq); err != nil {
		return fmt.Errorf("chain: mark checkpoint %s seq %d published: %w", c.OrgID, c.Seq, err)
	}
	return nil
}

// snapshot is the record of one organization or of all, read in one
// transaction so that it is consistent with its position.
type snapshot struct {
	position    uint64
	entries     map[string][]Entry
	checkpoints map[string][]Checkpoint
}

// read returns the record of org ("" for every organization). Once the
// transaction's snapshot is taken, and before the events are read, it
// calls started with the record's position and how many events its heads
// count, so that the caller can start reading the log beside it: every
// event of the snapshot is in the log by then.
func (r *Record) read(ctx context.Context, org string, started func(position, events uint64)) (snapshot, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snapshot{}, fmt.Errorf("chain: read record: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	s := snapshot{entries: map[string][]Entry{}, checkpoints: map[string][]Checkpoint{}}
	err = tx.QueryRowContext(ctx, `SELECT position FROM chain_position WHERE id = 1`).Scan(&s.position)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return snapshot{}, fmt.Errorf("chain: read position: %w", err)
	}
	where, args := "", []any{}
	if org != "" {
		where, args = " WHERE org = ?", []any{org}
	}
	var events uint64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(seq), 0) FROM chain_heads`+where, args...).Scan(&events); err != nil {
		return snapshot{}, fmt.Errorf("chain: read heads: %w", err)
	}
	started(s.position, events)
	// Type and stream are left out (see describe): they only name the
	// event of a finding, and reading them for every event costs a third
	// of a verification. The columns are read in place (RawBytes): one
	// string per organization, no allocation per row.
	rows, err := tx.QueryContext(ctx, `SELECT org, seq, event_id, hash FROM chain_events`+where+` ORDER BY org, seq`, args...)
	if err != nil {
		return snapshot{}, fmt.Errorf("chain: read record: %w", err)
	}
	var id, hash, orgBytes sql.RawBytes
	var cur []Entry
	curOrg := ""
	flush := func() {
		if cur != nil {
			s.entries[curOrg] = cur
		}
	}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&orgBytes, &e.Seq, &id, &hash); err != nil {
			rows.Close()
			return snapshot{}, fmt.Errorf("chain: read record: %w", err)
		}
		if cur == nil || string(orgBytes) != curOrg {
			flush()
			curOrg = string(orgBytes)
			cur = s.entries[curOrg] // rows are ordered by org: nil but for a repeated org
			if cur == nil {
				cur = make([]Entry, 0, 1024)
			}
		}
		e.OrgID = curOrg
		copy(e.EventID[:], id)
		copy(e.Hash[:], hash)
		cur = append(cur, e)
	}
	flush()
	rows.Close()
	if err := rows.Err(); err != nil {
		return snapshot{}, fmt.Errorf("chain: read record: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT org, seq, head, time, kid, signature FROM chain_checkpoints`+where+` ORDER BY org, seq`, args...)
	if err != nil {
		return snapshot{}, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Checkpoint
		var t int64
		if err := rows.Scan(&c.OrgID, &c.Seq, &hash, &t, &c.KeyID, &c.Signature); err != nil {
			return snapshot{}, fmt.Errorf("chain: read checkpoints: %w", err)
		}
		copy(c.Head[:], hash)
		c.Time = time.Unix(0, t).UTC()
		s.checkpoints[c.OrgID] = append(s.checkpoints[c.OrgID], c)
	}
	return s, rows.Err()
}

// describe returns the recorded type and stream of an organization's
// event at seq ("" if the record has none).
func (r *Record) describe(ctx context.Context, org string, seq uint64) (typ, stream string, err error) {
	err = r.db.QueryRowContext(ctx, `SELECT type, stream FROM chain_events WHERE org = ? AND seq = ?`, org, seq).Scan(&typ, &stream)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return typ, stream, err
}
