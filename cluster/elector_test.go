package cluster_test

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/cluster"
)

// postgresURL is the test database (make test provisions it); without it
// the test fails, as every test that needs a database does.
func postgresURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("PALISADE_TEST_POSTGRES_URL")
	if url == "" {
		t.Fatal("PALISADE_TEST_POSTGRES_URL is not set: run `make test`, which provisions PostgreSQL")
	}
	return url
}

// replica is one elector competing for a role, counting how many of its
// works run at a time across replicas.
type replica struct {
	elector *cluster.Elector
	cancel  context.CancelFunc
	done    chan struct{}
	holding atomic.Bool
}

func startReplica(t *testing.T, url, namespace string, running *atomic.Int32, overlap *atomic.Bool) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{cancel: cancel, done: make(chan struct{})}
	r.elector = cluster.NewElector(url, namespace, slog.New(slog.DiscardHandler), cluster.WithTick(50*time.Millisecond))
	go func() {
		defer close(r.done)
		r.elector.Run(ctx, "relay", func(ctx context.Context) error {
			if running.Add(1) > 1 {
				overlap.Store(true)
			}
			r.holding.Store(true)
			<-ctx.Done()
			r.holding.Store(false)
			running.Add(-1)
			return nil
		})
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
	r.elector.Close()
}

func holder(rs []*replica) int {
	for i, r := range rs {
		if r.holding.Load() {
			return i
		}
	}
	return -1
}

func waitHolder(t *testing.T, rs []*replica, not int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if h := holder(rs); h >= 0 && h != not {
			return h
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no replica (other than %d) took the role", not)
	return -1
}

// TestOneHolderAndFailover: of three replicas competing for a role, one
// runs it; when that replica stops, or its database session is killed
// under it (as when the process dies), another takes the role over, and
// at no moment do two run it.
func TestOneHolderAndFailover(t *testing.T) {
	url := postgresURL(t)
	namespace := "test-" + uuid.NewString()
	var running atomic.Int32
	var overlap atomic.Bool
	rs := []*replica{
		startReplica(t, url, namespace, &running, &overlap),
		startReplica(t, url, namespace, &running, &overlap),
		startReplica(t, url, namespace, &running, &overlap),
	}
	first := waitHolder(t, rs, -1)
	// A few ticks: nobody else takes it while it is held.
	time.Sleep(300 * time.Millisecond)
	if h := holder(rs); h != first {
		t.Fatalf("holder moved from %d to %d while held", first, h)
	}

	// Stopping the holder hands the role over.
	rs[first].stop()
	second := waitHolder(t, rs, first)

	if overlap.Load() {
		t.Fatal("two replicas ran the role at the same time")
	}

	// Killing the holder's session from outside (the process died, or the
	// network went) hands it over too: the holder notices at its next
	// tick and stops. Until then both may run it (the package doc says
	// why that is harmless to the roles), so overlap is not checked here.
	terminate(t, url, cluster.LockKey(namespace, "relay"))
	third := waitHolder(t, rs, second)
	deadline := time.Now().Add(10 * time.Second)
	for rs[second].holding.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rs[second].holding.Load() {
		t.Fatal("the replica whose session was killed still runs the role")
	}
	if third == first {
		t.Fatal("a stopped replica took the role")
	}
}

// terminate ends the database session that holds the advisory lock key.
func terminate(t *testing.T, url string, key int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// An advisory lock on a bigint key shows as classid (high 32 bits) and
	// objid (low 32 bits) with objsubid 1.
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid`, key).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("terminated %d sessions holding the lock, want 1", n)
	}
}

// TestWorkErrorReleasesTheRole: a role whose work fails is released, so
// another replica may take it, and is competed for again.
func TestWorkErrorReleasesTheRole(t *testing.T) {
	url := postgresURL(t)
	namespace := "test-" + uuid.NewString()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := cluster.NewElector(url, namespace, slog.New(slog.DiscardHandler), cluster.WithTick(20*time.Millisecond))
	defer e.Close()
	var mu sync.Mutex
	runs := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx, "process", func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			runs++
			return context.DeadlineExceeded
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := runs
		mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if runs < 3 {
		t.Fatalf("the role ran %d times after failing, want it taken again", runs)
	}
	// Released: another session can take the lock at once.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	e.Close()
	var got bool
	if err := conn.QueryRow(context.Background(), `SELECT pg_try_advisory_lock($1)`, cluster.LockKey(namespace, "process")).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !got {
		t.Fatal("the failed role's lock is still held")
	}
}
