package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/sealing"
)

// The ports of analytics jobs: the process runs a job's query through
// them; app adapts the executor, the translators and the keyring to them.

// QueryTarget is where one query runs: the source's connection with its
// password opened (the sealed form left out).
type QueryTarget struct {
	// OrgID is the source's organization (a SQLite file is looked up in
	// its directory only).
	OrgID      string
	Kind       datasources.Kind
	Connection datasources.Connection
	Password   sealing.Secret
	// Tables are the allow-listed tables (SQLite's authorizer refuses
	// every other one).
	Tables []string
}

// QueryLimits bound one query; the executor enforces them while fetching.
type QueryLimits struct {
	Timeout  time.Duration
	MaxRows  int
	MaxBytes int64
}

// QueryResult is what one query returned. Values are nil, bool, int64,
// float64 or string; SHA256 is the hex SHA-256 of the JSON of
// {"columns": …, "rows": …}.
type QueryResult struct {
	Columns   []analytics.Column
	Rows      [][]any
	RowCount  int
	Bytes     int64
	Truncated bool
	SHA256    string
	Duration  time.Duration
}

// ErrQueryTimeout is wrapped by a QueryExecutor's error for a query the
// time limit stopped. A query whose context was cancelled returns an
// error wrapping context.Canceled.
var ErrQueryTimeout = errors.New("the query ran past its time limit")

// QueryExecutor runs one guarded SELECT against a tenant's database, in a
// read-only transaction with the limits given, and stops it on the
// database when ctx is cancelled. Its errors never carry the password.
type QueryExecutor interface {
	Query(ctx context.Context, target QueryTarget, sql string, limits QueryLimits) (QueryResult, error)
}

// QuestionTranslator proposes one SELECT for a question over the tables
// (and columns) given, in the source kind's dialect. Translator names who
// wrote it ("builtin", "llm:MODEL"). Its output is untrusted: the guard
// judges it.
type QuestionTranslator interface {
	Translate(ctx context.Context, kind datasources.Kind, tables []datasources.Table, question string) (sql, translator string, err error)
}

// DataKeys hands out organizations' data keys (sealing/keyring).
type DataKeys interface {
	DataKey(ctx context.Context, orgID string) (sealing.DataKey, error)
	// DataKeyVersion returns the version a value was sealed under.
	DataKeyVersion(ctx context.Context, orgID string, version uint32) (sealing.DataKey, error)
}

// Analytics handles the commands of analytics jobs: submitting a question
// or a SQL statement against a data source, and cancelling a job. The
// work itself is done by the analytics process ([AnalyticsRunner]).
type Analytics struct {
	p       *Pipeline
	running *runningQueries
}

// NewAnalytics returns the analytics handlers over p.
func NewAnalytics(p *Pipeline) *Analytics {
	return &Analytics{p: p, running: newRunningQueries()}
}

func analyticsStream(orgID, id string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(analytics.Category, orgID, id)
}

func newAnalyticsJob() aggregate { return &analyticsJob{} }

// AnalyticsRequest is one question (or one SQL statement) for a source.
type AnalyticsRequest struct {
	DataSourceID string
	Question     string
	SQL          string
}

// AnalyticsJobAccepted is what submitting a job returns.
type AnalyticsJobAccepted struct {
	Result
	Job *analytics.AnalyticsJobSubmitted
}

// Submit records a new analytics job. The principal needs analytics:run
// in the organization, and must be able to query the source now
// (datasources.DecideQuery against the source's own stream); a source
// that does not exist, is deleted or that the principal may not query is
// not found, whichever it is.
func (a *Analytics) Submit(ctx context.Context, who access.Principal, in AnalyticsRequest) (AnalyticsJobAccepted, error) {
	p := a.p
	if _, err := p.authorize(ctx, who, access.AnalyticsRun, access.OrgResource(who.OrgID), "analytics/jobs"); err != nil {
		return AnalyticsJobAccepted{}, err
	}
	_, d, err := a.queryableSource(ctx, who, in.DataSourceID)
	if err != nil {
		return AnalyticsJobAccepted{}, err
	}
	id := newResourceID(ctx, who)
	stream, err := analyticsStream(who.OrgID, id)
	if err != nil {
		return AnalyticsJobAccepted{}, err
	}
	res, err := p.create(ctx, who, d, stream, newAnalyticsJob, func(ag aggregate) ([]domain.Event, error) {
		if ag.(*analyticsJob).State() != "" {
			return p.existing(ctx, "analytics job")
		}
		by, byKind, botID := askerOf(who)
		return analytics.Submit(id, in.DataSourceID, in.Question, in.SQL, by, byKind, botID)
	})
	if err != nil {
		return AnalyticsJobAccepted{}, err
	}
	e, res, err := created[*analytics.AnalyticsJobSubmitted](ctx, p, stream, res)
	if err != nil {
		return AnalyticsJobAccepted{}, err
	}
	return AnalyticsJobAccepted{Result: res, Job: e}, nil
}

// askerOf is who a job asks for: the principal itself, or for a bot's
// call the invoker the bot acts for (the outermost of its delegation
// chain), with the bot named apart. The event's actor keeps the chain.
func askerOf(who access.Principal) (by, byKind, botID string) {
	if len(who.OnBehalfOf) == 0 {
		return who.Subject, string(who.Kind), ""
	}
	if who.Kind == access.KindBot {
		botID = who.Subject
	}
	return who.OnBehalfOf[0], string(who.InvokerKind), botID
}

