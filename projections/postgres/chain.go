package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/palisadehq/palisade/audit/chain"
)

// ErrChainOfAnotherLog: the audit chain's record in the schema was written
// from another event log than the one it is opened for. It is kept (it is
// the witness of that log, and no reset removes it), and never continued
// or verified against this log.
var ErrChainOfAnotherLog = errors.New("the audit chain's record in PostgreSQL belongs to another event log")

// ChainRecord is the audit chain's record in PostgreSQL (migration
// 00018), the [chain.RecordWriter] and [chain.RecordReader] shared by the
// replicas of a deployment: the chainer of the replica elected for it
// writes it, and every replica reads it, so any of them answers a
// verification alike.
//
// The recorded events and the checkpoints are tenant tables under the org
// policy: each statement on them runs after setting its organization (a
// batch of the chainer sets each organization in turn, in one
// transaction), and the application role may only read and add to them.
// Where the chain is (audit_chain: the log, the position, the latest claim)
// and each organization's head (audit_chain_heads) are the chainer's own
// bookkeeping across organizations. Every write of the chainer is
// conditioned on its claim still being the latest (the fence in
// audit_chain, whose row each write locks first), so a chainer whose role
// moved to another replica writes nothing once its successor has claimed.
type ChainRecord struct {
	db    *db
	logID string
}

// ChainRecord returns the audit chain's record for the log whose identity
// is logID: the first claim binds an empty record to it, and a record of
// another log is refused with [ErrChainOfAnotherLog].
func (s *Store) ChainRecord(logID string) *ChainRecord {
	return &ChainRecord{db: s.db, logID: logID}
}

