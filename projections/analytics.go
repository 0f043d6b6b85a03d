package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/eventstore"
)

// AnalyticsJob is an analytics job as the members who may read it see it.
type AnalyticsJob struct {
	ID            string             `json:"id"`
	State         string             `json:"state"`
	DataSourceID  string             `json:"data_source_id"`
	Question      string             `json:"question,omitempty"`
	SQL           string             `json:"sql,omitempty"`
	Translator    string             `json:"translator,omitempty"`
	Tables        []string           `json:"tables"`
	Error         string             `json:"error,omitempty"`
	Stage         string             `json:"stage,omitempty"`
	RowCount      int                `json:"row_count"`
	Columns       []analytics.Column `json:"columns"`
	Bytes         int64              `json:"bytes"`
	SHA256        string             `json:"sha256,omitempty"`
	Truncated     bool               `json:"truncated"`
	Pages         int                `json:"-"`
	CancelBy      string             `json:"cancel_requested_by,omitempty"`
	CreatedBy     string             `json:"created_by"`
	CreatedByKind string             `json:"created_by_kind"`
	BotID         string             `json:"bot_id,omitempty"`
	Timings       AnalyticsTimings   `json:"timings"`
	// Version is the job stream's version of the last event folded in.
	Version uint64 `json:"-"`
}

// AnalyticsTimings say when a job was submitted, started and finished.
type AnalyticsTimings struct {
	SubmittedAt time.Time  `json:"submitted_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	DurationMS  int64      `json:"duration_ms"`
}

// AnalyticsJobQuery filters a list of jobs; an empty filter matches every
// job. Jobs are listed by id.
type AnalyticsJobQuery struct {
	CreatedBy     string
	CreatedByKind string
	Page          Page
}

// AnalyticsModel is the read model of analytics jobs and their result
// rows. Reads take the caller's scope; writes take the event's scope.
type AnalyticsModel interface {
	AnalyticsJob(ctx context.Context, scope access.Scope, id string) (AnalyticsJob, error)
	AnalyticsJobs(ctx context.Context, scope access.Scope, q AnalyticsJobQuery) ([]AnalyticsJob, error)
	PutAnalyticsJob(ctx context.Context, scope access.Scope, j AnalyticsJob) error
	// AnalyticsResult returns the job's result pages in order (each a
	// JSON array of rows); none for a job without a result.
	AnalyticsResult(ctx context.Context, scope access.Scope, jobID string) ([]json.RawMessage, error)
	// PutAnalyticsPage stores page number page of the job's result;
	// storing a page again replaces it.
	PutAnalyticsPage(ctx context.Context, scope access.Scope, jobID string, page int, rows json.RawMessage) error
	// PurgeOrg drops every job and result page of the organization.
	OrgPurger
}

// AnalyticsProjection builds the analytics read model. Each event is
// folded into its job's record, whose Version says which event of the
// stream was folded last, so a redelivery changes nothing.
func AnalyticsProjection(m AnalyticsModel) *consumer.Group {
	p := analyticsProjection{m: m}
	return &consumer.Group{Name: "analytics", Kind: consumer.ReadModel, Handlers: []consumer.Handler{
		consumer.On(p.submitted),
		consumer.On(p.started),
		consumer.On(p.planned),
		consumer.On(p.page),
		consumer.On(p.succeeded),
		consumer.On(p.failed),
		consumer.On(p.cancelRequested),
		consumer.On(p.cancelled),
		purgeOnClose(m),
	}}
}

type analyticsProjection struct{ m AnalyticsModel }

func (p analyticsProjection) submitted(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsJobSubmitted) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	if existing, err := p.m.AnalyticsJob(ctx, scope, e.ID); err == nil && existing.Version >= env.StreamVersion {
		return nil
	}
	return p.m.PutAnalyticsJob(ctx, scope, AnalyticsJob{
		ID: e.ID, State: string(analytics.Submitted), DataSourceID: e.DataSourceID, Question: e.Question, SQL: e.SQL,
		Tables: []string{}, Columns: []analytics.Column{},
		CreatedBy: e.RequestedBy, CreatedByKind: e.RequestedByKind, BotID: e.BotID,
		Timings: AnalyticsTimings{SubmittedAt: env.OccurredAt}, Version: env.StreamVersion,
	})
}

func (p analyticsProjection) started(ctx context.Context, env eventstore.Envelope, _ *analytics.AnalyticsJobStarted) error {
	return p.update(ctx, env, func(j *AnalyticsJob) {
		at := env.OccurredAt
		j.State, j.Timings.StartedAt = string(analytics.Running), &at
	})
}

func (p analyticsProjection) planned(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsQueryPlanned) error {
	return p.update(ctx, env, func(j *AnalyticsJob) {
		j.SQL, j.Translator, j.Tables = e.SQL, e.Translator, e.Tables
		if j.Tables == nil {
			j.Tables = []string{}
		}
	})
}

func (p analyticsProjection) page(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsResultPage) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	j, err := p.m.AnalyticsJob(ctx, scope, env.Stream.EntityID)
	if err != nil {
		return err
	}
	if env.StreamVersion <= j.Version {
		return nil
	}
	if err := p.m.PutAnalyticsPage(ctx, scope, j.ID, e.Page, e.Rows); err != nil {
		return err
	}
	j.Version = env.StreamVersion
	return p.m.PutAnalyticsJob(ctx, scope, j)
}

func (p analyticsProjection) succeeded(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsJobSucceeded) error {
	return p.update(ctx, env, func(j *AnalyticsJob) {
		j.State = string(analytics.Succeeded)
		j.RowCount, j.Columns, j.Bytes, j.SHA256, j.Truncated, j.Pages = e.RowCount, e.Columns, e.Bytes, e.SHA256, e.Truncated, e.Pages
		if j.Columns == nil {
			j.Columns = []analytics.Column{}
		}
		j.finish(env.OccurredAt, e.DurationMS)
	})
}

func (p analyticsProjection) failed(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsJobFailed) error {
	return p.update(ctx, env, func(j *AnalyticsJob) {
		j.State, j.Stage, j.Error = string(analytics.Failed), e.Stage, e.Reason
		if e.SQL != "" {
			j.SQL = e.SQL
		}
		j.finish(env.OccurredAt, e.DurationMS)
	})
}

func (p analyticsProjection) cancelRequested(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsJobCancelRequested) error {
	return p.update(ctx, env, func(j *AnalyticsJob) { j.CancelBy = e.By })
}

func (p analyticsProjection) cancelled(ctx context.Context, env eventstore.Envelope, e *analytics.AnalyticsJobCancelled) error {
	return p.update(ctx, env, func(j *AnalyticsJob) {
		j.State, j.Error = string(analytics.Cancelled), e.Reason
		j.finish(env.OccurredAt, e.DurationMS)
	})
}

func (j *AnalyticsJob) finish(at time.Time, durationMS int64) {
	j.Timings.FinishedAt, j.Timings.DurationMS = &at, durationMS
}

// update folds one event into the job of its stream, unless the record
// already holds it.
func (p analyticsProjection) update(ctx context.Context, env eventstore.Envelope, change func(*AnalyticsJob)) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	j, err := p.m.AnalyticsJob(ctx, scope, env.Stream.EntityID)
	if err != nil {
		return fmt.Errorf("analytics job %s: %w", env.Stream.EntityID, err)
	}
	if env.StreamVersion <= j.Version {
		return nil
	}
	change(&j)
	j.Version = env.StreamVersion
	return p.m.PutAnalyticsJob(ctx, scope, j)
}
