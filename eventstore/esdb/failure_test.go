package esdb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
)

const replacedClient = "connection lost, using a new client"

func TestFirstCallWaitsForTheServer(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	logs := newLogWatch()
	s := mustOpen(t, "esdb://"+addr+"?tls=false"+quickDiscovery,
		WithLogger(logs.logger()), WithStartupWait(time.Minute), WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := eventstore.MustStreamName("bot", "org1", "b1")
	appended := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, st, eventstore.NoStream(), []eventstore.NewEvent{event("org1", "Created", 0)})
		appended <- err
	}()

	// The client fails its discovery and closes itself; the store makes a
	// new one, more than once, while the append waits.
	logs.waitFor(t, replacedClient, 2)
	select {
	case err := <-appended:
		t.Fatalf("Append returned %v before the server started", err)
	default:
	}
	esdbtest.New(t, esdbtest.WithAddress(addr))
	if err := <-appended; err != nil {
		t.Fatalf("Append once the server is up: %v", err)
	}
	got, err := s.ReadStream(ctx, st, 0, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadStream = %d events, %v; want the one appended", len(got), err)
	}
}

func TestWaitingIsBounded(t *testing.T) {
	t.Parallel()
	url := "esdb://" + freeAddr(t) + "?tls=false" + quickDiscovery

	t.Run("by the startup wait", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, url, WithStartupWait(300*time.Millisecond), WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
		if _, err := s.Head(context.Background()); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Head = %v, want ErrUnreachable", err)
		}
	})
	t.Run("by ctx", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, url, WithStartupWait(time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := s.ReadAll(ctx, 0, eventstore.Filter{}, 10); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadAll = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("by Close", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, url, WithStartupWait(time.Hour))
		done := make(chan error, 1)
		go func() {
			_, err := s.ReadStream(context.Background(), eventstore.MustStreamName("bot", "org1", "b"), 0, 0)
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, eventstore.ErrClosed) {
				t.Fatalf("ReadStream = %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ReadStream still waiting 10s after Close")
		}
	})
}

func TestSubscribeResumesAfterADrop(t *testing.T) {
	t.Parallel()
	for name, filter := range map[string]eventstore.Filter{"unfiltered": {}, "filtered": {OrgID: "org1"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond))
			st := eventstore.MustStreamName("bot", "org1", "b1")
			for i := range 5 {
				b.append(t, st, eventstore.Any(), event("org1", "History", i))
			}
			sub := b.subscribe(t, b.store, 0, filter)
			sub.waitFor(t, 5)
			b.server.DropSubscriptions()
			b.append(t, st, eventstore.Any(), event("org1", "Live", 0))
			b.server.DropSubscriptions()
			b.append(t, st, eventstore.Any(), event("org1", "Live", 1))
			got := sub.waitFor(t, 7)
			time.Sleep(50 * time.Millisecond)
			sub.mu.Lock()
			got = slices.Clone(sub.got)
			sub.mu.Unlock()
			want := b.readAll(t, 0, eventstore.Filter{})
			if !slices.Equal(positions(got), positions(want)) {
				t.Fatalf("delivered %v, want %v: each event once, in order", positions(got), positions(want))
			}
		})
	}
}

func TestRecoversFromAServerRestart(t *testing.T) {
	t.Parallel()
	logs := newLogWatch()
	srv := esdbtest.New(t)
	s := mustOpen(t, srv.URL()+quickDiscovery, WithLogger(logs.logger()), WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond))
	b := &bundle{server: srv, store: s, ctx: context.Background()}
	st := eventstore.MustStreamName("bot", "org1", "b1")
	for i := range 3 {
		b.append(t, st, eventstore.Any(), event("org1", "Before", i))
	}
	sub := b.subscribe(t, s, 0, eventstore.Filter{})
	sub.waitFor(t, 3)

	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := s.Append(ctx, st, eventstore.Any(), []eventstore.NewEvent{event("org1", "Down", 0)})
	cancel()
	if err == nil {
		t.Fatal("Append succeeded while the server was down")
	}
	logs.waitFor(t, "subscription dropped", 1)
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}

	for i := range 3 {
		b.append(t, st, eventstore.Any(), event("org1", "After", i))
	}
	got := sub.waitFor(t, 6)
	want := b.readAll(t, 0, eventstore.Filter{})
	if len(want) != 6 || !slices.Equal(positions(got), positions(want)) {
		t.Fatalf("delivered %v, log has %v", positions(got), positions(want))
	}
	if logs.count(replacedClient) == 0 {
		t.Fatal("the store kept the client that lost its server")
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("hides credentials in errors", func(t *testing.T) {
		_, err := Open(ctx, "esdb://admin:s3cret-pw@host:2113?tls=false&keepAliveInterval=x")
		if err == nil {
			t.Fatal("Open accepted a bad setting")
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("error shows the password: %v", err)
		}
	})
	t.Run("refuses bad options", func(t *testing.T) {
		for _, opt := range []Option{WithStartupWait(0), WithReconnectBackoff(time.Second, time.Millisecond), WithLogger(nil), WithNamespace("a.b")} {
			if _, err := Open(ctx, "esdb://localhost:2113?tls=false", opt); err == nil {
				t.Fatal("Open accepted a bad option")
			}
		}
	})
	t.Run("ended context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := Open(ctx, "esdb://localhost:2113?tls=false"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Open = %v, want context.Canceled", err)
		}
	})
	t.Run("discovery through gossip", func(t *testing.T) {
		srv := esdbtest.New(t)
		s := mustOpen(t, "esdb+discover://"+srv.Addr()+"?tls=false")
		st := eventstore.MustStreamName("bot", "org1", "b1")
		if _, err := s.Append(ctx, st, eventstore.NoStream(), []eventstore.NewEvent{event("org1", "A", 0)}); err != nil {
			t.Fatalf("Append: %v", err)
		}
	})
}

// TestClosedClientIsReplaced covers the v4 client's way of failing for
// good: once it has closed itself, every call is refused with
// ErrorCodeConnectionClosed before anything is sent. The store replaces
// it and the same call goes through.
func TestClosedClientIsReplaced(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := eventstore.MustStreamName("bot", "org1", "b1")
	b.append(t, st, eventstore.NoStream(), event("org1", "A", 0))
	b.store.mu.Lock()
	dead := b.store.conn
	b.store.mu.Unlock()
	_ = dead.client.Close() // as the client does itself after a failed discovery

	b.append(t, st, eventstore.Exact(0), event("org1", "B", 1))
	b.store.mu.Lock()
	replaced := b.store.conn != dead
	b.store.mu.Unlock()
	if !replaced {
		t.Fatal("the store still uses the closed client")
	}
	if got := b.readStream(t, st); len(got) != 2 {
		t.Fatalf("stream has %d events, want 2", len(got))
	}
}
