package esdb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
)

// bundle is one test's in-test server and a store on it.
type bundle struct {
	server *esdbtest.Server
	store  *Store
	ctx    context.Context
}

func setup(t *testing.T, opts ...Option) *bundle {
	t.Helper()
	srv := esdbtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &bundle{server: srv, store: mustOpen(t, srv.URL(), opts...), ctx: ctx}
}

func event(org, typ string, n int) eventstore.NewEvent {
	return eventstore.NewEvent{
		Type:     typ,
		Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "u", Kind: "user"}, SchemaVersion: 1},
		Data:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func (b *bundle) append(t *testing.T, st eventstore.StreamName, expected eventstore.ExpectedVersion, evs ...eventstore.NewEvent) eventstore.AppendResult {
	t.Helper()
	res, err := b.store.Append(b.ctx, st, expected, evs)
	if err != nil {
		t.Fatalf("Append(%s, %s): %v", st, expected, err)
	}
	return res
}

func (b *bundle) readAll(t *testing.T, after uint64, filter eventstore.Filter) []eventstore.Envelope {
	t.Helper()
	envs, err := b.store.ReadAll(b.ctx, after, filter, 0)
	if err != nil {
		t.Fatalf("ReadAll(%d): %v", after, err)
	}
	return envs
}

func (b *bundle) readStream(t *testing.T, st eventstore.StreamName) []eventstore.Envelope {
	t.Helper()
	envs, err := b.store.ReadStream(b.ctx, st, 0, 0)
	if err != nil {
		t.Fatalf("ReadStream(%s): %v", st, err)
	}
	return envs
}

func positions(envs []eventstore.Envelope) []uint64 {
	out := make([]uint64, len(envs))
	for i, e := range envs {
		out[i] = e.Position
	}
	return out
}

// collector runs Subscribe in the background and keeps what it delivers.
type collector struct {
	mu   sync.Mutex
	got  []eventstore.Envelope
	more chan struct{}
	done chan error
}

func (b *bundle) subscribe(t *testing.T, store *Store, after uint64, filter eventstore.Filter) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(b.ctx)
	c := &collector{more: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		c.done <- store.Subscribe(ctx, after, filter, func(env eventstore.Envelope) error {
			c.mu.Lock()
			c.got = append(c.got, env)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// waitFor waits until the collector has n events and returns them.
func (c *collector) waitFor(t *testing.T, n int) []eventstore.Envelope {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got := slices.Clone(c.got)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case err := <-c.done:
			t.Fatalf("Subscribe returned %v after %d of %d events", err, len(got), n)
		case <-deadline:
			t.Fatalf("subscriber has %d of %d events after 30s", len(got), n)
		}
	}
}

// logWatch is a slog handler that lets a test wait for a message.
type logWatch struct {
	mu       sync.Mutex
	messages []string
	changed  chan struct{}
}

func newLogWatch() *logWatch { return &logWatch{changed: make(chan struct{})} }

func (w *logWatch) logger() *slog.Logger { return slog.New(w) }

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }

func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, r.Message)
	close(w.changed)
	w.changed = make(chan struct{})
	return nil
}

// count returns how many messages contain text.
func (w *logWatch) count(text string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.messages {
		if strings.Contains(m, text) {
			n++
		}
	}
	return n
}

// waitFor waits until n messages contain text.
func (w *logWatch) waitFor(t *testing.T, text string, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		changed := w.changed
		w.mu.Unlock()
		if w.count(text) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %d log messages containing %q after 30s", n, text)
		}
	}
}

// freeAddr returns a local address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// quickDiscovery makes the client give up on discovery fast, as it would
// after its default ten attempts, so tests reach the adapter's recovery.
const quickDiscovery = "&maxDiscoverAttempts=1&discoveryInterval=10&gossipTimeout=1"
