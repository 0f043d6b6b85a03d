package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/eventstore"
)

func queueTrigger(org, id string) eventstore.Envelope {
	return eventstore.Envelope{Stream: eventstore.MustStreamName("doc", org, id), Metadata: eventstore.Metadata{OrgID: org}}
}

// recorder is a job body that blocks each job until released and records
// the order jobs started in and how many of one organization ran at once.
type recorder struct {
	mu      sync.Mutex
	started []string
	running map[string]int // by organization
	most    map[string]int
	release map[string]chan struct{}
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int{}, most: map[string]int{}, release: map[string]chan struct{}{}}
}

func (r *recorder) gate(id string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release[id] == nil {
		r.release[id] = make(chan struct{})
	}
	return r.release[id]
}

func (r *recorder) run(ctx context.Context, trigger eventstore.Envelope) error {
	org, id := trigger.OrgID, trigger.Stream.EntityID
	gate := r.gate(id)
	r.mu.Lock()
	r.started = append(r.started, id)
	r.running[org]++
	r.most[org] = max(r.most[org], r.running[org])
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running[org]--
		r.mu.Unlock()
	}()
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) isStarted(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.started {
		if s == id {
			return true
		}
	}
	return false
}

func (r *recorder) waitStarted(t *testing.T, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, id := range ids {
		for !r.isStarted(id) {
			if time.Now().After(deadline) {
				t.Fatalf("job %s did not start; started: %v", id, r.started)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestJobQueueServesOrganizationsInTurn: an organization with a backlog of
// blocked jobs holds at most perOrg workers; another organization's job
// queued after that backlog starts at once on a free worker, and the
// backlog's next job waits for one of its own to end.
func TestJobQueueServesOrganizationsInTurn(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	q := NewJobQueue(3, 2, discard(), rec.run)
	q.Start(context.Background())
	defer q.Stop()
	for i := range 10 {
		q.Enqueue(fmt.Sprintf("a%d", i), queueTrigger("org-a", fmt.Sprintf("a%d", i)))
	}
	rec.waitStarted(t, "a0", "a1")
	q.Enqueue("b0", queueTrigger("org-b", "b0"))
	rec.waitStarted(t, "b0")
	time.Sleep(20 * time.Millisecond) // a third job of org-a would have started by now
	if rec.isStarted("a2") {
		t.Fatal("a third job of org-a started while two of its own ran (perOrg 2)")
	}
	if n := q.Running("org-a"); n != 2 {
		t.Fatalf("org-a runs %d jobs, want 2", n)
	}
	if n := q.Queued(); n != 8 {
		t.Fatalf("Queued = %d, want 8", n)
	}
	close(rec.gate("a0"))
	rec.waitStarted(t, "a2")
	for i := 1; i < 10; i++ {
		rec.waitStarted(t, fmt.Sprintf("a%d", i))
		close(rec.gate(fmt.Sprintf("a%d", i)))
	}
	close(rec.gate("b0"))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.most["org-a"] > 2 {
		t.Errorf("org-a ran %d jobs at once, want at most 2", rec.most["org-a"])
	}
}

// TestJobQueueRoundRobin: with one worker, the organizations' queued jobs
// run alternately, not in the order they were queued.
func TestJobQueueRoundRobin(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	block := make(chan struct{})
	q := NewJobQueue(1, 1, discard(), func(ctx context.Context, trigger eventstore.Envelope) error {
		if trigger.Stream.EntityID == "first" {
			<-block
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		order = append(order, trigger.Stream.EntityID)
		if len(order) == 6 {
			close(done)
		}
		return nil
	})
	q.Start(context.Background())
	defer q.Stop()
	q.Enqueue("first", queueTrigger("org-z", "first")) // holds the one worker while the rest queue
	for i := range 4 {
		q.Enqueue(fmt.Sprintf("a%d", i), queueTrigger("org-a", fmt.Sprintf("a%d", i)))
	}
	q.Enqueue("b0", queueTrigger("org-b", "b0"))
	q.Enqueue("c0", queueTrigger("org-c", "c0"))
	close(block)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("jobs did not run")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"a0", "b0", "c0", "a1", "a2", "a3"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order = %v, want %v", order, want)
	}
}

// TestJobQueueDeduplicatesRetriesAndStops: a key queued or running is not
// queued again; a failed job is queued again after the backoff; a stopped
// queue takes nothing and cancels what runs.
func TestJobQueueDeduplicatesRetriesAndStops(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	runs := map[string]int{}
	blocked := make(chan struct{})
	q := NewJobQueue(2, 2, discard(), func(ctx context.Context, trigger eventstore.Envelope) error {
		id := trigger.Stream.EntityID
		mu.Lock()
		runs[id]++
		n := runs[id]
		mu.Unlock()
		switch id {
		case "flaky":
			if n < 3 {
				return errors.New("endpoint down")
			}
		case "blocked":
			close(blocked)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	q.retryAfter = time.Millisecond
	count := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return runs[id]
	}
	q.Enqueue("early", queueTrigger("org-a", "early")) // stopped: ignored
	q.Start(context.Background())
	q.Enqueue("flaky", queueTrigger("org-a", "flaky"))
	deadline := time.Now().Add(5 * time.Second)
	for count("flaky") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the failed job ran %d times, want 3 (two retries)", count("flaky"))
		}
		time.Sleep(time.Millisecond)
	}
	q.Enqueue("blocked", queueTrigger("org-a", "blocked"))
	<-blocked
	q.Enqueue("blocked", queueTrigger("org-a", "blocked")) // running: not queued again
	if n := q.Queued(); n != 0 {
		t.Fatalf("a running key was queued again: Queued = %d", n)
	}
	q.Stop() // cancels "blocked", whose run returns
	q.Enqueue("late", queueTrigger("org-a", "late"))
	time.Sleep(20 * time.Millisecond)
	if count("early") != 0 || count("late") != 0 {
		t.Fatalf("a stopped queue ran jobs: early %d, late %d", count("early"), count("late"))
	}
	if count("blocked") != 1 || count("flaky") != 3 {
		t.Fatalf("runs = %v, want blocked 1 and flaky 3", runs)
	}
}

// TestJobQueueSurvivesAPanickingJob: a job that panics fails like one
// that returns an error (it is retried, and the error says it panicked),
// the worker goes on, and the other organizations' jobs run.
func TestJobQueueSurvivesAPanickingJob(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		runs = map[string]int{}
	)
	logs := &lockedLog{}
	q := NewJobQueue(1, 1, slog.New(slog.NewTextHandler(logs, nil)), func(ctx context.Context, trigger eventstore.Envelope) error {
		mu.Lock()
		runs[trigger.Stream.EntityID]++
		n := runs[trigger.Stream.EntityID]
		mu.Unlock()
		if trigger.Stream.EntityID == "bomb" && n == 1 {
			var m map[string]int
			m["boom"]++ // a nil-map write: a panic
		}
		return nil
	})
	q.retryAfter = time.Millisecond
	q.Start(context.Background())
	defer q.Stop()
	q.Enqueue("bomb", queueTrigger("org-a", "bomb"))
	q.Enqueue("other", queueTrigger("org-b", "other"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		bomb, other := runs["bomb"], runs["other"]
		mu.Unlock()
		if bomb == 2 && other == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs: bomb %d (want 2: the panic, then the retry), other %d (want 1)", bomb, other)
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(logs.String(), "job panicked: assignment to entry in nil map") {
		t.Errorf("the log does not say the job panicked:\n%s", logs)
	}
}

// lockedLog is a log destination the workers may write to at once.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
