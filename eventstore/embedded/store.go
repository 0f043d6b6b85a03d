package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/palisadehq/palisade/eventstore"
)

// ErrLocked: another Store has the file open.
var ErrLocked = errors.New("event store file is open in another Store")

var _ eventstore.Store = (*Store)(nil)

// Store is the event log in one SQLite file. It is safe for concurrent
// use. Open it with [Open]; Close it to stop the writer and release the
// file.
type Store struct {
	path  string
	cfg   config
	lock  *os.File
	logID string // see LogID

	wdb *sql.DB // one connection, owned by the writer goroutine
	rdb *sql.DB // the read pool

	readStream     *sql.Stmt
	loadCheckpoint *sql.Stmt
	queries        queryCache

	// requests feeds the writer. sendMu orders sends against Close:
	// Append sends under RLock after checking stopping; Close sets
	// stopping and closes requests under Lock.
	requests   chan *request
	sendMu     sync.RWMutex
	stopping   bool
	writerDone chan struct{}
	answered   atomic.Uint64 // batches the writer has answered

	closed    atomic.Bool // refuses reads from the start of Close
	closeOnce sync.Once
	closeErr  error

	// mu guards what the writer publishes after each commit.
	mu   sync.RWMutex
	head uint64
	tail tail
	wake chan struct{} // closed and replaced after each commit, and at Close
	shut bool
}

// config holds the tunables; Open uses defaultConfig, tests shrink them
// to reach edge cases.
type config struct {
	// maxBatchRequests and maxBatchEvents bound one group commit. A single
	// request larger than maxBatchEvents still commits, alone.
	maxBatchRequests int
	maxBatchEvents   int
	// gatherDelay is the longest the writer waits for the callers it
	// expects back before committing a batch (see writer.gather).
	gatherDelay time.Duration
	// checkpointEvents is how many committed events make the writer copy
	// the WAL back into the database once it is idle, or
	// 4*checkpointEvents even if it is not. backstopCheckpointPages is
	// SQLite's own autocheckpoint, in case events are unusually large.
	checkpointEvents        int
	backstopCheckpointPages int
	// tailSize is how many recent events stay in memory for subscribers
	// and ReadAll; 0 sends every read to the file.
	tailSize int
	// maxCachedStreams bounds the writer's stream-version cache.
	maxCachedStreams int
	readConns        int
	// hold, if set, keeps the writer from starting until it is closed,
	// so that tests can queue requests that must share one batch.
	hold chan struct{}
}

func defaultConfig() config {
	return config{
		maxBatchRequests:        512,
		maxBatchEvents:          4096,
		gatherDelay:             time.Millisecond,
		checkpointEvents:        2000,
		backstopCheckpointPages: 10000,
		tailSize:                8192,
		maxCachedStreams:        100_000,
		readConns:               max(4, 2*runtime.GOMAXPROCS(0)),
	}
}

const (
	// subscribeBatch is how many events a subscriber reads at a time.
	subscribeBatch = 512
	busyTimeout    = 10 * time.Second
	// walSizeLimit is what the WAL file is cut back to when it restarts
	// after a burst made it grow.
	walSizeLimit = 64 << 20
)

// Open opens the store in the SQLite file at path, creating the file and
// its schema if missing. The directory must exist. path is a plain file
// name: not ":memory:", not a "file:" URI, and without '?'.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, defaultConfig())
}

