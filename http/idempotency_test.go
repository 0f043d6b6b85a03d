package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
)

// fakeClaims is an IdempotencyClaims shared by the "replicas" of a test,
// on a clock the test moves.
type fakeClaims struct {
	mu     sync.Mutex
	now    time.Time
	rows   map[string]fakeClaim
	calls  int
	failed error
	// renewed receives (when there is room) each claim by its own holder.
	renewed chan struct{}
}

type fakeClaim struct {
	fingerprint [32]byte
	holder      string
	expires     time.Time
}

func newFakeClaims() *fakeClaims {
	return &fakeClaims{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), rows: map[string]fakeClaim{}, renewed: make(chan struct{}, 1)}
}

func (f *fakeClaims) Claim(_ context.Context, orgID string, key, fingerprint [32]byte, holder string, lease time.Duration) (bool, [32]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failed != nil {
		return false, [32]byte{}, f.failed
	}
	id := orgID + "/" + string(key[:])
	c, ok := f.rows[id]
	if ok && c.holder != holder && f.now.Before(c.expires) {
		return false, c.fingerprint, nil
	}
	if ok && c.holder == holder {
		select {
		case f.renewed <- struct{}{}:
		default:
		}
	}
	f.rows[id] = fakeClaim{fingerprint: fingerprint, holder: holder, expires: f.now.Add(lease)}
	return true, [32]byte{}, nil
}

func (f *fakeClaims) Release(_ context.Context, orgID string, key [32]byte, holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := orgID + "/" + string(key[:])
	if c, ok := f.rows[id]; ok && c.holder == holder {
		delete(f.rows, id)
	}
	return nil
}

func (f *fakeClaims) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeClaims) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rows)
}

func (f *fakeClaims) claimCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeRecords is the log's record of responses, shared by the replicas.
type fakeRecords struct {
	mu   sync.Mutex
	recs map[string]*events.IdempotentResponseRecorded
}

func recordID(who access.Principal, key string) string {
	return who.OrgID + "/" + string(who.Kind) + "/" + who.Subject + "/" + key
}

func (f *fakeRecords) RecordedResponse(_ context.Context, who access.Principal, key string) (*events.IdempotentResponseRecorded, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.recs[recordID(who, key)]
	return rec, ok, nil
}

func (f *fakeRecords) SameBody(_ context.Context, _ access.Principal, rec *events.IdempotentResponseRecorded, bodySHA256 string) (bool, error) {
	return rec.BodySHA256 == bodySHA256, nil
}

func (f *fakeRecords) RecordResponse(_ context.Context, who access.Principal, key string, rec *events.IdempotentResponseRecorded) (*events.IdempotentResponseRecorded, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if first, ok := f.recs[recordID(who, key)]; ok {
		return first, false, nil
	}
	f.recs[recordID(who, key)] = rec
	return rec, true, nil
}

// replicas are servers sharing one claim store and one record of
// responses, each in front of the same command handler.
type replicas struct {
	claims  *fakeClaims
	records *fakeRecords
	servers []http.Handler

	mu   sync.Mutex
	runs int
	// gate, when set, holds the handler until it is closed; entered
	// receives once per run that reached it.
	gate    chan struct{}
	entered chan struct{}
	// status is what the handler answers (0: 201).
	status int
}

func newReplicas(t *testing.T, n int) *replicas {
	t.Helper()
	return newReplicasWithLease(t, n, 0)
}

func newReplicasWithLease(t *testing.T, n int, lease time.Duration) *replicas {
	t.Helper()
	rs := &replicas{claims: newFakeClaims(), records: &fakeRecords{recs: map[string]*events.IdempotentResponseRecorded{}}, entered: make(chan struct{}, 8)}
	for range n {
		s := NewServer(Deps{
			Routes:            AllRoutes(),
			App:               Application{Commands: Commands{Idempotency: rs.records}},
			Registry:          prometheus.NewRegistry(),
			Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
			IdempotencyClaims: rs.claims,
			IdempotencyLease:  lease,
		})
		rs.servers = append(rs.servers, s.idempotent(http.HandlerFunc(rs.command)))
	}
	return rs
}

