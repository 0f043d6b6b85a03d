package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/datasources"
)

// SourceGrants says whether a data source of an organization exists (and
// is not deleted) and what its grants are now.
type SourceGrants interface {
	SourceGrants(ctx context.Context, orgID, id string) ([]datasources.Grant, bool, error)
}

// AnalyticsResult is a job's result: its columns and rows, each row one
// value per column.
type AnalyticsResult struct {
	Columns   []analytics.Column `json:"columns"`
	Rows      []json.RawMessage  `json:"rows"`
	RowCount  int                `json:"row_count"`
	Truncated bool               `json:"truncated"`
}

// ErrNoResult is the refusal of a result of a job that has not
// succeeded; it matches domain.ErrConflict.
var ErrNoResult = fmt.Errorf("%w: the analytics job has no result (it has not succeeded)", domain.ErrConflict)

// AnalyticsQueries answers reads of analytics jobs and their results. A
// job is readable by its asker, and by a principal holding analytics:read
// who may also query or manage its data source now. Anyone else, and
// every other organization, gets the not-found of a job that does not
// exist.
type AnalyticsQueries struct {
	jobs    AnalyticsModel
	sources SourceGrants
	denials DenialRecorder
}

// NewAnalyticsQueries returns the analytics query service.
func NewAnalyticsQueries(jobs AnalyticsModel, sources SourceGrants, denials DenialRecorder) *AnalyticsQueries {
	return &AnalyticsQueries{jobs: jobs, sources: sources, denials: denials}
}

