package esdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/eventstore/storetest"
)

// realServer returns the KurrentDB the tests may use, if any.
func realServer() string { return os.Getenv("PALISADE_TEST_ESDB_URL") }

// TestContract runs the port's contract suite against a real KurrentDB
// when PALISADE_TEST_ESDB_URL names one (each store in a namespace of its
// own, so that every test sees an empty store), and otherwise against the
// in-test server, one per store.
func TestContract(t *testing.T) {
	t.Parallel()
	if url := realServer(); url != "" {
		t.Logf("contract suite against KurrentDB at %s", redact(url))
		storetest.RunWith(t, storetest.Options{SparsePositions: true}, func(t *testing.T) eventstore.Store {
			return mustOpen(t, url, WithNamespace(uniqueNamespace(t)), withLogStart(logEnd(t, url)))
		})
		return
	}
	storetest.RunWith(t, storetest.Options{SparsePositions: true}, func(t *testing.T) eventstore.Store {
		return mustOpen(t, esdbtest.New(t).URL())
	})
}

// TestContractInANamespace runs the suite the way it runs against a real
// KurrentDB, where every store has a namespace of its own on a server that
// others write to: here another namespace's store appends beside each
// store under test, so that the store's events are interleaved with
// events it must not see.
func TestContractInANamespace(t *testing.T) {
	t.Parallel()
	storetest.RunWith(t, storetest.Options{SparsePositions: true}, func(t *testing.T) eventstore.Store {
		srv := esdbtest.New(t)
		neighbour := mustOpen(t, srv.URL(), WithNamespace("neighbour"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			st := eventstore.MustStreamName("bot", "org1", "next-door")
			for i := range 20 {
				e := eventstore.NewEvent{Type: "Noise", Metadata: eventstore.Metadata{OrgID: "org1"}, Data: json.RawMessage(`{}`)}
				if _, err := neighbour.Append(ctx, st, eventstore.Any(), []eventstore.NewEvent{e}); err != nil {
					return // the test is over
				}
				if i%2 == 0 {
					srv.AppendSystemEvent("$stats-127.0.0.1:2113", "$statsCollected")
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		// The log starts after the neighbour's first events, as a real
		// server's starts after earlier runs'.
		for srv.Events() < 3 {
			time.Sleep(time.Millisecond)
		}
		return mustOpen(t, srv.URL(), WithNamespace(uniqueNamespace(t)), withLogStart(logEnd(t, srv.URL())))
	})
}

// logEnd returns the position of the newest record on the server at url,
// whatever its stream.
func logEnd(t testing.TB, url string) uint64 {
	t.Helper()
	s := mustOpen(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var end uint64
	err := s.do(ctx, readCall, func(ctx context.Context, c *esdbclient.Client) error {
		rs, err := c.ReadAll(ctx, esdbclient.ReadAllOptions{Direction: esdbclient.Backwards, From: esdbclient.End{}}, 1)
		if err != nil {
			return err
		}
		defer rs.Close()
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		end = ev.OriginalEvent().Position.Commit
		return nil
	})
	if err != nil {
		t.Fatalf("end of the log at %s: %v", redact(url), err)
	}
	return end
}

// mustOpen opens a store and closes it when the test ends.
func mustOpen(t testing.TB, url string, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithLogger(discard())}, opts...)
	s, err := Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", redact(url), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close %s: %v", redact(url), err)
		}
	})
	return s
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func uniqueNamespace(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("namespace: %v", err)
	}
	return "t" + hex.EncodeToString(b[:])
}