const (
	chainClaimSQL = `INSERT INTO audit_chain (log_id, position, fence) VALUES ($1, 0, 1)
		ON CONFLICT (singleton) DO UPDATE SET fence = audit_chain.fence + 1
		RETURNING log_id, position, fence`
	chainHeadsSQL   = `SELECT organization, seq, hash, checkpointed FROM audit_chain_heads`
	chainAdvanceSQL = `UPDATE audit_chain SET position = $1 WHERE fence = $2 AND position = $3 AND log_id = $4`
	chainEventsSQL  = `INSERT INTO audit_chain_events (org_id, seq, event_id, type, stream, hash)
		SELECT $1, e.seq, e.id::uuid, e.type, e.stream, e.hash
		FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[]) AS e(seq, id, type, stream, hash)`
	chainCheckpointSQL = `INSERT INTO audit_chain_checkpoints (org_id, seq, position, head, time_ns, kid, signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	chainHeadSQL = `INSERT INTO audit_chain_heads (organization, seq, hash) VALUES ($1, $2, $3)
		ON CONFLICT (organization) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash`
	chainCheckpointedSQL = `UPDATE audit_chain_heads SET checkpointed = GREATEST(checkpointed, $2) WHERE organization = $1`
	chainPublishedSQL    = `UPDATE audit_chain_heads SET published = GREATEST(published, $2)
		WHERE organization = $1 AND (SELECT fence FROM audit_chain) = $3`
	chainCheckpointsSQL = `SELECT seq, head, time_ns, kid, signature FROM audit_chain_checkpoints
		WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`
)

func int64Of(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("audit chain: %s %d out of range", what, v)
	}
	return int64(v), nil
}

// Claim makes the caller the record's writer (see [chain.RecordWriter]).
func (r *ChainRecord) Claim(ctx context.Context) (chain.Fence, chain.State, error) {
	tx, err := r.db.pool.Begin(ctx)
	if err != nil {
		return 0, chain.State{}, fmt.Errorf("audit chain: claim: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var (
		logID           string
		position, fence int64
	)
	if err := tx.QueryRow(ctx, chainClaimSQL, r.logID).Scan(&logID, &position, &fence); err != nil {
		return 0, chain.State{}, fmt.Errorf("audit chain: claim: %w", err)
	}
	if logID != r.logID {
		return 0, chain.State{}, fmt.Errorf("%w: it was written from log %s, this log is %s", ErrChainOfAnotherLog, logID, r.logID)
	}
	st := chain.State{Position: uint64(position), Heads: map[string]chain.Head{}, Checkpointed: map[string]uint64{}}
	rows, err := tx.Query(ctx, chainHeadsSQL)
	if err != nil {
		return 0, chain.State{}, fmt.Errorf("audit chain: read heads: %w", err)
	}
	for rows.Next() {
		var (
			org               string
			seq, checkpointed int64
			hash              []byte
		)
		if err := rows.Scan(&org, &seq, &hash, &checkpointed); err != nil {
			rows.Close()
			return 0, chain.State{}, fmt.Errorf("audit chain: read heads: %w", err)
		}
		h := chain.Head{Seq: uint64(seq)}
		copy(h.Hash[:], hash)
		st.Heads[org] = h
		if checkpointed > 0 {
			st.Checkpointed[org] = uint64(checkpointed)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, chain.State{}, fmt.Errorf("audit chain: read heads: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, chain.State{}, fmt.Errorf("audit chain: claim: %w", err)
	}
	return chain.Fence(fence), st, nil
}

// Commit writes b in one transaction under claim f (see
// [chain.RecordWriter]). The position moves first, conditioned on the
// claim: that locks the record's row, so a concurrent claim waits for this
// commit, and a stale claim writes nothing.
func (r *ChainRecord) Commit(ctx context.Context, f chain.Fence, b chain.Batch) error {
	from, err := int64Of("position", b.From)
	if err != nil {
		return err
	}
	to, err := int64Of("position", b.Position)
	if err != nil {
		return err
	}
	tx, err := r.db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("audit chain: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, chainAdvanceSQL, to, int64(f), from, r.logID)
	if err != nil {
		return fmt.Errorf("audit chain: advance: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w (claim %d, batch from position %d)", chain.ErrFenced, f, b.From)
	}
	batch := &pgx.Batch{}
	// The entries of one organization go in one statement, after setting
	// it; organizations in sorted order, so the statements are the same
	// for the same batch.
	byOrg := map[string][]chain.Entry{}
	for _, e := range b.Entries {
		byOrg[e.OrgID] = append(byOrg[e.OrgID], e)
	}
	for _, org := range slices.Sorted(maps.Keys(byOrg)) {
		entries := byOrg[org]
		seqs := make([]int64, len(entries))
		ids := make([]string, len(entries))
		types := make([]string, len(entries))
		streams := make([]string, len(entries))
		hashes := make([][]byte, len(entries))
		for i, e := range entries {
			if seqs[i], err = int64Of("seq", e.Seq); err != nil {
				return err
			}
			ids[i], types[i], streams[i], hashes[i] = e.EventID.String(), e.Type, e.Stream, e.Hash[:]
		}
		batch.Queue(setOrgSQL, org)
		batch.Queue(chainEventsSQL, org, seqs, ids, types, streams, hashes)
	}
	for _, org := range slices.Sorted(maps.Keys(b.Heads)) {
		h := b.Heads[org]
		seq, err := int64Of("seq", h.Seq)
		if err != nil {
			return err
		}
		batch.Queue(chainHeadSQL, org, seq, h.Hash[:])
	}
	for _, c := range b.Checkpoints {
		seq, err := int64Of("seq", c.Seq)
		if err != nil {
			return err
		}
		pos, err := int64Of("position", c.Position)
		if err != nil {
			return err
		}
		batch.Queue(setOrgSQL, c.OrgID)
		batch.Queue(chainCheckpointSQL, c.OrgID, seq, pos, c.Head[:], c.Time.UnixNano(), c.KeyID, c.Signature)
		batch.Queue(chainCheckpointedSQL, c.OrgID, seq)
	}
	if batch.Len() > 0 {
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("audit chain: record a batch to position %d: %w", b.Position, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("audit chain: commit: %w", err)
	}
	return nil
}

// Unpublished returns up to limit checkpoints not yet handed to the
// publisher, each organization's in seq order.
func (r *ChainRecord) Unpublished(ctx context.Context, limit int) ([]chain.Checkpoint, error) {
	rows, err := r.db.pool.Query(ctx, `SELECT organization, published FROM audit_chain_heads
		WHERE checkpointed > published ORDER BY organization`)
	if err != nil {
		return nil, fmt.Errorf("audit chain: read unpublished checkpoints: %w", err)
	}
	type pending struct {
		org   string
		after int64
	}
	var orgs []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.org, &p.after); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit chain: read unpublished checkpoints: %w", err)
		}
		orgs = append(orgs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit chain: read unpublished checkpoints: %w", err)
	}
	var out []chain.Checkpoint
	for _, p := range orgs {
		if len(out) >= limit {
			break
		}
		page, err := r.checkpoints(ctx, p.org, p.after, int64(limit-len(out)))
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
	}
	return out, nil
}

// MarkPublished records that c was published, under claim f.
func (r *ChainRecord) MarkPublished(ctx context.Context, f chain.Fence, c chain.Checkpoint) error {
	seq, err := int64Of("seq", c.Seq)
	if err != nil {
		return err
	}
	tag, err := r.db.pool.Exec(ctx, chainPublishedSQL, c.OrgID, seq, int64(f))
	if err != nil {
		return fmt.Errorf("audit chain: mark checkpoint %s seq %d published: %w", c.OrgID, c.Seq, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w (claim %d)", chain.ErrFenced, f)
	}
	return nil
}

// Checkpoints returns up to limit of an organization's checkpoints after
// seq after (limit <= 0: all).
func (r *ChainRecord) Checkpoints(ctx context.Context, org string, after uint64, limit int) ([]chain.Checkpoint, error) {
	from, err := int64Of("seq", after)
	if err != nil {
		return nil, err
	}
	var n int64 = math.MaxInt64
	if limit > 0 {
		n = int64(limit)
	}
	return r.checkpoints(ctx, org, from, n)
}

func (r *ChainRecord) checkpoints(ctx context.Context, org string, after, limit int64) ([]chain.Checkpoint, error) {
	var out []chain.Checkpoint
	err := r.db.query(ctx, org, chainCheckpointsSQL, []any{org, after, limit}, func(rows pgx.Rows) error {
		c, err := scanCheckpoint(rows, org)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit chain: read checkpoints of %s: %w", org, err)
	}
	return out, nil
}

func scanCheckpoint(rows pgx.Rows, org string) (chain.Checkpoint, error) {
	c := chain.Checkpoint{OrgID: org}
	var (
		seq, t int64
		head   []byte
	)
	if err := rows.Scan(&seq, &head, &t, &c.KeyID, &c.Signature); err != nil {
		return c, err
	}
	c.Seq = uint64(seq)
	copy(c.Head[:], head)
	c.Time = time.Unix(0, t).UTC()
	return c, nil
}

// Heads returns every organization's head.
func (r *ChainRecord) Heads(ctx context.Context) (map[string]chain.Head, error) {
	rows, err := r.db.pool.Query(ctx, `SELECT organization, seq, hash FROM audit_chain_heads`)
	if err != nil {
		return nil, fmt.Errorf("audit chain: read heads: %w", err)
	}
	defer rows.Close()
	heads := map[string]chain.Head{}
	for rows.Next() {
		var (
			org  string
			seq  int64
			hash []byte
		)
		if err := rows.Scan(&org, &seq, &hash); err != nil {
			return nil, fmt.Errorf("audit chain: read heads: %w", err)
		}
		h := chain.Head{Seq: uint64(seq)}
		copy(h.Hash[:], hash)
		heads[org] = h
	}
	return heads, rows.Err()
}

// Describe returns the recorded type and stream of org's event at seq
// ("" if the record has none).
func (r *ChainRecord) Describe(ctx context.Context, org string, seq uint64) (typ, stream string, err error) {
	s, err := int64Of("seq", seq)
	if err != nil {
		return "", "", err
	}
	err = r.db.query(ctx, org, `SELECT type, stream FROM audit_chain_events WHERE org_id = $1 AND seq = $2`, []any{org, s},
		func(rows pgx.Rows) error { return rows.Scan(&typ, &stream) })
	if err != nil {
		return "", "", fmt.Errorf("audit chain: describe %s seq %d: %w", org, seq, err)
	}
	return typ, stream, nil
}

// ReadSnapshot returns the record of org ("" for every organization) from
// one repeatable-read transaction (see [chain.RecordReader]). Each
// organization's rows are read after setting it, like any tenant read.
func (r *ChainRecord) ReadSnapshot(ctx context.Context, org string, started func(position, events uint64)) (chain.Snapshot, error) {
	tx, err := r.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return chain.Snapshot{}, fmt.Errorf("audit chain: read record: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var (
		logID            string
		position, events int64
	)
	// The first statement takes the transaction's snapshot.
	err = tx.QueryRow(ctx, `SELECT COALESCE((SELECT log_id FROM audit_chain), ''), COALESCE((SELECT position FROM audit_chain), 0),
		COALESCE((SELECT sum(seq) FROM audit_chain_heads WHERE $1 = '' OR organization = $1), 0)::bigint`, org).Scan(&logID, &position, &events)
	if err != nil {
		return chain.Snapshot{}, fmt.Errorf("audit chain: read record: %w", err)
	}
	if logID != "" && logID != r.logID {
		return chain.Snapshot{}, fmt.Errorf("%w: it was written from log %s, this log is %s", ErrChainOfAnotherLog, logID, r.logID)
	}
	orgs := []string{org}
	if org == "" {
		rows, err := tx.Query(ctx, `SELECT organization FROM audit_chain_heads ORDER BY organization`)
		if err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read organizations: %w", err)
		}
		if orgs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read organizations: %w", err)
		}
	}
	started(uint64(position), uint64(events))
	s := chain.Snapshot{Position: uint64(position), Entries: map[string][]chain.Entry{}, Checkpoints: map[string][]chain.Checkpoint{}}
	for _, o := range orgs {
		if _, err := tx.Exec(ctx, setOrgSQL, o); err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read record of %s: %w", o, err)
		}
		rows, err := tx.Query(ctx, `SELECT seq, event_id, hash FROM audit_chain_events WHERE org_id = $1 ORDER BY seq`, o)
		if err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read record of %s: %w", o, err)
		}
		var entries []chain.Entry
		for rows.Next() {
			e := chain.Entry{OrgID: o}
			var (
				seq  int64
				id   pgtype.UUID
				hash []byte
			)
			if err := rows.Scan(&seq, &id, &hash); err != nil {
				rows.Close()
				return chain.Snapshot{}, fmt.Errorf("audit chain: read record of %s: %w", o, err)
			}
			e.Seq, e.EventID = uint64(seq), id.Bytes
			copy(e.Hash[:], hash)
			entries = append(entries, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read record of %s: %w", o, err)
		}
		if entries != nil {
			s.Entries[o] = entries
		}
		rows, err = tx.Query(ctx, chainCheckpointsSQL, o, 0, int64(math.MaxInt64))
		if err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read checkpoints of %s: %w", o, err)
		}
		for rows.Next() {
			c, err := scanCheckpoint(rows, o)
			if err != nil {
				rows.Close()
				return chain.Snapshot{}, fmt.Errorf("audit chain: read checkpoints of %s: %w", o, err)
			}
			s.Checkpoints[o] = append(s.Checkpoints[o], c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return chain.Snapshot{}, fmt.Errorf("audit chain: read checkpoints of %s: %w", o, err)
		}
	}
	return s, nil
}
