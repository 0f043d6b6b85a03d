package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	envs     []eventstore.Envelope
	metadata []string // JSON of envs[i].Metadata
	result   eventstore.AppendResult

	// A checkpoint, when name is empty.
	checkpoint string
	position   uint64

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
		if env.ID == [16]byte{} {
			env.ID = eventstore.NewEventID()
		}
		if env.OccurredAt.IsZero() {
			env.OccurredAt = now
		} else {
			env.OccurredAt = env.OccurredAt.UTC().Truncate(time.Microsecond)
		}
		env.Actor.Roles = slices.Clone(env.Actor.Roles)
		env.Actor.OnBehalfOf = slices.Clone(env.Actor.OnBehalfOf)
		meta, err := json.Marshal(env.Metadata)
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

	begin, commit, rollback       *sql.Stmt
	insert, lastVersion, saveCkpt *sql.Stmt

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
	}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&w.begin, `BEGIN IMMEDIATE`},
		{&w.commit, `COMMIT`},
		{&w.rollback, `ROLLBACK`},
		{&w.insert, sqlInsertEvent},
		{&w.lastVersion, sqlLastVersion},
		{&w.saveCkpt, sqlSaveCheckpoint},
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
	for _, stmt := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.insert, w.lastVersion, w.saveCkpt} {
		if stmt != nil {
			stmt.Close()
		}
	}
	w.conn.Close()
}

// run takes every queued request, up to the batch bounds, and commits them
// together, until Close closes the queue; requests still queued then are
// committed before it returns.
func (w *writer) run() {
	defer close(w.store.writerDone)
	defer w.close()
	cfg := w.store.cfg
	var batch []*request
	for {
		req, ok := <-w.store.requests
		if !ok {
			return
		}
		batch = append(batch[:0], req)
		events := req.size()
	fill:
		for len(batch) < cfg.maxBatchRequests && events < cfg.maxBatchEvents {
			select {
			case req, ok := <-w.store.requests:
				if !ok {
					break fill
				}
				batch = append(batch, req)
				events += req.size()
			default:
				break fill
			}
		}
		w.commitBatch(batch)
		clear(batch) // let the requests go
	}
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
	for len(live) > 0 {
		failed, err := w.apply(live)
		if failed >= 0 {
			// One request broke a constraint; the transaction is rolled
			// back. Answer it and try the others again without it.
			live[failed].done <- err
			live = slices.Delete(live, failed, failed+1)
			continue
		}
		if err != nil {
			for _, req := range live {
				req.done <- err
			}
			w.reload()
			return
		}
		committed := make([][]eventstore.Envelope, 0, len(live))
		for _, req := range live {
			if req.err == nil && req.name != "" {
				committed = append(committed, req.envs)
			}
		}
		w.store.publish(w.head, committed)
		for _, req := range live {
			req.done <- req.err
		}
		return
	}
}

// apply writes live in one transaction and commits it. A request that
// fails its expected version is marked (req.err) and skipped. If an insert
// breaks a constraint that belongs to one request, apply rolls back and
// returns that request's index and error; any other failure rolls back and
// returns index -1 and the error. On success w.head and w.versions move.
func (w *writer) apply(live []*request) (int, error) {
	clear(w.pending)
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
		next := uint64(0)
		if exists {
			next = current + 1
		}
		for j := range req.envs {
			position++
			env := &req.envs[j]
			env.Position = position
			env.StreamVersion = next + uint64(j)
			_, err := w.insert.ExecContext(w.ctx,
				int64(env.Position), env.ID[:], req.name, int64(env.StreamVersion),
				req.stream.Category, req.stream.OrgID, env.Type, env.OccurredAt.UnixMicro(),
				req.metadata[j], []byte(env.Data))
			if err != nil {
				w.abort()
				if conflict := w.constraintError(req, err); conflict != nil {
					return i, conflict
				}
				return -1, fmt.Errorf("insert event: %w", err)
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
	if _, err := w.commit.ExecContext(w.ctx); err != nil {
		w.abort()
		return -1, fmt.Errorf("commit: %w", err)
	}
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

// constraintError turns a uniqueness violation caused by req alone into
// its ErrConflict, or returns nil.
func (w *writer) constraintError(req *request, err error) error {
	var serr *sqlite.Error
	if !errors.As(err, &serr) || serr.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return nil
	}
	switch msg := serr.Error(); {
	case strings.Contains(msg, "events.id"):
		return fmt.Errorf("%w: an event id of this append is already in the log", eventstore.ErrConflict)
	case strings.Contains(msg, "events.stream"):
		// The cache disagreed with the file; only another writer of the
		// file (which the lock should exclude) could cause that.
		delete(w.versions, req.name)
		return fmt.Errorf("%w: %s has a version the store did not know", eventstore.ErrConflict, req.stream)
	}
	return nil
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