func open(ctx context.Context, path string, cfg config) (_ *Store, err error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open event store: %q is not a plain file path", path)
	}
	s := &Store{
		path:       path,
		cfg:        cfg,
		requests:   make(chan *request, cfg.maxBatchRequests),
		writerDone: make(chan struct{}),
		wake:       make(chan struct{}),
		tail:       newTail(cfg.tailSize),
	}
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	if s.lock, err = lockFile(path + ".lock"); err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	if err := makePrivate(path); err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}

	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds())
	// wal_autocheckpoint is only the backstop: the writer checkpoints on
	// its own after answering a batch (see writer.maybeCheckpoint), so
	// that appends rarely wait for one.
	s.wdb, err = sql.Open("sqlite", path+"?"+busy+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"+
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", cfg.backstopCheckpointPages)+
		fmt.Sprintf("&_pragma=journal_size_limit(%d)", walSizeLimit))
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open event store %s: read journal mode: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		conn.Close()
		return nil, fmt.Errorf("open event store %s: journal mode is %q, want wal", path, mode)
	}
	if err := migrate(ctx, conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	if err := conn.QueryRowContext(ctx, sqlLogID).Scan(&s.logID); err != nil {
		conn.Close()
		return nil, fmt.Errorf("open event store %s: read the log identity: %w", path, err)
	}
	w, err := newWriter(ctx, s, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open event store %s: %w", path, err)
	}
	s.head = w.head
	s.tail.reset(s.head)

	s.rdb, err = sql.Open("sqlite", path+"?"+busy+"&_pragma=query_only(1)")
	if err != nil {
		w.close()
		return nil, fmt.Errorf("open event store %s: read pool: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(cfg.readConns)
	s.rdb.SetMaxIdleConns(cfg.readConns)
	s.queries = queryCache{db: s.rdb, stmts: map[string]*sql.Stmt{}}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&s.readStream, sqlReadStream},
		{&s.loadCheckpoint, sqlLoadCheckpoint},
	} {
		if *p.stmt, err = s.rdb.PrepareContext(ctx, p.query); err != nil {
			w.close()
			return nil, fmt.Errorf("open event store %s: prepare %q: %w", path, p.query, err)
		}
	}

	go w.run()
	return s, nil
}

// release closes whatever open got to, in reverse order.
func (s *Store) release() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.readStream, s.loadCheckpoint} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	errs = append(errs, s.queries.close())
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.lock != nil {
		errs = append(errs, unlockFile(s.lock))
	}
	return errors.Join(errs...)
}

// Close stops accepting appends, commits those already queued, wakes every
// subscriber (they return ErrClosed), and closes the file. Later calls
// return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.sendMu.Lock()
		s.stopping = true
		close(s.requests)
		s.sendMu.Unlock()
		<-s.writerDone

		s.mu.Lock()
		s.shut = true
		close(s.wake)
		s.mu.Unlock()

		if err := s.release(); err != nil {
			s.closeErr = fmt.Errorf("close event store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// LogID returns the identity of the log: a random id written into the file
// when it was created (or first opened by a build that knew identities),
// and never changed. Copies of the file share it; another file has another.
// Read models record it to tell which log they were built from.
func (s *Store) LogID(ctx context.Context) (string, error) {
	if s.closed.Load() {
		return "", eventstore.ErrClosed
	}
	return s.logID, nil
}

// Head returns the position of the last committed event.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head, nil
}

// Append implements [eventstore.Store.Append]. It returns once the events
// are durable. If ctx ends while the append waits in the queue, the append
// is dropped; if it ends while the append is being committed, Append
// returns ctx's error and the events may or may not have been written.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	req, err := newAppendRequest(ctx, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if err := s.submit(ctx, req); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	return req.result, nil
}

// AppendIf implements [eventstore.Store.AppendIf]. The condition is
// checked by the single writer inside the transaction that appends, after
// the appends queued before it in the same group commit: nothing can land
// on the condition stream between the check and the append.
func (s *Store) AppendIf(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, cond eventstore.Condition, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if err := eventstore.ValidateCondition(stream, cond); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	req, err := newAppendRequest(ctx, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	req.cond, req.condName = cond, cond.Stream.String()
	if err := s.submit(ctx, req); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	return req.result, nil
}

// SaveCheckpoint durably records position under name, through the writer
// (so it is group-committed with appends).
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position uint64) error {
	if name == "" {
		return errors.New("save checkpoint: empty name")
	}
	req := &request{ctx: ctx, checkpoint: name, position: position, done: make(chan error, 1)}
	if err := s.submit(ctx, req); err != nil {
		return fmt.Errorf("save checkpoint %q: %w", name, err)
	}
	return nil
}

// LoadCheckpoint returns the position saved under name, or 0 if none was.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("load checkpoint %q: %w", name, eventstore.ErrClosed)
	}
	var position int64
	err := s.loadCheckpoint.QueryRowContext(ctx, name).Scan(&position)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("load checkpoint %q: %w", name, s.readError(ctx, err))
	}
	return uint64(position), nil
}

