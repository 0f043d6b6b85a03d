package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/eventstore"
)

// AnalyticsJobKind is the kind of the job that runs one analytics query.
const AnalyticsJobKind = "analytics.query"

// DefaultAnalyticsWorkers is how many analytics jobs run at once unless
// configured otherwise.
const DefaultAnalyticsWorkers = 4

// DefaultAnalyticsTimeout bounds one analytics query unless configured
// otherwise.
const DefaultAnalyticsTimeout = 30 * time.Second

// AnalyticsDeps are what the analytics process runs jobs with.
type AnalyticsDeps struct {
	Executor   QueryExecutor
	Translator QuestionTranslator
	Keys       DataKeys
	// Workers bounds the jobs run at once (DefaultAnalyticsWorkers if ≤ 0).
	Workers int
	// Timeout bounds each query (DefaultAnalyticsTimeout if ≤ 0).
	Timeout time.Duration
	Logger  *slog.Logger
}

// AnalyticsRunner is the analytics process: it hands each submitted job
// to a bounded pool of workers, which run it as a job (RunJob, kind
// analytics.query) re-authorized with the asker as resolved at execution
// time. A job is queued at most once at a time, so the process seeing its
// trigger and the sweep of open jobs at start ([AnalyticsRunner.Resume])
// may both hand it over.
//
// A job whose run ends in an error (the log unreachable, the server
// stopping) stays running in its streams; the next start resumes it, or
// fails it once jobs.MaxAttempts attempts were made.
type AnalyticsRunner struct {
	p       *Pipeline
	actors  ActorResolver
	deps    AnalyticsDeps
	running *runningQueries
	logger  *slog.Logger
	// queue is the pool: every worker may run jobs of one organization
	// (no cap below the pool's), and organizations are served in turn.
	queue *JobQueue

	mu   sync.Mutex
	open map[eventstore.StreamName]bool // jobs submitted and not ended, as the log says
}

// NewRunner returns the analytics process over the handlers' pipeline:
// cancels asked through a share its registry of running queries.
func (a *Analytics) NewRunner(actors ActorResolver, deps AnalyticsDeps) *AnalyticsRunner {
	if deps.Workers <= 0 {
		deps.Workers = DefaultAnalyticsWorkers
	}
	if deps.Timeout <= 0 {
		deps.Timeout = DefaultAnalyticsTimeout
	}
	logger := deps.Logger
	if logger == nil {
		logger = a.p.logger
	}
	r := &AnalyticsRunner{
		p: a.p, actors: actors, deps: deps, running: a.running, logger: logger,
		open: map[eventstore.StreamName]bool{},
	}
	r.queue = NewJobQueue(deps.Workers, deps.Workers, logger.With("process", "analytics"), r.run)
	return r
}

// Start starts the workers; they stop when ctx ends or Stop is called.
func (r *AnalyticsRunner) Start(ctx context.Context) { r.queue.Start(ctx) }

// Stop cancels the running jobs (they stay running in the log, to be
// resumed at the next start) and waits for the workers.
func (r *AnalyticsRunner) Stop() { r.queue.Stop() }

// Queued is how many jobs wait for a worker.
func (r *AnalyticsRunner) Queued() int { return r.queue.Queued() }

// Enqueue hands the job that env (its AnalyticsJobSubmitted) started to
// the pool. A job already queued or running is not queued again. Before
// Start (while the groups are rebuilt from the log) it does nothing: the
// read models principals are resolved from are not complete yet, and
// Resume hands over every open job after.
func (r *AnalyticsRunner) Enqueue(env eventstore.Envelope) {
	r.queue.Enqueue(env.Stream.String(), env)
}

// Process is the process group: each AnalyticsJobSubmitted is handed to
// the pool.
func (r *AnalyticsRunner) Process() *consumer.Group {
	return &consumer.Group{Name: "analytics-jobs", Kind: consumer.Process, Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *analytics.AnalyticsJobSubmitted) error {
			r.Enqueue(env)
			return nil
		}),
	}}
}

// OpenJobs is the group that follows which jobs are submitted and not
// ended. It lives in memory and must be rebuilt in full at start (give it
// checkpoints that start at zero), or caught up from a snapshot of
// OpenJobStreams put back with RestoreOpenJobs; Resume reads it.
func (r *AnalyticsRunner) OpenJobs() *consumer.Group {
	set := func(stream eventstore.StreamName, open bool) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if open {
			r.open[stream] = true
		} else {
			delete(r.open, stream)
		}
		return nil
	}
	return &consumer.Group{Name: "analytics-open-jobs", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *analytics.AnalyticsJobSubmitted) error {
			return set(env.Stream, true)
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *analytics.AnalyticsJobSucceeded) error {
			return set(env.Stream, false)
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *analytics.AnalyticsJobFailed) error {
			return set(env.Stream, false)
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *analytics.AnalyticsJobCancelled) error {
			return set(env.Stream, false)
		}),
	}}
}

// OpenJobStreams returns the streams of the jobs submitted and not ended,
// for a snapshot of the in-memory groups.
func (r *AnalyticsRunner) OpenJobStreams() []eventstore.StreamName {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]eventstore.StreamName, 0, len(r.open))
	for s := range r.open {
		out = append(out, s)
	}
	return out
}

// RestoreOpenJobs puts back what OpenJobStreams returned.
func (r *AnalyticsRunner) RestoreOpenJobs(streams []eventstore.StreamName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range streams {
		r.open[s] = true
	}
}

// Resume hands every job the log shows submitted or running to the pool
// again. Call it once the groups have been rebuilt, after Start: with one
// replica, a job still open then was cut short by a stop (or not reached
// yet), and RunJob resumes or fails it. It returns how many it handed.
func (r *AnalyticsRunner) Resume(ctx context.Context) (int, error) {
	r.mu.Lock()
	streams := make([]eventstore.StreamName, 0, len(r.open))
	for s := range r.open {
		streams = append(streams, s)
	}
	r.mu.Unlock()
	var errs []error
	n := 0
	for _, stream := range streams {
		envs, err := r.p.store.ReadStream(ctx, stream, 0, 1)
		if err != nil || len(envs) == 0 || envs[0].Type != (analytics.AnalyticsJobSubmitted{}).EventType() {
			errs = append(errs, fmt.Errorf("resume %s: %w (first event missing or not a submission)", stream, err))
			continue
		}
		r.Enqueue(envs[0])
		n++
	}
	return n, errors.Join(errs...)
}

// outcomeOf is the job outcome an ended analytics job records.
func outcomeOf(job *analyticsJob) JobOutcome {
	switch job.State() {
	case analytics.Succeeded:
		return JobOutcome{State: jobs.Succeeded, Result: fmt.Sprintf("%d rows", job.rows), Items: job.rows}
	case analytics.Failed:
		return JobOutcome{State: jobs.Failed, Reason: job.stage + ": " + job.reason}
	case analytics.Cancelled:
		reason := job.reason
		if reason == "" {
			reason = "cancelled"
		}
		return JobOutcome{State: jobs.Cancelled, Reason: reason}
	}
	return JobOutcome{}
}
