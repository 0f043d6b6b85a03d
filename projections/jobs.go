package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/eventstore"
)

// Job is one job of the organization's processes (a document's ingestion,
// an analytics query) as its stream tells it: what it works on, where it is
// in its life, how often it was started and how it ended. None of it is
// content: the subject is a stream name, results and reasons are the
// record's.
type Job struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Subject is the stream the job works on; TriggerID the event that
	// asked for it.
	Subject   string `json:"subject"`
	TriggerID string `json:"trigger_id"`
	// State is jobs.Submitted, Running, Succeeded, Failed or Cancelled.
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// Result and Items say what a succeeded job produced; Reason why one
	// failed or was cancelled.
	Result string `json:"result,omitempty"`
	Items  int    `json:"items"`
	Reason string `json:"reason,omitempty"`
	// SubmittedBy is the principal that submitted the job (the process),
	// OnBehalfOf whom it acts for, outermost first.
	SubmittedBy string    `json:"submitted_by"`
	OnBehalfOf  []string  `json:"on_behalf_of"`
	SubmittedAt time.Time `json:"submitted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Version is the job stream's version of the last event folded in.
	Version uint64 `json:"-"`
}

// JobFilter narrows a list of jobs; an empty field matches every job.
type JobFilter struct {
	Kind  string
	State string
}

// Matches reports whether j passes the filter.
func (f JobFilter) Matches(j Job) bool {
	return (f.Kind == "" || j.Kind == f.Kind) && (f.State == "" || j.State == f.State)
}

// JobModel is the read model of jobs. Reads take the caller's scope;
// writes take the event's scope.
type JobModel interface {
	Job(ctx context.Context, scope access.Scope, id string) (Job, error)
	// Jobs lists the jobs that pass filter, by id after page.After.
	Jobs(ctx context.Context, scope access.Scope, filter JobFilter, page Page) ([]Job, error)
	PutJob(ctx context.Context, scope access.Scope, j Job) error
	// PurgeOrg drops every job of the organization.
	OrgPurger
}

// JobProjection builds the jobs read model. Each event is folded into its
// job's record, whose Version says which event of the stream was folded
// last, so that a redelivery changes nothing.
func JobProjection(m JobModel) *consumer.Group {
	p := jobProjection{m: m}
	return &consumer.Group{Name: "jobs", Kind: consumer.ReadModel, Handlers: []consumer.Handler{
		consumer.On(p.submitted),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *jobs.JobStarted) error {
			return p.update(ctx, env, func(j *Job) { j.State, j.Attempts = string(jobs.Running), e.Attempt })
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *jobs.JobSucceeded) error {
			return p.update(ctx, env, func(j *Job) { j.State, j.Result, j.Items = string(jobs.Succeeded), e.Result, e.Items })
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *jobs.JobFailed) error {
			return p.update(ctx, env, func(j *Job) { j.State, j.Reason = string(jobs.Failed), e.Reason })
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *jobs.JobCancelled) error {
			return p.update(ctx, env, func(j *Job) { j.State, j.Reason = string(jobs.Cancelled), e.Reason })
		}),
		purgeOnClose(m),
	}}
}

type jobProjection struct{ m JobModel }

func (p jobProjection) submitted(ctx context.Context, env eventstore.Envelope, e *jobs.JobSubmitted) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	if _, err := p.m.Job(ctx, scope, env.Stream.EntityID); err == nil {
		return nil // redelivered: already folded
	} else if !IsNotFound(err) {
		return err
	}
	onBehalfOf := append([]string{}, env.Actor.OnBehalfOf...)
	return p.m.PutJob(ctx, scope, Job{
		ID: env.Stream.EntityID, Kind: e.Kind, Subject: e.Subject, TriggerID: e.TriggerID,
		State: string(jobs.Submitted), SubmittedBy: env.Actor.Subject, OnBehalfOf: onBehalfOf,
		SubmittedAt: env.OccurredAt, UpdatedAt: env.OccurredAt, Version: env.StreamVersion,
	})
}

// update folds one event into the job of its stream, unless the record
// already holds it.
func (p jobProjection) update(ctx context.Context, env eventstore.Envelope, change func(*Job)) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	j, err := p.m.Job(ctx, scope, env.Stream.EntityID)
	if err != nil {
		return fmt.Errorf("job %s: %w", env.Stream.EntityID, err)
	}
	if env.StreamVersion <= j.Version {
		return nil // redelivered: already folded
	}
	change(&j)
	j.UpdatedAt, j.Version = env.OccurredAt, env.StreamVersion
	return p.m.PutJob(ctx, scope, j)
}

// JobQueries answers reads of jobs. Jobs are part of the organization's
// record (which process did what, for whom, and how it ended), so reading
// them takes audit:read; another organization's job answers exactly like
// one that does not exist.
type JobQueries struct {
	jobs    JobModel
	denials DenialRecorder
}

// NewJobQueries returns the job query service; denials records refused
// reads.
func NewJobQueries(m JobModel, denials DenialRecorder) *JobQueries {
	return &JobQueries{jobs: m, denials: denials}
}

// List lists the caller's organization's jobs that pass filter, by id after
// page.After.
func (q *JobQueries) List(ctx context.Context, who access.Principal, filter JobFilter, page Page) ([]Job, error) {
	if filter.State != "" && !validJobState(filter.State) {
		return nil, fmt.Errorf("%w: state %q is none of submitted, running, succeeded, failed, cancelled", domain.ErrInvalid, filter.State)
	}
	scope, err := authorizeOrg(ctx, q.denials, who, access.AuditRead, "jobs")
	if err != nil {
		return nil, err
	}
	return q.jobs.Jobs(ctx, scope, filter, page)
}

// Get returns one job of the caller's organization.
func (q *JobQueries) Get(ctx context.Context, who access.Principal, id string) (Job, error) {
	scope, err := authorizeOrg(ctx, q.denials, who, access.AuditRead, "jobs/"+id)
	if err != nil {
		return Job{}, err
	}
	return q.jobs.Job(ctx, scope, id)
}

func validJobState(s string) bool {
	switch jobs.State(s) {
	case jobs.Submitted, jobs.Running, jobs.Succeeded, jobs.Failed, jobs.Cancelled:
		return true
	}
	return false
}
