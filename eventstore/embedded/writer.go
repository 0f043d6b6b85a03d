package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/palisadehq/palisade/eventstore"
)

// request is one Append or SaveCheckpoint waiting for the writer.
type request struct {
	ctx  context.Context
	done chan error // buffered: the writer never waits for the caller

	// An append: the envelopes are built by the caller (so encoding runs
	// in parallel across callers); the writer fills in versions and
	// positions.
	stream   eventstore.StreamName
	name     string
	expected eventstore.ExpectedVersion
	// cond, when condName is set, is the other stream's version the
	// append depends on; it is checked in the append's transaction.
	cond     eventstore.Condition
	condName string
	envs     []eventstore.Envelope
	metadata []string // JSON of envs[i].Metadata
	result   eventstore.AppendResult

	// A checkpoint, when name is empty.
	checkpoint string
	position   uint64

	// epoch is how many batches the writer had answered when the request
	// was queued.
	epoch uint64
	// Set by the writer while it builds a batch.
	err error
}

func newAppendRequest(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (*request, error) {
	req := &request{
		ctx:      ctx,
		done:     make(chan error, 1),
		stream:   stream,
		name:     stream.String(),
		expected: expected,
		envs:     make([]eventstore.Envelope, len(events)),
		metadata: make([]string, len(events)),
	}
	now := eventstore.Now()
	for i, e := range events {
		env := eventstore.Envelope{
			ID:       e.ID,
			Type:     e.Type,
			Stream:   stream,
			Data:     slices.Clone(e.Data), // the caller may reuse its buffer
			Metadata: e.Metadata,
		}
		if env.ID == uuid.Nil {
			env.ID = eventstore.NewEventID()
		}
		if env.OccurredAt.IsZero() {
			env.OccurredAt = now
		} else {
			env.OccurredAt = env.OccurredAt.UTC().Truncate(time.Microsecond)
		}
		env.Actor.Roles = slices.Clone(env.Actor.Roles)
		env.Actor.OnBehalfOf = slices.Clone(env.Actor.OnBehalfOf)
		meta, err := eventstore.AppendMetadataJSON(nil, env.Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode metadata of event %d: %w", i, err)
		}
		req.envs[i] = env
		req.metadata[i] = string(meta)
	}
	return req, nil
}

func (r *request) size() int { return max(len(r.envs), 1) }

// writer owns the write connection. Only its goroutine touches its fields
// after Open.
type writer struct {
	store *Store
	conn  *sql.Conn
	ctx   context.Context // statements outlive any one request's context

	begin, commit, rollback *sql.Stmt
	lastVersion, saveCkpt   *sql.Stmt
	checkpoint              *sql.Stmt
	// inserts holds INSERT statements by how many rows they carry.
	inserts map[int]*sql.Stmt
	args    []any

	// sinceCheckpoint counts events committed since the WAL was last
	// copied back into the database.
	sinceCheckpoint int

	head uint64
	// versions caches each stream's last version. It is authoritative
	// because this goroutine is the only writer of the file; a miss reads
	// the file. It is changed only after a commit succeeds.
	versions map[string]uint64
	// pending holds the versions a batch being built has reached, so that
	// requests to one stream in one batch see each other.
	pending map[string]uint64
}

func newWriter(ctx context.Context, s *Store, conn *sql.Conn) (*writer, error) {
	w := &writer{
		store:    s,
		conn:     conn,
		ctx:      context.Background(),
		versions: make(map[string]uint64),
		pending:  make(map[string]uint64),
		inserts:  make(map[int]*sql.Stmt),
	}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&w.begin, `BEGIN IMMEDIATE`},
		{&w.commit, `COMMIT`},
		{&w.rollback, `ROLLBACK`},
		{&w.lastVersion, sqlLastVersion},
		{&w.saveCkpt, sqlSaveCheckpoint},
		{&w.checkpoint, `PRAGMA wal_checkpoint(PASSIVE)`},
	} {
		var err error
		if *p.stmt, err = conn.PrepareContext(ctx, p.query); err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
	}
	if err := conn.QueryRowContext(ctx, sqlHead).Scan(&w.head); err != nil {
		w.close()
		return nil, fmt.Errorf("read head: %w", err)
	}
	return w, nil
}

func (w *writer) close() {
	for _, stmt := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.lastVersion, w.saveCkpt, w.checkpoint} {
		if stmt != nil {
			stmt.Close()
		}
	}
	for _, stmt := range w.inserts {
		stmt.Close()
	}
	w.conn.Close()
}

// run takes every queued request, up to the batch bounds, and commits them
// together, until Close closes the queue; requests still queued then are
// committed before it returns.
func (w *writer) run() {
	defer close(w.store.writerDone)
	defer w.close()
	if hold := w.store.cfg.hold; hold != nil {
		<-hold
	}
	var batch []*request
	answered := 0 // requests in the last batch
	for {
		req, ok := <-w.store.requests
		if !ok {
			return
		}
		batch = w.gather(append(batch[:0], req), answered)
		w.commitBatch(batch)
		answered = len(batch)
		clear(batch) // let the requests go
		w.maybeCheckpoint()
	}
}

