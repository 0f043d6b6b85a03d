package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/palisadehq/palisade/eventstore"
)

// conn is one client of the server. The v4 client closes itself for good
// when node discovery fails, so the store replaces a conn whose client
// refuses calls (or whose server became unreachable) with a new one.
type conn struct {
	client *esdbclient.Client
	gone   chan struct{} // closed when the conn is replaced or the store closes
	once   sync.Once

	mu    sync.Mutex
	calls int           // ops running on client
	idle  chan struct{} // closed when calls falls to 0 after retireWhenIdle
}

func (s *Store) newConn() (*conn, error) {
	settings := s.settings
	client, err := esdbclient.NewClient(&settings)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	return &conn{client: client, gone: make(chan struct{})}, nil
}

// retire abandons the conn's calls in flight and closes its client.
func (c *conn) retire() {
	c.once.Do(func() {
		close(c.gone)
		_ = c.client.Close()
	})
}

// retireWhenIdle abandons the conn's calls in flight at once, but closes
// its client only once they have returned, or after retireGrace. The v4
// client's Close closes a channel that a call failing at that moment
// sends its error on (the race detector reports it; without it the send
// may panic): a call that ends on its own, as they do when the server
// went away, is let finish first. One stuck for good is released by the
// close after the grace, as before.
func (c *conn) retireWhenIdle() {
	c.once.Do(func() {
		close(c.gone)
		c.mu.Lock()
		var idle chan struct{}
		if c.calls > 0 {
			idle = make(chan struct{})
			c.idle = idle
		}
		c.mu.Unlock()
		if idle == nil {
			_ = c.client.Close()
			return
		}
		go func() {
			select {
			case <-idle:
			case <-time.After(retireGrace):
			}
			_ = c.client.Close()
		}()
	})
}

// retireGrace bounds how long a replaced client stays open for its calls
// in flight.
const retireGrace = 5 * time.Second

func (c *conn) begin() {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
}

func (c *conn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls--
	if c.calls == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// errConnLost: the client a call was using was replaced or closed under
// it, so the call's outcome is unknown.
var errConnLost = errors.New("connection to the event store was lost")

// scope returns ctx, also ended by Close.
func (s *Store) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// callKind says whether a call may be repeated when its outcome is
// unknown.
type callKind bool

const (
	readCall  callKind = true  // repeating it changes nothing
	writeCall callKind = false // repeated only when it surely never left
)

// do runs op with the current client, first waiting (bounded) for the
// server to be live if it is not known to be. After any sign that the
// server or connection is gone it replaces the client, so that the next
// attempt starts afresh, and tries again: a read always, a write only when
// the client refused it because it had closed itself, as then it never
// reached the server.
func (s *Store) do(ctx context.Context, kind callKind, op func(context.Context, *esdbclient.Client) error) error {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c, err := s.ready(ctx)
		if err != nil {
			return err
		}
		err = s.run(ctx, c, op)
		if err == nil {
			return nil
		}
		if s.closed.Load() {
			return eventstore.ErrClosed
		}
		if ctx.Err() != nil || !broken(err) {
			return err
		}
		s.replace(c, err)
		if attempt == attempts || (kind == writeCall && !isCode(err, esdbclient.ErrorCodeConnectionClosed)) {
			return err
		}
	}
}

