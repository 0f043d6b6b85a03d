package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sqlguard"
)

// untestedSource is the failure of a job that needs the schema snapshot of
// a source never tested successfully.
const untestedSource = "test the data source first: its schema snapshot is needed"

// run runs the job that trigger (its AnalyticsJobSubmitted) started, as a
// job of RunJob: re-authorize the asker, start, translate, guard, plan,
// query, record the result. Every step is recorded on the analytics
// stream with its expected version.
func (r *AnalyticsRunner) run(ctx context.Context, trigger eventstore.Envelope) error {
	decoded, err := r.p.registry.Decode(trigger.Type, trigger.Data)
	if err != nil {
		return fmt.Errorf("analytics job %s: %w", trigger.Stream, err)
	}
	submitted, ok := decoded.(*analytics.AnalyticsJobSubmitted)
	if !ok {
		return fmt.Errorf("analytics job %s: trigger is %s", trigger.Stream, trigger.Type)
	}
	spec := JobSpec{
		Kind: AnalyticsJobKind, Process: "analytics", Subject: trigger.Stream, Key: "query",
		Grants:    access.NewPermissionSet(access.AnalyticsRun, access.DatasourcesQuery),
		ActorGone: "the asker is no longer a member or live service account",
	}
	var source *datasources.DataSource
	authorize := func(ctx context.Context, invoker, as access.Principal) (access.Decision, string, error) {
		org := access.OrgResource(trigger.OrgID)
		if d := access.Decide(invoker, access.AnalyticsRun, org); !d.Allowed {
			return d, "re-authorization at execution: " + d.Reason(), nil
		}
		src, err := r.loadSource(ctx, trigger.OrgID, submitted.DataSourceID)
		if err != nil {
			return access.Decision{}, "", err
		}
		if !src.Exists() {
			return access.Decision{}, "the data source was deleted", nil
		}
		// The invoker, not the process principal: a process never queries
		// as a manager, and the grants name the invoker.
		d := datasources.DecideQuery(invoker, datasources.Resource(trigger.OrgID, src.Grants()))
		if !d.Allowed {
			return d, "re-authorization at execution: " + d.Reason(), nil
		}
		if !as.Permissions.Has(access.AnalyticsRun) || !as.Permissions.Has(access.DatasourcesQuery) {
			return d, "re-authorization at execution: the process holds neither analytics:run nor datasources:query for the asker", nil
		}
		refusal, err := r.botsGrantSource(ctx, trigger.OrgID, trigger.Actor, submitted.DataSourceID)
		if err != nil {
			return access.Decision{}, "", err
		}
		if refusal != "" {
			d := access.Decision{Code: access.ReasonResourceNotGranted, Permission: access.DatasourcesQuery}
			return d, "re-authorization at execution: " + refusal, nil
		}
		source = src
		if !as.Permissions.Has(d.Permission) {
			// A manager's query: the process records with its own
			// decision (the pipeline decides it again for the process,
			// which never holds datasources:manage).
			d = access.Decide(as, access.DatasourcesQuery, org)
		}
		return d, "", nil
	}
	work := func(ctx context.Context, run JobRun) (JobOutcome, error) {
		j := &jobRun{r: r, stream: trigger.Stream, org: trigger.OrgID, submitted: submitted, as: run.As, d: run.Decision, began: time.Now()}
		return j.do(ctx, run.Refusal, source)
	}
	return r.p.RunJob(ctx, trigger, r.actors, spec, authorize, work)
}

// botsGrantSource says why a job that a bot submitted (query_data) may no
// longer run on the source: every bot of the actor's chain must still be
// granted it, as the tool required at submission. The actor's current
// permissions are re-resolved by RunJob; a bot's resource grants are not
// permissions, so they are read here. It returns "" when they all are,
// and for a job no bot submitted.
func (r *AnalyticsRunner) botsGrantSource(ctx context.Context, orgID string, actor eventstore.Actor, sourceID string) (string, error) {
	if access.Kind(actor.Kind) != access.KindBot {
		return "", nil
	}
	if len(actor.OnBehalfOf) == 0 {
		return "a bot submitted the job for no recorded invoker", nil
	}
	chain := append(slices.Clone(actor.OnBehalfOf[1:]), actor.Subject)
	for _, id := range chain {
		bot, err := r.p.currentBot(ctx, orgID, id)
		var archived *domain.ArchivedError
		switch {
		case errors.Is(err, domain.ErrNotFound) || errors.As(err, &archived):
			return fmt.Sprintf("bot %s is archived or gone", id), nil
		case err != nil:
			return "", fmt.Errorf("read bot %s as it is now: %w", id, err)
		case !slices.Contains(bot.Grants.DataSources, sourceID):
			return fmt.Sprintf("bot %s is no longer granted the data source", id), nil
		}
	}
	return "", nil
}

