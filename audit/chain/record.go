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

// Record is the durable witness of the chains in a SQLite file of the
// data directory, the embedded default's [RecordWriter] and
// [RecordReader]: per event (org, seq, id, type, stream, hash), per
// organization its head, the signed checkpoints, the position in the log
// the Chainer has reached, and the latest claim. It is written only by the
// Chainer, in one transaction per batch, and never rebuilt from the log.
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

CREATE TABLE IF NOT EXISTS chain_fence (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	fence INTEGER NOT NULL
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

// Position returns how far in the log the record reaches (0: nothing yet).
func (r *Record) Position(ctx context.Context) (uint64, error) { return position(ctx, r.db) }

func position(ctx context.Context, q querier) (uint64, error) {
	var p uint64
	err := q.QueryRowContext(ctx, `SELECT position FROM chain_position WHERE id = 1`).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("chain: read position: %w", err)
	}
	return p, nil
}

// Heads returns every organization's head.
func (r *Record) Heads(ctx context.Context) (map[string]Head, error) { return heads(ctx, r.db) }

func heads(ctx context.Context, q querier) (map[string]Head, error) {
	rows, err := q.QueryContext(ctx, `SELECT org, seq, hash FROM chain_heads`)
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

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Claim makes the caller the record's writer (see [RecordWriter]).
func (r *Record) Claim(ctx context.Context) (Fence, State, error) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, State{}, fmt.Errorf("chain: claim the record: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var f Fence
	if err := tx.QueryRowContext(ctx, `INSERT INTO chain_fence (id, fence) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET fence = fence + 1 RETURNING fence`).Scan(&f); err != nil {
		return 0, State{}, fmt.Errorf("chain: claim the record: %w", err)
	}
	var st State
	if st.Position, err = position(ctx, tx); err != nil {
		return 0, State{}, err
	}
	if st.Heads, err = heads(ctx, tx); err != nil {
		return 0, State{}, err
	}
	if st.Checkpointed, err = lastCheckpoints(ctx, tx); err != nil {
		return 0, State{}, err
	}
	if err := tx.Commit(); err != nil {
		return 0, State{}, fmt.Errorf("chain: claim the record: %w", err)
	}
	return f, st, nil
}

// fenced takes the record's write lock for f: it fails with ErrFenced if
// f is not the latest claim.
func fenced(ctx context.Context, tx *sql.Tx, f Fence) error {
	res, err := tx.ExecContext(ctx, `UPDATE chain_fence SET fence = fence WHERE id = 1 AND fence = ?`, f)
	if err != nil {
		return fmt.Errorf("chain: check the claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w (claim %d)", ErrFenced, f)
	}
	return nil
}

// lastCheckpoints returns each organization's last checkpointed seq.
func lastCheckpoints(ctx context.Context, q querier) (map[string]uint64, error) {
	rows, err := q.QueryContext(ctx, `SELECT org, MAX(seq) FROM chain_checkpoints GROUP BY org`)
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

// Commit writes b in one transaction under claim f (see [RecordWriter]).
func (r *Record) Commit(ctx context.Context, f Fence, b Batch) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fenced(ctx, tx, f); err != nil {
		return err
	}
	if at, err := position(ctx, tx); err != nil {
		return err
	} else if at != b.From {
		return fmt.Errorf("%w: the record is at position %d, the batch continues from %d", ErrFenced, at, b.From)
	}
	if len(b.Entries) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO chain_events (org, seq, event_id, type, stream, hash) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("chain: prepare: %w", err)
		}
		defer ins.Close()
		for _, e := range b.Entries {
			if _, err := ins.ExecContext(ctx, e.OrgID, e.Seq, e.EventID[:], e.Type, e.Stream, e.Hash[:]); err != nil {
				return fmt.Errorf("chain: record %s seq %d: %w", e.OrgID, e.Seq, err)
			}
		}
	}
	for org, h := range b.Heads {
		if _, err := tx.ExecContext(ctx, `INSERT INTO chain_heads (org, seq, hash) VALUES (?, ?, ?)
			ON CONFLICT (org) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, org, h.Seq, h.Hash[:]); err != nil {
			return fmt.Errorf("chain: head of %s: %w", org, err)
		}
	}
	for _, c := range b.Checkpoints {
		if _, err := tx.ExecContext(ctx, `INSERT INTO chain_checkpoints (org, seq, position, head, time, kid, signature)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.OrgID, c.Seq, c.Position, c.Head[:], c.Time.UnixNano(), c.KeyID, c.Signature); err != nil {
			return fmt.Errorf("chain: checkpoint %s seq %d: %w", c.OrgID, c.Seq, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chain_position (id, position) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET position = excluded.position`, b.Position); err != nil {
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

// Unpublished returns checkpoints not yet handed to the publisher, oldest
// first.
func (r *Record) Unpublished(ctx context.Context, limit int) ([]Checkpoint, error) {
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

// MarkPublished records that c was published, under claim f.
func (r *Record) MarkPublished(ctx context.Context, f Fence, c Checkpoint) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("chain: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fenced(ctx, tx, f); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE chain_checkpoints SET published = 1 WHERE org = ? AND seq = ?`, c.OrgID, c.Seq); err != nil {
		return fmt.Errorf("chain: mark checkpoint %s seq %d published: %w", c.OrgID, c.Seq, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("chain: mark checkpoint %s seq %d published: %w", c.OrgID, c.Seq, err)
	}
	return nil
}

// ReadSnapshot returns the record of org ("" for every organization); see
// [RecordReader].
func (r *Record) ReadSnapshot(ctx context.Context, org string, started func(position, events uint64)) (Snapshot, error) {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Snapshot{}, fmt.Errorf("chain: read record: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	s := Snapshot{Entries: map[string][]Entry{}, Checkpoints: map[string][]Checkpoint{}}
	err = tx.QueryRowContext(ctx, `SELECT position FROM chain_position WHERE id = 1`).Scan(&s.Position)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, fmt.Errorf("chain: read position: %w", err)
	}
	where, args := "", []any{}
	if org != "" {
		where, args = " WHERE org = ?", []any{org}
	}
	var events uint64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(seq), 0) FROM chain_heads`+where, args...).Scan(&events); err != nil {
		return Snapshot{}, fmt.Errorf("chain: read heads: %w", err)
	}
	started(s.Position, events)
	// Type and stream are left out (see describe): they only name the
	// event of a finding, and reading them for every event costs a third
	// of a verification. The columns are read in place (RawBytes): one
	// string per organization, no allocation per row.
	rows, err := tx.QueryContext(ctx, `SELECT org, seq, event_id, hash FROM chain_events`+where+` ORDER BY org, seq`, args...)
	if err != nil {
		return Snapshot{}, fmt.Errorf("chain: read record: %w", err)
	}
	var id, hash, orgBytes sql.RawBytes
	var cur []Entry
	curOrg := ""
	flush := func() {
		if cur != nil {
			s.Entries[curOrg] = cur
		}
	}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&orgBytes, &e.Seq, &id, &hash); err != nil {
			rows.Close()
			return Snapshot{}, fmt.Errorf("chain: read record: %w", err)
		}
		if cur == nil || string(orgBytes) != curOrg {
			flush()
			curOrg = string(orgBytes)
			cur = s.Entries[curOrg] // rows are ordered by org: nil but for a repeated org
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
		return Snapshot{}, fmt.Errorf("chain: read record: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT org, seq, head, time, kid, signature FROM chain_checkpoints`+where+` ORDER BY org, seq`, args...)
	if err != nil {
		return Snapshot{}, fmt.Errorf("chain: read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Checkpoint
		var t int64
		if err := rows.Scan(&c.OrgID, &c.Seq, &hash, &t, &c.KeyID, &c.Signature); err != nil {
			return Snapshot{}, fmt.Errorf("chain: read checkpoints: %w", err)
		}
		copy(c.Head[:], hash)
		c.Time = time.Unix(0, t).UTC()
		s.Checkpoints[c.OrgID] = append(s.Checkpoints[c.OrgID], c)
	}
	return s, rows.Err()
}

// Describe returns the recorded type and stream of an organization's
// event at seq ("" if the record has none).
func (r *Record) Describe(ctx context.Context, org string, seq uint64) (typ, stream string, err error) {
	err = r.db.QueryRowContext(ctx, `SELECT type, stream FROM chain_events WHERE org = ? AND seq = ?`, org, seq).Scan(&typ, &stream)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return typ, stream, err
}