// Checkpoint returns name's checkpoint as an [eventstore.Checkpoint], for
// the relay.
func (s *Store) Checkpoint(name string) eventstore.Checkpoint {
	return checkpoint{store: s, name: name}
}

type checkpoint struct {
	store *Store
	name  string
}

func (c checkpoint) Load(ctx context.Context) (uint64, error) {
	return c.store.LoadCheckpoint(ctx, c.name)
}

func (c checkpoint) Save(ctx context.Context, position uint64) error {
	return c.store.SaveCheckpoint(ctx, c.name, position)
}

// submit hands req to the writer and waits for its outcome.
func (s *Store) submit(ctx context.Context, req *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req.epoch = s.answered.Load()
	s.sendMu.RLock()
	if s.stopping {
		s.sendMu.RUnlock()
		return eventstore.ErrClosed
	}
	select {
	case s.requests <- req:
		s.sendMu.RUnlock()
	case <-ctx.Done():
		s.sendMu.RUnlock()
		return ctx.Err()
	}
	// The writer answers every request it took, also when closing, so
	// this waits at most one commit unless ctx ends first.
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReadStream implements [eventstore.Store.ReadStream]. A limit of 0 or
// less reads to the end of the stream.
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamName, from uint64, limit int) ([]eventstore.Envelope, error) {
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("read stream %s: %w", stream, eventstore.ErrClosed)
	}
	if from > maxInt64 {
		return nil, nil
	}
	rows, err := s.readStream.QueryContext(ctx, stream.String(), int64(from), sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, s.readError(ctx, err))
	}
	envs, err := scanEnvelopes(rows, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, s.readError(ctx, err))
	}
	return envs, nil
}

// ReadAll implements [eventstore.Store.ReadAll]. A limit of 0 or less
// reads to the head.
func (s *Store) ReadAll(ctx context.Context, after uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("read all: %w", eventstore.ErrClosed)
	}
	s.mu.RLock()
	head := s.head
	s.mu.RUnlock()
	if after >= head {
		return nil, nil
	}
	envs, _, err := s.readRange(ctx, after, head, filter, limit)
	if err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	return envs, nil
}

// readRange returns up to limit events that pass filter with positions in
// (after, upTo], and the last position it looked at: upTo when it found
// fewer than limit. upTo must not exceed the published head.
func (s *Store) readRange(ctx context.Context, after, upTo uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, uint64, error) {
	s.mu.RLock()
	if s.tail.covers(after) {
		envs, scanned := s.tail.read(after, upTo, filter, limit)
		s.mu.RUnlock()
		return envs, scanned, nil
	}
	s.mu.RUnlock()

	query, args := readAllQuery(after, upTo, filter, limit)
	rows, err := s.queries.query(ctx, query, args)
	if err != nil {
		return nil, 0, s.readError(ctx, err)
	}
	envs, err := scanEnvelopes(rows, max(limit, 0))
	if err != nil {
		return nil, 0, s.readError(ctx, err)
	}
	scanned := upTo
	if limit > 0 && len(envs) == limit {
		scanned = envs[len(envs)-1].Position
	}
	return envs, scanned, nil
}

// readError says why a read failed: the store closed under it, its
// context ended, or the file failed.
func (s *Store) readError(ctx context.Context, err error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	return err
}

const maxInt64 = 1<<63 - 1

// sqlLimit turns a port limit into SQLite's, where -1 means none.
func sqlLimit(limit int) int64 {
	if limit <= 0 {
		return -1
	}
	return int64(limit)
}