func (r *AnalyticsRunner) loadSource(ctx context.Context, orgID, id string) (*datasources.DataSource, error) {
	src := &datasources.DataSource{}
	stream, err := sourceStream(orgID, id)
	if err != nil {
		return src, nil // no such source
	}
	if _, _, err := r.p.load(ctx, stream, src); err != nil {
		return nil, err
	}
	return src, nil
}

// jobRun is one attempt at one analytics job.
type jobRun struct {
	r         *AnalyticsRunner
	stream    eventstore.StreamName
	org       string
	submitted *analytics.AnalyticsJobSubmitted
	as        access.Principal
	d         access.Decision
	began     time.Time
}

func (j *jobRun) elapsed() int64 { return time.Since(j.began).Milliseconds() }

// do runs the attempt. An error leaves the job running, to be resumed.
func (j *jobRun) do(ctx context.Context, refusal string, source *datasources.DataSource) (JobOutcome, error) {
	// Registered before the start is recorded: a cancel asked after the
	// start read the stream finds the query's context here.
	queryCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer j.r.running.register(j.stream, cancel)()

	attempt, err := j.attempt(ctx)
	if err != nil {
		return JobOutcome{}, err
	}
	job, err := j.record(ctx, func(job *analyticsJob) ([]domain.Event, error) {
		if refusal != "" {
			return job.Fail(analytics.StageAuthorize, refusal, "", 0)
		}
		return job.Start(attempt)
	})
	if err != nil || job.State().Terminal() {
		return outcomeOf(job), err
	}
	if source == nil || !source.Exists() {
		return j.fail(ctx, analytics.StageAuthorize, "the data source was deleted", "")
	}

	sql, translator := j.submitted.SQL, "sql"
	if j.submitted.Question != "" {
		tables := translationSchema(source)
		if len(tables) == 0 {
			return j.fail(ctx, analytics.StageTranslate, untestedSource, "")
		}
		sql, translator, err = j.translate(ctx, source.Kind(), tables)
		if err != nil {
			if ctx.Err() != nil {
				return JobOutcome{}, ctx.Err()
			}
			return j.fail(ctx, analytics.StageTranslate, err.Error(), "")
		}
	}

	policy, missing := guardPolicy(source)
	if missing != "" {
		return j.fail(ctx, analytics.StageGuard, fmt.Sprintf("%s (the guard needs the columns of table %s)", untestedSource, missing), sql)
	}
	verdict, err := sqlguard.Check(ctx, policy, sql)
	var rejected *sqlguard.RejectedError
	switch {
	case errors.As(err, &rejected):
		return j.fail(ctx, analytics.StageGuard, rejected.Reason, sql)
	case err != nil:
		return j.fail(ctx, analytics.StageGuard, "the guard could not check the query: "+err.Error(), sql)
	}
	tables := verdict.Tables
	if tables == nil {
		tables = []string{}
	}
	job, err = j.record(ctx, func(job *analyticsJob) ([]domain.Event, error) {
		if job.CancelRequested() {
			return job.Cancel("cancelled before the query ran", j.elapsed())
		}
		return job.Plan(sql, translator, tables)
	})
	if err != nil || job.State().Terminal() {
		return outcomeOf(job), err
	}

	target, err := j.target(ctx, source)
	if err != nil {
		return j.fail(ctx, analytics.StageExecute, err.Error(), sql)
	}
	limits := QueryLimits{Timeout: j.r.deps.Timeout, MaxRows: analytics.MaxRows, MaxBytes: analytics.MaxResultBytes}
	result, err := j.query(queryCtx, source.Kind(), target, sql, limits)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return JobOutcome{}, ctx.Err() // stopping: the job resumes at the next start
	case queryCtx.Err() != nil:
		job, err := j.record(ctx, func(job *analyticsJob) ([]domain.Event, error) {
			return job.Cancel("cancelled while the query ran", j.elapsed())
		})
		return outcomeOf(job), err
	case errors.Is(err, ErrQueryTimeout):
		return j.fail(ctx, analytics.StageExecute, fmt.Sprintf("the query ran longer than %s and was stopped on the database", j.r.deps.Timeout), sql)
	default:
		return j.fail(ctx, analytics.StageExecute, err.Error(), sql)
	}

	pages, summary, err := resultPages(result)
	if err != nil {
		return j.fail(ctx, analytics.StageExecute, err.Error(), sql)
	}
	summary.DurationMS = j.elapsed()
	job, err = j.record(ctx, func(job *analyticsJob) ([]domain.Event, error) {
		return job.Succeed(pages, summary)
	})
	return outcomeOf(job), err
}