func (rs *replicas) command(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	rs.runs++
	n, gate, status := rs.runs, rs.gate, rs.status
	rs.mu.Unlock()
	rs.entered <- struct{}{}
	if gate != nil {
		<-gate
	}
	if status == 0 {
		status = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"run\":%d}\n", n)
}

func (rs *replicas) runCount() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.runs
}

var alice = access.Principal{OrgID: "org-a", Kind: access.KindUser, Subject: "alice", Permissions: access.PermissionSet(1)}

// send posts body under key to replica i as who.
func (rs *replicas) send(i int, who access.Principal, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/bots", strings.NewReader(body))
	req.Header.Set(headerIdempotencyKey, key)
	req = req.WithContext(context.WithValue(req.Context(), principalKey, who))
	rec := httptest.NewRecorder()
	rs.servers[i].ServeHTTP(rec, req)
	return rec
}

func requireProblem(t *testing.T, label string, rec *httptest.ResponseRecorder, status int, kind string) {
	t.Helper()
	if rec.Code != status || !strings.Contains(rec.Body.String(), kind) {
		t.Fatalf("%s = %d %s, want %d %s", label, rec.Code, rec.Body, status, kind)
	}
}

func requireReplayOf(t *testing.T, label string, got, first *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != first.Code || !bytes.Equal(got.Body.Bytes(), first.Body.Bytes()) || got.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%s = %d %s (replayed %q), want the replay of %d %s", label, got.Code, got.Body,
			got.Header().Get("Idempotent-Replayed"), first.Code, first.Body)
	}
}

// TestSharedClaimAcrossReplicas: while one replica runs a key, another
// answers 409 for the same request and 422 for a different one; once it
// is done, both replay its response and the command ran once.
func TestSharedClaimAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := newReplicas(t, 2)
	gate := make(chan struct{})
	rs.gate = gate
	firstDone := make(chan *httptest.ResponseRecorder)
	go func() { firstDone <- rs.send(0, alice, "k-1", `{"name":"once"}`) }()
	<-rs.entered

	requireProblem(t, "same request on the other replica", rs.send(1, alice, "k-1", `{"name":"once"}`), http.StatusConflict, "idempotency-key-in-use")
	requireProblem(t, "another request on the other replica", rs.send(1, alice, "k-1", `{"name":"twice"}`), http.StatusUnprocessableEntity, "idempotency-key-reused")
	// The same key is another principal's own.
	bob := alice
	bob.Subject = "bob"
	rs.mu.Lock()
	rs.gate = nil
	rs.mu.Unlock()
	if rec := rs.send(1, bob, "k-1", `{"name":"once"}`); rec.Code != http.StatusCreated {
		t.Fatalf("bob's own k-1 = %d %s, want 201", rec.Code, rec.Body)
	}
	<-rs.entered

	close(gate)
	first := <-firstDone
	if first.Code != http.StatusCreated {
		t.Fatalf("first = %d %s", first.Code, first.Body)
	}
	requireReplayOf(t, "the other replica afterwards", rs.send(1, alice, "k-1", `{"name":"once"}`), first)
	requireReplayOf(t, "the first replica afterwards", rs.send(0, alice, "k-1", `{"name":"once"}`), first)
	requireProblem(t, "another request afterwards", rs.send(1, alice, "k-1", `{"name":"twice"}`), http.StatusUnprocessableEntity, "idempotency-key-reused")
	if n := rs.runCount(); n != 2 {
		t.Fatalf("the command ran %d times, want 2 (alice's once, bob's once)", n)
	}
	if n := rs.claims.held(); n != 0 {
		t.Fatalf("%d claims still held after every request ended", n)
	}
}