// call is do for an op that produces a value. Each attempt builds its own
// value and hands it over under a lock only when it succeeds: an attempt
// that run abandoned (its connection lost, the caller gone) may still
// finish later, and must not write what the caller is reading.
func call[T any](ctx context.Context, s *Store, kind callKind, op func(context.Context, *esdbclient.Client) (T, error)) (T, error) {
	var (
		mu     sync.Mutex
		result T
	)
	err := s.do(ctx, kind, func(ctx context.Context, c *esdbclient.Client) error {
		v, err := op(ctx, c)
		if err != nil {
			return err
		}
		mu.Lock()
		result = v
		mu.Unlock()
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	mu.Lock()
	defer mu.Unlock()
	return result, nil
}

// run calls op on c's client in a goroutine of its own and waits for it,
// for ctx, or for c to be replaced. The v4 client can block forever or
// panic when it closes itself while calls queue for its connection (its
// connection requests go over an unbuffered channel that it stops reading,
// then closes); run lets the caller go in the first case and turns the
// second into errConnLost.
func (s *Store) run(ctx context.Context, c *conn, op func(context.Context, *esdbclient.Client) error) error {
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return eventstore.ErrClosed
	}
	s.inflight++
	s.mu.Unlock()

	c.begin()
	done := make(chan error, 1)
	go func() {
		defer s.leave()
		defer c.end()
		defer func() {
			if r := recover(); r != nil {
				select {
				case <-c.gone: // the client was closed under this call
					done <- fmt.Errorf("%w: %v", errConnLost, r)
				default:
					panic(r)
				}
			}
		}()
		done <- op(ctx, c.client)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.gone:
		select {
		case err := <-done: // it had finished after all
			return err
		default:
			return errConnLost
		}
	}
}

func (s *Store) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// replace puts a new client in place of c's, unless that was done
// already, and closes c's client.
func (s *Store) replace(c *conn, cause error) {
	s.mu.Lock()
	if s.conn != c || s.shut {
		s.mu.Unlock()
		return
	}
	next, err := s.newConn()
	if err != nil {
		s.mu.Unlock()
		s.cfg.logger.Error("event store: cannot make a new client", "server", s.server, "error", err)
		return
	}
	s.conn, s.live = next, false
	s.mu.Unlock()
	s.cfg.logger.Warn("event store: connection lost, using a new client", "server", s.server, "error", cause)
	c.retireWhenIdle()
}

// probe is one check that the server is live, shared by every call that
// waits for it.
type probe struct {
	done chan struct{}
	err  error
}

// ready returns the client to use, once the server has answered it.
func (s *Store) ready(ctx context.Context) (*conn, error) {
	for {
		s.mu.Lock()
		if s.shut {
			s.mu.Unlock()
			return nil, eventstore.ErrClosed
		}
		if s.live {
			c := s.conn
			s.mu.Unlock()
			return c, nil
		}
		p := s.probe
		if p == nil {
			p = &probe{done: make(chan struct{})}
			s.probe = p
			go s.waitLive(p)
		}
		s.mu.Unlock()
		select {
		case <-p.done:
			if p.err != nil {
				return nil, p.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// waitLive reads the newest event of $all until the server answers, for
// up to the startup wait, replacing the client when it has given up.
func (s *Store) waitLive(p *probe) {
	defer func() {
		s.mu.Lock()
		s.probe = nil
		s.mu.Unlock()
		close(p.done)
	}()
	ctx, cancel := context.WithTimeout(s.closing, s.cfg.startupWait)
	defer cancel()
	backoff := s.cfg.backoffMin
	var last error
	for {
		s.mu.Lock()
		c := s.conn
		s.mu.Unlock()
		err := s.run(ctx, c, ping)
		if err == nil {
			s.mu.Lock()
			if s.conn == c {
				s.live = true
			}
			s.mu.Unlock()
			return
		}
		if s.closed.Load() {
			p.err = eventstore.ErrClosed
			return
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if permanent(err) {
			p.err = fmt.Errorf("event store %s: %w", s.server, err)
			return
		}
		if broken(err) {
			s.replace(c, err)
		}
		if !sleep(ctx, backoff) {
			p.err = fmt.Errorf("%w: %s did not answer within %s: %v", ErrUnreachable, s.server, s.cfg.startupWait, last)
			return
		}
		backoff = min(2*backoff, s.cfg.backoffMax)
	}
}

// ping reads the newest event of $all: the server is live when it can
// serve a read.
func ping(ctx context.Context, c *esdbclient.Client) error {
	rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
	if err != nil {
		return err
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isCode reports whether err is the client's error with code.
func isCode(err error, code esdbclient.ErrorCode) bool {
	var e *esdbclient.Error
	return errors.As(err, &e) && e.Code() == code
}

// broken reports whether err says the client or its connection is no
// longer usable: the client closed itself, the server is unavailable, or
// the client was closed under the call.
func broken(err error) bool {
	return errors.Is(err, errConnLost) ||
		isCode(err, esdbclient.ErrorCodeConnectionClosed) ||
		isCode(err, esdbclient.ErrorUnavailable)
}

// permanent reports whether waiting cannot help: the server refuses the
// credentials or the access.
func permanent(err error) bool {
	return isCode(err, esdbclient.ErrorCodeUnauthenticated) ||
		isCode(err, esdbclient.ErrorCodeAccessDenied)
}