// attempt is the number of the attempt RunJob just started.
func (j *jobRun) attempt(ctx context.Context) (int, error) {
	stream, err := eventstore.NewStreamName(jobs.Category, j.org, JobID(j.stream, "query"))
	if err != nil {
		return 0, err
	}
	job := &jobs.Job{}
	if _, _, err := j.r.p.load(ctx, stream, job); err != nil {
		return 0, err
	}
	return max(job.Attempts(), 1), nil
}

// record decides on the job's stream and appends at the version read,
// returning the job as it is after. A job that ended meanwhile records
// nothing more.
func (j *jobRun) record(ctx context.Context, decide func(*analyticsJob) ([]domain.Event, error)) (*analyticsJob, error) {
	after := &analyticsJob{}
	_, err := j.r.p.execute(ctx, j.as, j.d, j.stream, newAnalyticsJob, func(a aggregate) ([]domain.Event, error) {
		job := a.(*analyticsJob)
		after = job
		if job.State().Terminal() {
			return nil, nil
		}
		evs, err := decide(job)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			job.Apply(e)
		}
		return evs, nil
	})
	return after, err
}

// fail records why the job ended without a result.
func (j *jobRun) fail(ctx context.Context, stage, reason, sql string) (JobOutcome, error) {
	job, err := j.record(ctx, func(job *analyticsJob) ([]domain.Event, error) {
		return job.Fail(stage, reason, sql, j.elapsed())
	})
	return outcomeOf(job), err
}

// target opens the source's password for the query. Its errors never
// carry the password, sealed or not.
func (j *jobRun) target(ctx context.Context, source *datasources.DataSource) (QueryTarget, error) {
	conn := source.Connection()
	sealedText := conn.SealedPassword
	conn.SealedPassword = ""
	t := QueryTarget{OrgID: j.org, Kind: source.Kind(), Connection: conn}
	for _, table := range source.AllowedTables() {
		t.Tables = append(t.Tables, table.Name)
	}
	if sealedText == "" {
		return t, nil
	}
	var sealed sealing.Sealed
	if err := sealed.UnmarshalText([]byte(sealedText)); err != nil {
		return QueryTarget{}, errors.New("the data source's password could not be read")
	}
	key, err := j.r.deps.Keys.DataKeyVersion(ctx, j.org, sealed.KeyVersion)
	if err != nil {
		return QueryTarget{}, errors.New("the organization's data key is not available")
	}
	plain, err := sealing.Open(key, j.org, sealed, datasources.PasswordPurpose(source.ID()))
	if err != nil {
		return QueryTarget{}, errors.New("the data source's password could not be opened")
	}
	t.Password = sealing.NewSecret(string(plain))
	return t, nil
}

// translationSchema is what a translator may see of a source: its last
// schema snapshot, restricted to the allow-listed tables and, where the
// allow-list names them, columns. Empty when the source has no snapshot.
func translationSchema(source *datasources.DataSource) []datasources.Table {
	snapshot := map[string]datasources.Table{}
	for _, t := range source.Schema().Tables {
		snapshot[t.Name] = t
	}
	var out []datasources.Table
	for _, allowed := range source.AllowedTables() {
		t, ok := snapshot[allowed.Name]
		if !ok {
			continue
		}
		if len(allowed.Columns) > 0 {
			keep := map[string]bool{}
			for _, c := range allowed.Columns {
				keep[c] = true
			}
			var cols []datasources.Column
			for _, c := range t.Columns {
				if keep[c.Name] {
					cols = append(cols, c)
				}
			}
			t.Columns = cols
		}
		out = append(out, t)
	}
	return out
}