// TestSharedClaimExpiredLeaseIsTakenOver: a claim whose holder stopped
// renewing it (a replica that died mid-request) blocks its key until its
// lease ends, then the retry runs; the old holder's late release leaves
// the new claim alone.
func TestSharedClaimExpiredLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	rs := newReplicas(t, 2)
	gate := make(chan struct{})
	rs.gate = gate
	firstDone := make(chan *httptest.ResponseRecorder)
	go func() { firstDone <- rs.send(0, alice, "k-2", `{"name":"once"}`) }()
	<-rs.entered

	requireProblem(t, "within the lease", rs.send(1, alice, "k-2", `{"name":"once"}`), http.StatusConflict, "idempotency-key-in-use")
	rs.claims.advance(defaultClaimLease + time.Second)
	second := make(chan *httptest.ResponseRecorder)
	go func() { second <- rs.send(1, alice, "k-2", `{"name":"once"}`) }()
	<-rs.entered // the retry runs: the lease ended
	close(gate)
	if rec := <-firstDone; rec.Code != http.StatusCreated {
		t.Fatalf("first = %d %s", rec.Code, rec.Body)
	}
	if rec := <-second; rec.Code != http.StatusCreated {
		t.Fatalf("retry after the lease = %d %s", rec.Code, rec.Body)
	}
	if n := rs.runCount(); n != 2 {
		t.Fatalf("ran %d times, want 2", n)
	}
	if n := rs.claims.held(); n != 0 {
		t.Fatalf("%d claims held after both ended", n)
	}
}

// TestSharedClaimReleasedOnFailure: a 5xx or a 429 is not an answer to
// keep: the claim is released with it, so the retry runs on any replica.
func TestSharedClaimReleasedOnFailure(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			rs := newReplicas(t, 2)
			rs.status = status
			if rec := rs.send(0, alice, "k-3", `{}`); rec.Code != status {
				t.Fatalf("first = %d %s, want %d", rec.Code, rec.Body, status)
			}
			<-rs.entered
			if n := rs.claims.held(); n != 0 {
				t.Fatalf("%d claims held after a %d", n, status)
			}
			rs.mu.Lock()
			rs.status = 0
			rs.mu.Unlock()
			if rec := rs.send(1, alice, "k-3", `{}`); rec.Code != http.StatusCreated {
				t.Fatalf("retry on the other replica = %d %s, want 201", rec.Code, rec.Body)
			}
			<-rs.entered
			if n := rs.runCount(); n != 2 {
				t.Fatalf("ran %d times, want 2", n)
			}
		})
	}
}

// TestSharedClaimOnlyForFreshKeys: a key this replica already knows is
// answered from its cache without asking the shared claims, and a key
// without an Idempotency-Key never asks them.
func TestSharedClaimOnlyForFreshKeys(t *testing.T) {
	t.Parallel()
	rs := newReplicas(t, 1)
	first := rs.send(0, alice, "k-4", `{}`)
	<-rs.entered
	if got := rs.claims.claimCalls(); got != 1 {
		t.Fatalf("%d claims for a fresh key, want 1", got)
	}
	requireReplayOf(t, "again", rs.send(0, alice, "k-4", `{}`), first)
	requireProblem(t, "another request", rs.send(0, alice, "k-4", `{"x":1}`), http.StatusUnprocessableEntity, "idempotency-key-reused")
	if got := rs.claims.claimCalls(); got != 1 {
		t.Fatalf("%d claims after answers from the cache, want still 1", got)
	}
}