// readAllQuery builds the query for events in (after, upTo] that pass
// filter. Its text depends only on the filter's shape, so the prepared
// statement cache stays small.
func readAllQuery(after, upTo uint64, filter eventstore.Filter, limit int) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + envelopeColumns + ` FROM events WHERE position > ? AND position <= ?`)
	args := []any{int64(min(after, maxInt64)), int64(min(upTo, maxInt64))}
	if filter.OrgID != "" {
		b.WriteString(` AND org_id = ?`)
		args = append(args, filter.OrgID)
	}
	in := func(column string, values []string) {
		if len(values) == 0 {
			return
		}
		b.WriteString(` AND ` + column + ` IN (?` + strings.Repeat(`, ?`, len(values)-1) + `)`)
		for _, v := range values {
			args = append(args, v)
		}
	}
	in("category", filter.Categories)
	in("type", filter.Types)
	b.WriteString(` ORDER BY position LIMIT ?`)
	args = append(args, sqlLimit(limit))
	return b.String(), args
}

// queryCache keeps prepared read statements by query text, up to a bound
// (filters with unusually many categories or types are prepared per call).
type queryCache struct {
	db     *sql.DB
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	closed bool
}

const maxCachedQueries = 64

func (c *queryCache) query(ctx context.Context, query string, args []any) (*sql.Rows, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, eventstore.ErrClosed
	}
	stmt, ok := c.stmts[query]
	if !ok && len(c.stmts) < maxCachedQueries {
		var err error
		if stmt, err = c.db.PrepareContext(ctx, query); err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("prepare read: %w", err)
		}
		c.stmts[query] = stmt
		ok = true
	}
	c.mu.Unlock()
	if !ok {
		return c.db.QueryContext(ctx, query, args...)
	}
	return stmt.QueryContext(ctx, args...)
}

func (c *queryCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, stmt := range c.stmts {
		errs = append(errs, stmt.Close())
	}
	c.stmts = nil
	c.closed = true
	return errors.Join(errs...)
}

// scanEnvelopes reads rows of envelopeColumns and closes rows. Reading the
// log is most of what a replay or an audit verification costs, so a row
// is decoded with as few allocations as it can: the metadata by
// eventstore.MetadataDecoder instead of encoding/json (sharing the strings
// that repeat, such as the organization and the actor), the stream name
// parsed once per run of equal names, and each type's string shared by
// the events of that type.
func scanEnvelopes(rows *sql.Rows, sizeHint int) ([]eventstore.Envelope, error) {
	defer rows.Close()
	envs := make([]eventstore.Envelope, 0, min(sizeHint, 1024))
	var (
		position, version, occurred int64
		id, name, typ, metadata     sql.RawBytes
		lastName                    []byte
		stream                      eventstore.StreamName
		types                       = map[string]string{}
		meta                        eventstore.MetadataDecoder
	)
	for rows.Next() {
		var env eventstore.Envelope
		if err := rows.Scan(&position, &id, &name, &version, &typ, &occurred, &metadata, &env.Data); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		if lastName == nil || string(name) != string(lastName) {
			var err error
			if stream, err = eventstore.ParseStreamName(string(name)); err != nil {
				return nil, fmt.Errorf("event %d: %w", position, err)
			}
			lastName = append(lastName[:0], name...)
		}
		t, ok := types[string(typ)]
		if !ok {
			t = string(typ)
			types[t] = t
		}
		env.Type = t
		if err := meta.Decode(metadata, &env.Metadata); err != nil {
			return nil, fmt.Errorf("event %d metadata: %w", position, err)
		}
		if len(id) != len(uuid.UUID{}) {
			return nil, fmt.Errorf("event %d: id has %d bytes", position, len(id))
		}
		copy(env.ID[:], id)
		env.Stream = stream
		env.StreamVersion = uint64(version)
		env.Position = uint64(position)
		env.OccurredAt = time.UnixMicro(occurred).UTC()
		envs = append(envs, env)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return envs, nil
}

// makePrivate creates the log file with mode 0600 before SQLite opens it,
// and narrows the files of an earlier run to 0600. SQLite creates a
// database file 0644 (less the umask) and gives its -wal and -shm files the
// database file's mode, so a log created here keeps all three private to
// the owner whatever the process umask.
func makePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", filepath.Base(p), err)
		}
	}
	return nil
}

// ReadsFromAnyPosition says that ReadAll may start after any number, not
// only after the position of an event (positions are 1, 2, 3 … without
// gaps), so that a reader may split the log into ranges and read them at
// once (chain.SeekableLog).
func (s *Store) ReadsFromAnyPosition() {}