// gather adds queued requests to batch, up to the batch bounds.
//
// Callers answered by the last commit usually append again at once, but
// take a moment to come back. Without waiting for them, batches settle
// into two cohorts that alternate, each paying a whole fsync for half the
// callers. So when fewer requests are queued than the last batch answered
// plus those that were already queued while it committed, gather waits up
// to gatherDelay for the rest.
func (w *writer) gather(batch []*request, answered int) []*request {
	cfg := w.store.cfg
	requests := w.store.requests
	epoch := w.store.answered.Load()
	events, queuedEarlier := 0, 0
	add := func(req *request) {
		batch = append(batch, req)
		events += req.size()
		if req.epoch < epoch {
			queuedEarlier++
		}
	}
	full := func() bool { return len(batch) >= cfg.maxBatchRequests || events >= cfg.maxBatchEvents }
	first := batch[0]
	batch = batch[:0]
	add(first)
	for !full() {
		select {
		case req, ok := <-requests:
			if !ok {
				return batch
			}
			add(req)
			continue
		default:
		}
		break
	}
	target := answered + queuedEarlier
	if full() || len(batch) >= target || cfg.gatherDelay <= 0 {
		return batch
	}
	timer := time.NewTimer(cfg.gatherDelay)
	defer timer.Stop()
	for len(batch) < target && !full() {
		select {
		case req, ok := <-requests:
			if !ok {
				return batch
			}
			add(req)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// maybeCheckpoint copies the WAL back into the database file once enough
// has been committed, preferably when no append is waiting. It runs
// between transactions, after the last batch was answered, so no append
// waits for it unless it arrived meanwhile, and the checkpoint completes
// (nothing is written during it), which lets the next transaction restart
// the WAL from its beginning instead of growing it.
func (w *writer) maybeCheckpoint() {
	threshold := w.store.cfg.checkpointEvents
	if threshold <= 0 || w.sinceCheckpoint < threshold {
		return
	}
	if len(w.store.requests) > 0 && w.sinceCheckpoint < 4*threshold {
		return
	}
	var busy, frames, copied int
	if err := w.checkpoint.QueryRowContext(w.ctx).Scan(&busy, &frames, &copied); err != nil {
		return // SQLite's own autocheckpoint remains; try again later
	}
	w.sinceCheckpoint = 0
}

// commitBatch commits the live requests of batch in one transaction and
// answers each of them.
func (w *writer) commitBatch(batch []*request) {
	live := make([]*request, 0, len(batch))
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- err
			continue
		}
		live = append(live, req)
	}
	rowByRow := false
	for len(live) > 0 {
		failed, err := w.apply(live, rowByRow)
		if errors.Is(err, errRowByRow) {
			rowByRow = true
			continue
		}
		if failed >= 0 {
			// One request broke a constraint; the transaction is rolled
			// back. Answer it and try the others again without it.
			live[failed].done <- err
			live = slices.Delete(live, failed, failed+1)
			continue
		}
		if err != nil {
			w.reload()
			w.store.answered.Add(1)
			for _, req := range live {
				req.done <- err
			}
			return
		}
		committed := make([][]eventstore.Envelope, 0, len(live))
		for _, req := range live {
			if req.err == nil && req.name != "" {
				committed = append(committed, req.envs)
			}
		}
		w.store.publish(w.head, committed)
		w.store.answered.Add(1)
		for _, req := range live {
			req.done <- req.err
		}
		return
	}
}

// apply writes live in one transaction and commits it. A request that
// fails its expected version is marked (req.err) and skipped. Rows go in
// multi-row INSERTs; if one breaks a uniqueness constraint, apply rolls
// back and returns errRowByRow, and the caller runs it again rowByRow,
// which tells whose row it was: then apply rolls back and returns that
// request's index and error. Any other failure rolls back and returns
// index -1 and the error. On success w.head and w.versions move.
func (w *writer) apply(live []*request, rowByRow bool) (int, error) {
	clear(w.pending)
	clear(w.args) // what an aborted attempt left
	w.args = w.args[:0]
	position := w.head
	if _, err := w.begin.ExecContext(w.ctx); err != nil {
		return -1, fmt.Errorf("begin: %w", err)
	}
	for i, req := range live {
		req.err = nil
		if req.name == "" {
			if _, err := w.saveCkpt.ExecContext(w.ctx, req.checkpoint, int64(req.position), time.Now().UnixMicro()); err != nil {
				w.abort()
				return -1, fmt.Errorf("save checkpoint %q: %w", req.checkpoint, err)
			}
			continue
		}
		current, exists, err := w.version(req.name)
		if err != nil {
			w.abort()
			return -1, err
		}
		if err := req.expected.Check(req.stream, current, exists); err != nil {
			req.err = err
			continue
		}
		if req.condName != "" {
			condCurrent, condExists, err := w.version(req.condName)
			if err != nil {
				w.abort()
				return -1, err
			}
			if err := req.cond.Check(condCurrent, condExists); err != nil {
				req.err = err
				continue
			}
		}
		next := uint64(0)
		if exists {
			next = current + 1
		}
		for j := range req.envs {
			position++
			env := &req.envs[j]
			env.Position = position
			env.StreamVersion = next + uint64(j)
			w.args = append(w.args,
				int64(env.Position), env.ID[:], req.name, int64(env.StreamVersion),
				req.stream.Category, req.stream.OrgID, env.Type, env.OccurredAt.UnixMicro(),
				req.metadata[j], []byte(env.Data))
			if rowByRow || len(w.args) == insertChunk*insertColumns {
				if err := w.flush(); err != nil {
					w.abort()
					if !isUniqueViolation(err) {
						return -1, fmt.Errorf("insert events: %w", err)
					}
					if !rowByRow {
						return -1, errRowByRow
					}
					return i, w.conflict(req, err)
				}
			}
		}
		last := next + uint64(len(req.envs)) - 1
		w.pending[req.name] = last
		req.result = eventstore.AppendResult{
			FirstVersion:  next,
			LastVersion:   last,
			FirstPosition: req.envs[0].Position,
			LastPosition:  position,
		}
	}
	if err := w.flush(); err != nil {
		w.abort()
		if isUniqueViolation(err) {
			return -1, errRowByRow
		}
		return -1, fmt.Errorf("insert events: %w", err)
	}
	if _, err := w.commit.ExecContext(w.ctx); err != nil {
		w.abort()
		return -1, fmt.Errorf("commit: %w", err)
	}
	w.sinceCheckpoint += int(position - w.head)
	w.head = position
	for name, version := range w.pending {
		w.versions[name] = version
	}
	if len(w.versions) > w.store.cfg.maxCachedStreams {
		// Forget about half, at random (map order); misses read the file.
		for name := range w.versions {
			if len(w.versions) <= w.store.cfg.maxCachedStreams/2 {
				break
			}
			delete(w.versions, name)
		}
	}
	return -1, nil
}

// version returns the last version of stream as this batch sees it.
func (w *writer) version(name string) (uint64, bool, error) {
	if v, ok := w.pending[name]; ok {
		return v, true, nil
	}
	if v, ok := w.versions[name]; ok {
		return v, true, nil
	}
	var v int64
	err := w.lastVersion.QueryRowContext(w.ctx, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read version of %s: %w", name, err)
	}
	return uint64(v), true, nil
}

// errRowByRow says a multi-row INSERT broke a uniqueness constraint and
// the batch must be run again a row at a time to find whose row did.
var errRowByRow = errors.New("uniqueness violation in a multi-row insert")

// insertChunk is how many rows one INSERT statement carries.
const (
	insertChunk   = 32
	insertColumns = 10
)

// flush inserts the rows gathered in w.args.
func (w *writer) flush() error {
	rows := len(w.args) / insertColumns
	if rows == 0 {
		return nil
	}
	stmt := w.inserts[rows]
	if stmt == nil {
		var err error
		query := sqlInsertEvents + strings.Repeat(", "+sqlInsertValues, rows-1)
		if stmt, err = w.conn.PrepareContext(w.ctx, query); err != nil {
			return fmt.Errorf("prepare insert of %d rows: %w", rows, err)
		}
		w.inserts[rows] = stmt
	}
	_, err := stmt.ExecContext(w.ctx, w.args...)
	clear(w.args) // drop references to the batch's data
	w.args = w.args[:0]
	return err
}

func isUniqueViolation(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// conflict turns a uniqueness violation by req's own row into its
// ErrConflict.
func (w *writer) conflict(req *request, err error) error {
	if strings.Contains(err.Error(), "events.stream") {
		// The cache disagreed with the file; only another writer of the
		// file (which the lock excludes) could cause that.
		delete(w.versions, req.name)
		return fmt.Errorf("%w: %s has a version the store did not know", eventstore.ErrConflict, req.stream)
	}
	return fmt.Errorf("%w: an event id of this append is already in the log", eventstore.ErrConflict)
}

// abort rolls back the open transaction. SQLite may have rolled it back
// already (after some errors), so a failure here means nothing new.
func (w *writer) abort() {
	_, _ = w.rollback.ExecContext(w.ctx)
}

// reload rereads what a failed commit may have left uncertain: the
// stream versions and the head.
func (w *writer) reload() {
	clear(w.versions)
	var head uint64
	if err := w.conn.QueryRowContext(w.ctx, sqlHead).Scan(&head); err != nil {
		return // keep the old head: nothing was committed, or the next batch fails too
	}
	if head != w.head {
		w.head = head
		w.store.resetHead(head)
	}
}