// TestSharedClaimStoreDown: a claim store that fails refuses the request
// (the command does not run unguarded) and leaves nothing behind, so a
// retry once it is back runs.
func TestSharedClaimStoreDown(t *testing.T) {
	t.Parallel()
	rs := newReplicas(t, 1)
	rs.claims.failed = errors.New("connection refused")
	if rec := rs.send(0, alice, "k-5", `{}`); rec.Code != http.StatusInternalServerError {
		t.Fatalf("with the claim store down = %d %s, want 500", rec.Code, rec.Body)
	}
	if n := rs.runCount(); n != 0 {
		t.Fatalf("ran %d times with the claim store down", n)
	}
	rs.claims.mu.Lock()
	rs.claims.failed = nil
	rs.claims.mu.Unlock()
	if rec := rs.send(0, alice, "k-5", `{}`); rec.Code != http.StatusCreated {
		t.Fatalf("once it is back = %d %s, want 201", rec.Code, rec.Body)
	}
	<-rs.entered
}

// TestSharedClaimIsRenewedWhileRunning: a request that runs longer than
// its lease renews its claim, so another replica still answers 409 rather
// than run it a second time.
func TestSharedClaimIsRenewedWhileRunning(t *testing.T) {
	t.Parallel()
	const lease = 30 * time.Millisecond // renewed every 10 ms of real time
	rs := newReplicasWithLease(t, 2, lease)
	gate := make(chan struct{})
	rs.gate = gate
	firstDone := make(chan *httptest.ResponseRecorder, 1)
	go func() { firstDone <- rs.send(0, alice, "k-6", `{}`) }()
	<-rs.entered

	// Past the lease on the claims' clock; then a renewal after that.
	rs.claims.advance(10 * lease)
	select {
	case <-rs.claims.renewed:
	default:
	}
	select {
	case <-rs.claims.renewed:
	case <-time.After(time.Minute): // a generous bound on a 10 ms ticker, not a measurement
		close(gate)
		t.Fatal("the running request never renewed its claim")
	}

	dup := make(chan *httptest.ResponseRecorder, 1)
	go func() { dup <- rs.send(1, alice, "k-6", `{}`) }()
	select {
	case <-rs.entered:
		close(gate)
		t.Fatal("the other replica ran the request whose claim was being renewed")
	case rec := <-dup:
		requireProblem(t, "the same request after a renewal", rec, http.StatusConflict, "idempotency-key-in-use")
	}
	close(gate)
	if rec := <-firstDone; rec.Code != http.StatusCreated {
		t.Fatalf("first = %d %s", rec.Code, rec.Body)
	}
	if n := rs.claims.held(); n != 0 {
		t.Fatalf("%d claims held after the request ended (renewals must stop with it)", n)
	}
}

// TestIdempotencyCacheIsBoundedInBytes: the bodies the cache keeps stay
// within its byte budget (give or take the last one finished), oldest out
// first, whatever their number; a forgotten or evicted entry gives its
// bytes back.
func TestIdempotencyCacheIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	const budget = 10_000
	c := newIdempotencyCache(1_000_000, budget, time.Hour)
	now := time.Now()
	body := bytes.Repeat([]byte("x"), 1_000)
	for i := range 1_000 {
		key := fmt.Sprint("k", i)
		if _, fresh := c.begin(key, [32]byte{}, now); !fresh {
			t.Fatalf("%s: not fresh", key)
		}
		c.finish(key, http.StatusCreated, http.Header{}, body)
		if c.bytes > budget+len(body) {
			t.Fatalf("after %d entries the cache keeps %d bytes, over its budget of %d", i+1, c.bytes, budget)
		}
	}
	if got := c.order.Len(); got > budget/len(body)+1 {
		t.Errorf("%d entries kept, want at most %d", got, budget/len(body)+1)
	}
	// The newest is there, the oldest gone.
	if _, fresh := c.begin("k999", [32]byte{}, now); fresh {
		t.Error("the newest entry was evicted")
	}
	if _, fresh := c.begin("k0", [32]byte{}, now); !fresh {
		t.Error("the oldest entry is still there")
	}
	c.forget("k0")
	for c.order.Len() > 0 {
		c.remove(c.order.Front())
	}
	if c.bytes != 0 {
		t.Errorf("an empty cache counts %d bytes", c.bytes)
	}
}