// queryableSource loads a source of the principal's organization that it
// may query. Anything else is the not-found of a source that does not
// exist; a refusal is recorded.
func (a *Analytics) queryableSource(ctx context.Context, who access.Principal, id string) (*datasources.DataSource, access.Decision, error) {
	notFound := fmt.Errorf("%w: data source", domain.ErrNotFound)
	stream, err := sourceStream(who.OrgID, id)
	if err != nil {
		return nil, access.Decision{}, notFound
	}
	src := &datasources.DataSource{}
	if _, _, err := a.p.load(ctx, stream, src); err != nil {
		return nil, access.Decision{}, err
	}
	if !src.Exists() {
		return nil, access.Decision{}, notFound
	}
	d := datasources.DecideQuery(who, datasources.Resource(who.OrgID, src.Grants()))
	if !d.Allowed {
		a.p.RecordDenial(ctx, who, d, "data-sources/"+id)
		return nil, d, notFound
	}
	return src, d, nil
}

// Cancel asks to stop a job: one not started yet is cancelled at once; a
// running one is told to stop, and its query is cancelled on the
// database. It needs analytics:run or analytics:read in the organization;
// then only the asker, the bot that asked for it (acting for the same
// asker), or an owner or admin, may cancel: anyone else gets the not-found
// of a job that does not exist.
func (a *Analytics) Cancel(ctx context.Context, who access.Principal, id string) (Result, error) {
	p := a.p
	if !access.Decide(who, access.AnalyticsRun, access.OrgResource(who.OrgID)).Allowed {
		if _, err := p.authorize(ctx, who, access.AnalyticsRead, access.OrgResource(who.OrgID), "analytics/jobs/"+id); err != nil {
			return Result{}, err
		}
	}
	notFound := fmt.Errorf("%w: analytics job", domain.ErrNotFound)
	stream, err := analyticsStream(who.OrgID, id)
	if err != nil {
		return Result{}, notFound
	}
	job := &analyticsJob{}
	if _, _, err := p.load(ctx, stream, job); err != nil {
		return Result{}, err
	}
	if job.State() == "" {
		return Result{}, notFound
	}
	d, ok := mayCancel(who, job)
	if !ok {
		p.RecordDenial(ctx, who, d, "analytics/jobs/"+id)
		return Result{}, notFound
	}
	res, err := p.execute(ctx, who, d, stream, newAnalyticsJob, func(ag aggregate) ([]domain.Event, error) {
		return ag.(*analyticsJob).RequestCancel(who.Subject)
	})
	if err != nil {
		return Result{}, err
	}
	a.running.cancel(stream)
	return res, nil
}

// mayCancel says whether who may cancel job: its asker, the bot that
// asked for it acting for that asker, or an owner or admin acting
// directly.
func mayCancel(who access.Principal, job *analyticsJob) (access.Decision, bool) {
	d := access.Decide(who, access.AnalyticsRun, access.OrgResource(who.OrgID))
	if !d.Allowed {
		d = access.Decide(who, access.AnalyticsRead, access.OrgResource(who.OrgID))
	}
	if !d.Allowed {
		return d, false
	}
	if job.RequestedBy() == who.Subject && len(who.OnBehalfOf) == 0 {
		return d, true
	}
	if by, _, botID := askerOf(who); botID != "" && job.BotID() == botID && job.RequestedBy() == by {
		return d, true
	}
	if len(who.OnBehalfOf) == 0 && (slices.Contains(who.Roles, access.RoleOwner) || slices.Contains(who.Roles, access.RoleAdmin)) {
		return access.Decision{Allowed: true, Code: access.ReasonManagerOverride, Permission: access.AnalyticsRun, Role: managerRole(who.Roles)}, true
	}
	return access.Decision{Permission: access.AnalyticsRun, Code: access.ReasonNoGrant}, false
}

func managerRole(roles []access.Role) access.Role {
	if slices.Contains(roles, access.RoleOwner) {
		return access.RoleOwner
	}
	return access.RoleAdmin
}

// analyticsJob is the job aggregate with what a process needs to report
// an outcome already recorded.
type analyticsJob struct {
	analytics.Job
	stage, reason string
	rows          int
}

func (j *analyticsJob) Apply(e domain.Event) {
	j.Job.Apply(e)
	switch e := e.(type) {
	case *analytics.AnalyticsJobFailed:
		j.stage, j.reason = e.Stage, e.Reason
	case *analytics.AnalyticsJobCancelled:
		j.reason = e.Reason
	case *analytics.AnalyticsJobSucceeded:
		j.rows = e.RowCount
	}
}

// runningQueries are the cancel functions of the queries this process
// runs, by the stream of their job.
type runningQueries struct {
	mu      sync.Mutex
	cancels map[eventstore.StreamName]context.CancelFunc
}

func newRunningQueries() *runningQueries {
	return &runningQueries{cancels: map[eventstore.StreamName]context.CancelFunc{}}
}

// register makes a cancel of stream's job call cancel, until the returned
// function is called.
func (r *runningQueries) register(stream eventstore.StreamName, cancel context.CancelFunc) func() {
	r.mu.Lock()
	r.cancels[stream] = cancel
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.cancels, stream)
		r.mu.Unlock()
	}
}

// cancel cancels stream's running query, if this process runs one.
func (r *runningQueries) cancel(stream eventstore.StreamName) {
	r.mu.Lock()
	cancel := r.cancels[stream]
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