// guardPolicy is the guard's policy of a source: its allow-listed tables.
// A table whose allow-list names columns is restricted to them in every
// dialect, and its other snapshot columns are passed as hidden (SQLite
// resolves names against them); an unrestricted table carries its
// snapshot columns, which SQLite needs. missing names a SQLite table
// without any.
func guardPolicy(source *datasources.DataSource) (policy sqlguard.Policy, missing string) {
	snapshot := map[string][]string{}
	for _, t := range source.Schema().Tables {
		for _, c := range t.Columns {
			snapshot[t.Name] = append(snapshot[t.Name], c.Name)
		}
	}
	policy.Dialect = dialectOf(source.Kind())
	for _, allowed := range source.AllowedTables() {
		table := sqlguard.Table{Name: allowed.Name, Columns: snapshot[allowed.Name]}
		if len(allowed.Columns) > 0 {
			table = sqlguard.Table{Name: allowed.Name, Columns: allowed.Columns, Restricted: true}
			for _, c := range snapshot[allowed.Name] {
				if !slices.Contains(allowed.Columns, c) {
					table.Hidden = append(table.Hidden, c)
				}
			}
		}
		if len(table.Columns) == 0 && policy.Dialect == sqlguard.SQLite && missing == "" {
			missing = allowed.Name
		}
		policy.Tables = append(policy.Tables, table)
	}
	return policy, missing
}

func dialectOf(k datasources.Kind) sqlguard.Dialect {
	switch k {
	case datasources.MySQL:
		return sqlguard.MySQL
	case datasources.SQLite:
		return sqlguard.SQLite
	}
	return sqlguard.Postgres
}

// resultPages cuts a result's rows into pages of at most
// analytics.MaxPageBytes of JSON each. A row too large for a page of its
// own ends the result there, marked truncated (the hash then covers the
// rows kept).
func resultPages(res QueryResult) ([]json.RawMessage, analytics.AnalyticsJobSucceeded, error) {
	var (
		pages []json.RawMessage
		page  = []byte{'['}
		kept  int
		bytes int64
	)
	truncated := res.Truncated
	for _, row := range res.Rows {
		b, err := json.Marshal(row)
		if err != nil {
			return nil, analytics.AnalyticsJobSucceeded{}, fmt.Errorf("encode result row %d: %w", kept, err)
		}
		if len(b)+2 > analytics.MaxPageBytes {
			truncated = true
			break
		}
		if len(page) > 1 && len(page)+len(b)+2 > analytics.MaxPageBytes {
			pages = append(pages, append(page, ']'))
			page = []byte{'['}
		}
		if len(page) > 1 {
			page = append(page, ',')
		}
		page = append(page, b...)
		kept++
		bytes += int64(len(b))
	}
	if len(page) > 1 {
		pages = append(pages, append(page, ']'))
	}
	columns := res.Columns
	if columns == nil {
		columns = []analytics.Column{}
	}
	summary := analytics.AnalyticsJobSucceeded{
		Columns: columns, RowCount: kept, Bytes: res.Bytes, SHA256: res.SHA256, Truncated: truncated,
	}
	if kept < len(res.Rows) || res.SHA256 == "" {
		rows := res.Rows[:kept]
		if rows == nil {
			rows = [][]any{}
		}
		canonical, err := json.Marshal(struct {
			Columns []analytics.Column `json:"columns"`
			Rows    [][]any            `json:"rows"`
		}{columns, rows})
		if err != nil {
			return nil, analytics.AnalyticsJobSucceeded{}, err
		}
		sum := sha256.Sum256(canonical)
		summary.SHA256, summary.Bytes = hex.EncodeToString(sum[:]), bytes+int64(max(kept-1, 0))+2
	}
	return pages, summary, nil
}

// translate asks the translator for the SQL of the job's question, in a
// span of its own (a model call when the translator is a model).
func (j *jobRun) translate(ctx context.Context, kind datasources.Kind, tables []datasources.Table) (sql, translator string, err error) {
	ctx, span := j.r.p.tracer.Start(ctx, "model call translate", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("palisade.datasource.kind", string(kind)), attribute.Int("palisade.tables", len(tables))))
	defer span.End()
	sql, translator, err = j.r.deps.Translator.Translate(ctx, kind, tables, j.submitted.Question)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "translation failed")
		return "", "", err
	}
	span.SetAttributes(attribute.String("palisade.translator", translator))
	return sql, translator, nil
}

// query runs the checked SQL on the data source, in a span of its own.
// The span names the source's kind and the rows returned, never the SQL
// or the rows (content, sealed in the log).
func (j *jobRun) query(ctx context.Context, kind datasources.Kind, target QueryTarget, sql string, limits QueryLimits) (QueryResult, error) {
	ctx, span := j.r.p.tracer.Start(ctx, "query data source", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("palisade.datasource.kind", string(kind))))
	defer span.End()
	result, err := j.r.deps.Executor.Query(ctx, target, sql, limits)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "query failed")
		return result, err
	}
	span.SetAttributes(attribute.Int("palisade.rows", len(result.Rows)))
	return result, nil
}
