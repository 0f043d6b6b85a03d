package datasource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/palisadehq/palisade/netguard"
)

// ErrTimeout is wrapped by the error of a query or connection test that ran
// out of time: the executor's limit, the database's statement timeout it
// set, or the caller's deadline.
var ErrTimeout = errors.New("datasource: timed out")

// ErrClosed is returned after Executor.Close.
var ErrClosed = errors.New("datasource: executor is closed")

// DatabaseError is an error the database reported, with its own message.
type DatabaseError struct {
	Kind    Kind
	Code    string // SQLSTATE (postgres), error number (mysql), result code (sqlite)
	Message string
}

func (e *DatabaseError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("datasource: %s: %s", e.Kind, e.Message)
	}
	return fmt.Sprintf("datasource: %s: %s (%s)", e.Kind, e.Message, e.Code)
}

// Limits bound one query. A zero field takes the executor's default.
type Limits struct {
	Timeout  time.Duration
	MaxRows  int
	MaxBytes int64
}

// DefaultLimits are the defaults of an executor whose Options.Defaults
// leave a field zero.
var DefaultLimits = Limits{Timeout: 30 * time.Second, MaxRows: 10_000, MaxBytes: 10 << 20}

func (l Limits) or(d Limits) Limits {
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxRows <= 0 {
		l.MaxRows = d.MaxRows
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	return l
}

// Options configure an Executor.
type Options struct {
	// Network decides which addresses connections may reach; it is checked
	// on every address dialled, cancel requests included.
	Network netguard.Policy
	// SQLiteRoot is the directory whose <org> subdirectories SQLite paths
	// are relative to (PALISADE_SQLITE_ROOT; see Config.Org); empty
	// refuses every SQLite source.
	SQLiteRoot string
	// Defaults fill the zero fields of a query's Limits; its own zero
	// fields take DefaultLimits.
	Defaults Limits
	// MaxOpenConns bounds the open connections of each source's pool
	// (default 4).
	MaxOpenConns int
	// IdleTimeout closes connections, and whole pools, unused that long
	// (default 5 minutes).
	IdleTimeout time.Duration
	// ConnectTimeout bounds establishing one connection (default 10 s).
	ConnectTimeout time.Duration
}

// source is one data source's pool, for one engine.
type source interface {
	schema(ctx context.Context) (Schema, error)
	query(ctx context.Context, query string, l Limits, c *collector) error
	// dbError recognizes the engine's errors: a timeout it enforced
	// (wrapping ErrTimeout) or a *DatabaseError; nil if not its own.
	dbError(err error) error
	close() error
}

type pool struct {
	src      source
	lastUsed time.Time
	inUse    int
}

// Executor runs queries against tenants' databases behind the network and
// path walls, with the read-only, time and size controls of the package
// doc. It keeps one bounded pool per distinct Config. It is safe for
// concurrent use.
type Executor struct {
	opts Options

	mu     sync.Mutex
	pools  map[string]*pool // by Config.key
	closed bool
}

// New returns an Executor; it opens nothing until a source is used.
func New(opts Options) *Executor {
	opts.Defaults = opts.Defaults.or(DefaultLimits)
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = 4
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	return &Executor{opts: opts, pools: map[string]*pool{}}
}

// dialer is the one way out to the network for every driver.
func (e *Executor) dialer() *net.Dialer {
	return e.opts.Network.Dialer(&net.Dialer{Timeout: e.opts.ConnectTimeout, KeepAlive: 30 * time.Second})
}

// Test connects as cfg says and returns the schema the user can read.
func (e *Executor) Test(ctx context.Context, cfg Config) (Schema, error) {
	if err := cfg.Validate(); err != nil {
		return Schema{}, err
	}
	src, release, err := e.acquire(cfg)
	if err != nil {
		return Schema{}, err
	}
	defer release()
	runCtx, cancel := context.WithTimeout(ctx, e.opts.Defaults.Timeout)
	defer cancel()
	s, err := src.schema(runCtx)
	if err != nil {
		return Schema{}, e.classify(ctx, runCtx, src, cfg, "test", err)
	}
	return s, nil
}

// Query runs one query, already checked by the guard, under the limits:
// read-only, within the time limit (on the server too), wrapped in an
// outer LIMIT, and fetched only as far as the row and byte caps allow.
func (e *Executor) Query(ctx context.Context, cfg Config, query string, limits Limits) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if strings.TrimSpace(query) == "" {
		return Result{}, errors.New("datasource: query is empty")
	}
	l := limits.or(e.opts.Defaults)
	src, release, err := e.acquire(cfg)
	if err != nil {
		return Result{}, err
	}
	defer release()
	start := time.Now()
	// The server's own timeout is l.Timeout; the client's deadline is a
	// little later, so the server's clean error normally comes first and
	// the deadline only catches a server that does not answer.
	grace := min(max(l.Timeout/4, 250*time.Millisecond), 2*time.Second)
	runCtx, cancel := context.WithTimeout(ctx, l.Timeout+grace)
	defer cancel()
	c := newCollector(l)
	if err := src.query(runCtx, query, l, c); err != nil {
		return Result{}, e.classify(ctx, runCtx, src, cfg, "query", err)
	}
	return c.result(time.Since(start)), nil
}

