package commands

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/palisadehq/palisade/eventstore"
)

// JobQueue runs jobs on a bounded pool of workers, fairly across
// organizations: a worker takes the next job of the organizations in turn
// (round robin over those with jobs waiting), and never more than perOrg
// jobs of one organization run at once. So an organization that queued a
// hundred slow jobs delays another's one job by at most one job's turn,
// not by its whole backlog.
//
// A job is identified by a key; a key queued or running is not queued
// again. A job whose run fails is queued again after a backoff (RunJob
// fails a job for good after jobs.MaxAttempts starts, so a retry cannot
// loop forever); Stop cancels the running jobs and forgets the queue: the
// jobs stay open in the log, and whoever starts the queue next hands them
// over again (the runners' Resume).
type JobQueue struct {
	workers, perOrg int
	run             func(ctx context.Context, trigger eventstore.Envelope) error
	logger          *slog.Logger
	// retryAfter is the first backoff of a failed job; it doubles per
	// failure up to maxRetryAfter.
	retryAfter, maxRetryAfter time.Duration

	mu      sync.Mutex
	wake    *sync.Cond
	orgs    map[string]*orgJobs
	turns   []string // organizations with jobs waiting, in the order they are served
	known   map[string]bool
	started bool
	stop    context.CancelFunc
	wg      sync.WaitGroup
	// term counts Starts: a retry scheduled in an earlier term is dropped.
	term int
}

type orgJobs struct {
	waiting []queuedJob
	running int
}

type queuedJob struct {
	key      string
	trigger  eventstore.Envelope
	failures int
}

// NewJobQueue returns a stopped queue of workers workers running run,
// at most perOrg of them for one organization (both at least 1).
func NewJobQueue(workers, perOrg int, logger *slog.Logger, run func(ctx context.Context, trigger eventstore.Envelope) error) *JobQueue {
	q := &JobQueue{
		workers: max(workers, 1), perOrg: max(perOrg, 1), run: run, logger: logger,
		retryAfter: time.Second, maxRetryAfter: 30 * time.Second,
		orgs: map[string]*orgJobs{}, known: map[string]bool{},
	}
	q.wake = sync.NewCond(&q.mu)
	return q
}

// Start starts the workers; they stop when ctx ends or Stop is called.
func (q *JobQueue) Start(ctx context.Context) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return
	}
	q.started = true
	q.term++
	ctx, q.stop = context.WithCancel(ctx)
	for range q.workers {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			q.work(ctx)
		}()
	}
	// A cancelled ctx must wake the workers waiting for a job.
	context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.wake.Broadcast()
	})
}

// Stop cancels the running jobs, waits for the workers and forgets what
// was queued (it stays open in the log).
func (q *JobQueue) Stop() {
	q.mu.Lock()
	stop := q.stop
	q.started = false
	q.mu.Unlock()
	if stop != nil {
		stop()
	}
	q.wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.orgs, q.turns, q.known = map[string]*orgJobs{}, nil, map[string]bool{}
}

// Enqueue queues the job key for trigger's organization, unless the queue
// is stopped or key is already queued or running. It never waits.
func (q *JobQueue) Enqueue(key string, trigger eventstore.Envelope) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.enqueue(queuedJob{key: key, trigger: trigger})
}

// enqueue is Enqueue with q.mu held.
func (q *JobQueue) enqueue(j queuedJob) {
	if !q.started || q.known[j.key] {
		return
	}
	q.known[j.key] = true
	org := q.orgs[j.trigger.OrgID]
	if org == nil {
		org = &orgJobs{}
		q.orgs[j.trigger.OrgID] = org
	}
	if len(org.waiting) == 0 {
		q.turns = append(q.turns, j.trigger.OrgID)
	}
	org.waiting = append(org.waiting, j)
	q.wake.Signal()
}

// Queued is how many jobs wait for a worker.
func (q *JobQueue) Queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, org := range q.orgs {
		n += len(org.waiting)
	}
	return n
}

// Running is how many jobs of org run now.
func (q *JobQueue) Running(org string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if o := q.orgs[org]; o != nil {
		return o.running
	}
	return 0
}

// next takes the job to run next, waiting for one; ok is false once ctx
// ended. q.mu held.
func (q *JobQueue) next(ctx context.Context) (queuedJob, bool) {
	for {
		if ctx.Err() != nil {
			return queuedJob{}, false
		}
		for i, id := range q.turns {
			org := q.orgs[id]
			if org.running >= q.perOrg {
				continue
			}
			j := org.waiting[0]
			org.waiting = org.waiting[1:]
			org.running++
			// Served: to the back of the turns if more of it waits.
			q.turns = append(q.turns[:i:i], q.turns[i+1:]...)
			if len(org.waiting) > 0 {
				q.turns = append(q.turns, id)
			}
			return j, true
		}
		q.wake.Wait()
	}
}

// runRecovered runs one job and turns a panic into its error: a bug that
// a hostile input trips fails that job (retried like any failure, and
// given up after jobs.MaxAttempts by RunJob), never the process that
// serves every organization.
func (q *JobQueue) runRecovered(ctx context.Context, trigger eventstore.Envelope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return q.run(ctx, trigger)
}

func (q *JobQueue) work(ctx context.Context) {
	for {
		q.mu.Lock()
		j, ok := q.next(ctx)
		term := q.term
		q.mu.Unlock()
		if !ok {
			return
		}
		err := q.runRecovered(ctx, j.trigger)
		q.mu.Lock()
		org := q.orgs[j.trigger.OrgID]
		org.running--
		if org.running == 0 && len(org.waiting) == 0 {
			delete(q.orgs, j.trigger.OrgID)
		}
		delete(q.known, j.key)
		q.wake.Broadcast() // a slot of this organization is free
		q.mu.Unlock()
		if err == nil || ctx.Err() != nil {
			continue
		}
		j.failures++
		backoff := min(q.retryAfter<<min(j.failures-1, 16), q.maxRetryAfter)
		q.logger.Error("job failed; it will be retried", "org_id", j.trigger.OrgID, "trigger", j.trigger.Stream.String(),
			"failures", j.failures, "retry_in", backoff.String(), "err", err)
		time.AfterFunc(backoff, func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.term == term {
				q.enqueue(j)
			}
		})
	}
}