// Jobs lists, by id after page.After, the jobs the caller may read: its
// own, and with analytics:read those of the sources it may query or
// manage now.
func (q *AnalyticsQueries) Jobs(ctx context.Context, who access.Principal, page Page) ([]AnalyticsJob, error) {
	scope, err := authorizeOrg(ctx, q.denials, who, access.OrgRead, "analytics/jobs")
	if err != nil {
		return nil, err
	}
	if !access.Decide(who, access.AnalyticsRead, access.OrgResource(who.OrgID)).Allowed {
		return q.jobs.AnalyticsJobs(ctx, scope, AnalyticsJobQuery{CreatedBy: who.Subject, CreatedByKind: string(who.Kind), Page: page})
	}
	limit := PageLimit(page.Limit)
	out := []AnalyticsJob{}
	readable := map[string]bool{} // by source, decided once per call
	for {
		batch, err := q.jobs.AnalyticsJobs(ctx, scope, AnalyticsJobQuery{Page: Page{After: page.After, Limit: limit}})
		if err != nil {
			return nil, err
		}
		for _, j := range batch {
			ok, seen := readable[j.DataSourceID]
			if !seen {
				if ok, err = q.sourceReadable(ctx, who, j.DataSourceID); err != nil {
					return nil, err
				}
				readable[j.DataSourceID] = ok
			}
			if ok || q.asked(who, j) {
				out = append(out, j)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if len(batch) < limit {
			return out, nil
		}
		page.After = batch[len(batch)-1].ID
	}
}

// Job returns one job the caller may read.
func (q *AnalyticsQueries) Job(ctx context.Context, who access.Principal, id string) (AnalyticsJob, error) {
	resource := "analytics/jobs/" + id
	scope, err := authorizeOrg(ctx, q.denials, who, access.OrgRead, resource)
	if err != nil {
		return AnalyticsJob{}, err
	}
	j, err := q.jobs.AnalyticsJob(ctx, scope, id)
	if err != nil {
		return AnalyticsJob{}, err
	}
	if q.asked(who, j) {
		return j, nil
	}
	d := access.Decide(who, access.AnalyticsRead, access.OrgResource(who.OrgID))
	if d.Allowed {
		ok, err := q.sourceReadable(ctx, who, j.DataSourceID)
		if err != nil {
			return AnalyticsJob{}, err
		}
		if ok {
			return j, nil
		}
		d = access.Decision{Permission: access.DatasourcesQuery, Code: access.ReasonNoGrant}
	}
	q.denials.RecordDenial(ctx, who, d, resource)
	return AnalyticsJob{}, fmt.Errorf("analytics job: %w", domain.ErrNotFound)
}

// Result returns the rows of a job that succeeded, to whoever may read
// the job; a job that has not succeeded is ErrNoResult.
func (q *AnalyticsQueries) Result(ctx context.Context, who access.Principal, id string) (AnalyticsJob, AnalyticsResult, error) {
	j, err := q.Job(ctx, who, id)
	if err != nil {
		return AnalyticsJob{}, AnalyticsResult{}, err
	}
	if j.State != string(analytics.Succeeded) {
		return j, AnalyticsResult{}, ErrNoResult
	}
	scope, err := who.Scope()
	if err != nil {
		return AnalyticsJob{}, AnalyticsResult{}, err
	}
	res, err := q.result(ctx, scope, j)
	if err != nil {
		return AnalyticsJob{}, AnalyticsResult{}, err
	}
	return j, res, nil
}

// result reads the rows of j, which succeeded.
func (q *AnalyticsQueries) result(ctx context.Context, scope access.Scope, j AnalyticsJob) (AnalyticsResult, error) {
	pages, err := q.jobs.AnalyticsResult(ctx, scope, j.ID)
	if err != nil {
		return AnalyticsResult{}, err
	}
	res := AnalyticsResult{Columns: j.Columns, Rows: make([]json.RawMessage, 0, j.RowCount), RowCount: j.RowCount, Truncated: j.Truncated}
	for i, p := range pages {
		var rows []json.RawMessage
		if err := json.Unmarshal(p, &rows); err != nil {
			return AnalyticsResult{}, fmt.Errorf("analytics job %s: result page %d: %w", j.ID, i, err)
		}
		res.Rows = append(res.Rows, rows...)
	}
	return res, nil
}

// Asked returns a job who submitted, with its result once it succeeded,
// for a bot's tool waiting on the job it asked for. It needs only
// analytics:run (what submitting needed); a job who did not submit is the
// not-found of a job that does not exist.
func (q *AnalyticsQueries) Asked(ctx context.Context, who access.Principal, id string) (AnalyticsJob, AnalyticsResult, error) {
	resource := "analytics/jobs/" + id
	scope, err := authorizeOrg(ctx, q.denials, who, access.AnalyticsRun, resource)
	if err != nil {
		return AnalyticsJob{}, AnalyticsResult{}, err
	}
	j, err := q.jobs.AnalyticsJob(ctx, scope, id)
	if err != nil {
		return AnalyticsJob{}, AnalyticsResult{}, err
	}
	if !q.asked(who, j) {
		q.denials.RecordDenial(ctx, who, access.Decision{Permission: access.AnalyticsRun, Code: access.ReasonNoGrant}, resource)
		return AnalyticsJob{}, AnalyticsResult{}, fmt.Errorf("analytics job: %w", domain.ErrNotFound)
	}
	if j.State != string(analytics.Succeeded) {
		return j, AnalyticsResult{}, nil
	}
	res, err := q.result(ctx, scope, j)
	return j, res, err
}

// asked reports whether who submitted j: its asker acting directly, or the
// bot that asked for it acting for that asker (the bot's principal names
// the asker first in its delegation chain).
func (q *AnalyticsQueries) asked(who access.Principal, j AnalyticsJob) bool {
	if len(who.OnBehalfOf) == 0 {
		return j.CreatedBy == who.Subject && j.CreatedByKind == string(who.Kind)
	}
	return who.Kind == access.KindBot && j.BotID == who.Subject &&
		j.CreatedBy == who.OnBehalfOf[0] && j.CreatedByKind == string(who.InvokerKind)
}

// sourceReadable reports whether who may query or manage the source now.
func (q *AnalyticsQueries) sourceReadable(ctx context.Context, who access.Principal, sourceID string) (bool, error) {
	grants, exists, err := q.sources.SourceGrants(ctx, who.OrgID, sourceID)
	if err != nil || !exists {
		return false, err
	}
	res := datasources.Resource(who.OrgID, grants)
	return datasources.DecideQuery(who, res).Allowed || access.Decide(who, access.DatasourcesManage, res).Allowed, nil
}