// classify turns an error of a source into the package's typed errors.
func (e *Executor) classify(ctx, runCtx context.Context, src source, cfg Config, op string, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("datasource: %s cancelled: %w", op, context.Canceled)
	case ctx.Err() != nil || runCtx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("datasource: %s: %w", op, ErrTimeout)
	case errors.Is(err, netguard.ErrAlwaysRefused), errors.Is(err, netguard.ErrNotAllowed), errors.Is(err, netguard.ErrPathRefused):
		return redact(fmt.Errorf("datasource: %s: connection refused by policy: %w", op, err), cfg)
	}
	if typed := src.dbError(err); typed != nil {
		return redact(typed, cfg)
	}
	return redact(fmt.Errorf("datasource: %s: %w", op, err), cfg)
}

// redact replaces the password, should a driver ever quote it, keeping
// the error's chain for errors.Is and errors.As.
func redact(err error, cfg Config) error {
	pw := cfg.Password.Reveal()
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), pw, "[redacted]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// acquire returns the pool of cfg, creating it on first use, and a release
// function. Pools unused for IdleTimeout are closed on the way.
func (e *Executor) acquire(cfg Config) (source, func(), error) {
	key := cfg.key()
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, ErrClosed
	}
	for k, p := range e.pools {
		if k != key && p.inUse == 0 && now.Sub(p.lastUsed) > e.opts.IdleTimeout {
			p.src.close()
			delete(e.pools, k)
		}
	}
	p, ok := e.pools[key]
	if !ok {
		src, err := e.open(cfg)
		if err != nil {
			return nil, nil, redact(err, cfg)
		}
		p = &pool{src: src}
		e.pools[key] = p
	}
	p.inUse++
	p.lastUsed = now
	return p.src, func() {
		e.mu.Lock()
		p.inUse--
		p.lastUsed = time.Now()
		e.mu.Unlock()
	}, nil
}

func (e *Executor) open(cfg Config) (source, error) {
	switch cfg.Kind {
	case Postgres:
		return e.openPostgres(cfg)
	case MySQL:
		return e.openMySQL(cfg)
	case SQLite:
		return e.openSQLite(cfg)
	}
	return nil, fmt.Errorf("%w: kind %q", ErrInvalidConfig, cfg.Kind)
}

// Close closes every pool; queries running on them fail.
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	var errs []error
	for k, p := range e.pools {
		errs = append(errs, p.src.close())
		delete(e.pools, k)
	}
	return errors.Join(errs...)
}

// wrapLimit is the outer query: the database stops after one row more
// than the cap, which tells the executor the result was truncated. The
// newlines keep a trailing line comment from swallowing the parenthesis.
func wrapLimit(query string, maxRows int) string {
	query = strings.TrimRight(query, " \t\r\n;")
	return fmt.Sprintf("SELECT * FROM (\n%s\n) AS palisade_q LIMIT %d", query, maxRows+1)
}
