// Package cluster lets several Palisade replicas share one deployment: it
// elects, among the replicas, the one that runs each single-active role (a
// Kafka relay, a process), with PostgreSQL session advisory locks.
//
// A role is held by the replica whose database session holds the role's
// advisory lock. The lock is the database's, not ours: it ends with the
// session, so a replica that dies (SIGKILL, a lost network) releases every
// role it held as soon as PostgreSQL sees its connection close, and the
// next replica that tries takes it over. A holder checks its session at
// every [Elector] tick and stops the role's work when the session is gone,
// so two replicas run one role at the same time only for the moments it
// takes a holder to notice; the roles are written for that (the log's
// expected versions make a repeat harmless, and a role with a checkpoint
// fences it by term: a new holder's term refuses the old holder's next
// save, which stops it; see postgres.Store.BeginWorkerTerm).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultTick is how often a waiting replica tries to take a role, and how
// often a holder checks that its session (and so its locks) still lives.
const DefaultTick = time.Second

// Elector runs roles on the replica that holds them. All its roles share
// one database session, opened from the URL given to [NewElector]: if it
// is lost, every role stops, and the elector connects again and competes
// anew.
type Elector struct {
	url       string
	namespace string
	logger    *slog.Logger
	tick      time.Duration
	observe   func(role string, held bool)

	mu   sync.Mutex
	conn *pgx.Conn
	// lost is closed when the current session is found dead.
	lost chan struct{}
}

// Option configures an Elector.
type Option func(*Elector)

// WithTick sets how often roles are tried and the session checked
// (default [DefaultTick]).
func WithTick(d time.Duration) Option { return func(e *Elector) { e.tick = d } }

// WithObserver is told each time this replica takes or gives up a role
// (metrics, logs).
func WithObserver(f func(role string, held bool)) Option {
	return func(e *Elector) { e.observe = f }
}

// NewElector returns an elector that competes through the database at url.
// namespace separates deployments that share a database (the read models'
// schema, typically): roles of the same name in two namespaces are two
// locks.
func NewElector(url, namespace string, logger *slog.Logger, opts ...Option) *Elector {
	e := &Elector{url: url, namespace: namespace, logger: logger, tick: DefaultTick, observe: func(string, bool) {}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// role is one single-active piece of work.
type role struct {
	name string
	key  int64
	work func(ctx context.Context) error
}

// LockKey is the advisory lock key of a role in a namespace.
func LockKey(namespace, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("palisade/cluster:" + namespace + "\x00" + name))
	return int64(h.Sum64())
}

// Run runs work, under the role name, whenever this replica holds the
// role, until ctx ends: work gets a context that is cancelled when the role
// is lost (or ctx ends) and must return then. When work returns while the
// role is held (an error, say), the role is released, so that another
// replica may take it, and competed for again at the next tick. Run
// returns when ctx ends.
func (e *Elector) Run(ctx context.Context, name string, work func(ctx context.Context) error) {
	r := &role{name: name, key: LockKey(e.namespace, name), work: work}
	ticker := time.NewTicker(e.tick)
	defer ticker.Stop()
	for {
		conn, lost, err := e.session(ctx)
		if err == nil {
			var held bool
			if held, err = e.tryLock(ctx, conn, r.key); err == nil && held {
				e.hold(ctx, conn, lost, r)
			}
		}
		if err != nil && ctx.Err() == nil {
			e.logger.Warn("cluster: cannot compete for a role; trying again", "role", name, "err", err)
			e.drop(conn)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// hold runs the role's work while the lock is held, then releases it.
func (e *Elector) hold(ctx context.Context, conn *pgx.Conn, lost <-chan struct{}, r *role) {
	e.logger.Info("cluster: this replica took a role", "role", r.name)
	e.observe(r.name, true)
	defer e.observe(r.name, false)
	workCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.work(workCtx) }()
	var err error
	select {
	case err = <-done:
		cancel()
	case <-lost:
		cancel()
		<-done
		e.logger.Warn("cluster: the database session ended; this replica gave up a role", "role", r.name)
		return
	case <-ctx.Done():
		cancel()
		err = <-done
	}
	if err != nil && ctx.Err() == nil {
		e.logger.Error("cluster: a role's work stopped; releasing it", "role", r.name, "err", err)
	}
	e.unlock(conn, r.key)
}

// session returns the shared session, connecting first if there is none,
// and the channel closed when it is found dead.
func (e *Elector) session(ctx context.Context) (*pgx.Conn, <-chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		return e.conn, e.lost, nil
	}
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: connect: %w", err)
	}
	e.conn, e.lost = conn, make(chan struct{})
	go e.watch(conn, e.lost)
	return conn, e.lost, nil
}

// watch pings the session at every tick and declares it lost at the first
// failure: the locks it held may already belong to another replica.
func (e *Elector) watch(conn *pgx.Conn, lost chan struct{}) {
	ticker := time.NewTicker(e.tick)
	defer ticker.Stop()
	for range ticker.C {
		e.mu.Lock()
		current := e.conn == conn
		var err error
		if current {
			ctx, cancel := context.WithTimeout(context.Background(), e.tick)
			err = conn.Ping(ctx)
			cancel()
		}
		e.mu.Unlock()
		if !current {
			return
		}
		if err != nil {
			e.logger.Warn("cluster: the database session is gone", "err", err)
			e.drop(conn)
			return
		}
	}
}

// drop forgets conn (if it is still the session) and closes it, which
// ends its locks, and tells its holders.
func (e *Elector) drop(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	e.mu.Lock()
	if e.conn != conn {
		e.mu.Unlock()
		return
	}
	e.conn = nil
	close(e.lost)
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

func (e *Elector) tryLock(ctx context.Context, conn *pgx.Conn, key int64) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != conn {
		return false, errors.New("cluster: session replaced")
	}
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&held); err != nil {
		return false, fmt.Errorf("cluster: try lock: %w", err)
	}
	return held, nil
}

func (e *Elector) unlock(conn *pgx.Conn, key int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != conn {
		return // the session, and its locks, are gone already
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
		e.logger.Warn("cluster: release a role", "err", err)
	}
}

// Close ends the session, releasing every role this replica held. Call it
// after every Run has returned.
func (e *Elector) Close() {
	e.mu.Lock()
	conn := e.conn
	e.mu.Unlock()
	e.drop(conn)
}
