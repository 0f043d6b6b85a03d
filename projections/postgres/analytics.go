package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Analytics is the PostgreSQL adapter of projections.AnalyticsModel. A
// job's record is kept as JSON beside the columns its lists filter on.
type Analytics struct{ db *db }

var _ projections.AnalyticsModel = (*Analytics)(nil)

const (
	analyticsJobSQL  = `SELECT job, version FROM analytics_jobs WHERE org_id = $1 AND id = $2`
	analyticsJobsSQL = `SELECT job, version FROM analytics_jobs WHERE org_id = $1`
	putAnalyticsJob  = `INSERT INTO analytics_jobs (org_id, id, created_by, created_by_kind, data_source_id, state, version, job)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (org_id, id) DO UPDATE SET created_by = EXCLUDED.created_by, created_by_kind = EXCLUDED.created_by_kind,
			data_source_id = EXCLUDED.data_source_id, state = EXCLUDED.state, version = EXCLUDED.version, job = EXCLUDED.job`
	analyticsResultSQL = `SELECT rows FROM analytics_result_pages WHERE org_id = $1 AND job_id = $2 ORDER BY page`
	putAnalyticsPage   = `INSERT INTO analytics_result_pages (org_id, job_id, page, rows) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id, job_id, page) DO UPDATE SET rows = EXCLUDED.rows`
)

// analyticsRecord is what the job column holds: the record with the
// fields its JSON form leaves out.
type analyticsRecord struct {
	projections.AnalyticsJob
	Pages int `json:"pages"`
}

func scanAnalyticsJob(rows pgx.Rows) (projections.AnalyticsJob, error) {
	var (
		raw     []byte
		version int64
		rec     analyticsRecord
	)
	if err := rows.Scan(&raw, &version); err != nil {
		return projections.AnalyticsJob{}, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return projections.AnalyticsJob{}, fmt.Errorf("analytics job record: %w", err)
	}
	j := rec.AnalyticsJob
	j.Pages, j.Version = rec.Pages, uint64(version)
	j.Timings.SubmittedAt = j.Timings.SubmittedAt.UTC()
	if j.Timings.StartedAt != nil {
		at := j.Timings.StartedAt.UTC()
		j.Timings.StartedAt = &at
	}
	if j.Timings.FinishedAt != nil {
		at := j.Timings.FinishedAt.UTC()
		j.Timings.FinishedAt = &at
	}
	return j, nil
}

func (a *Analytics) AnalyticsJob(ctx context.Context, scope access.Scope, id string) (projections.AnalyticsJob, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.AnalyticsJob{}, err
	}
	return getOne(ctx, a.db, org, "analytics job", analyticsJobSQL, []any{org, id}, scanAnalyticsJob)
}

func (a *Analytics) AnalyticsJobs(ctx context.Context, scope access.Scope, q projections.AnalyticsJobQuery) ([]projections.AnalyticsJob, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	sql, args := analyticsJobsSQL, []any{org}
	condition := func(column, value string) {
		if value != "" {
			args = append(args, value)
			sql += fmt.Sprintf(` AND %s = $%d`, column, len(args))
		}
	}
	condition("created_by", q.CreatedBy)
	condition("created_by_kind", q.CreatedByKind)
	if q.Page.After != "" {
		args = append(args, q.Page.After)
		sql += fmt.Sprintf(` AND id > $%d`, len(args))
	}
	args = append(args, limitOf(q.Page.Limit))
	sql += fmt.Sprintf(` ORDER BY id LIMIT $%d`, len(args))
	return list(ctx, a.db, org, "analytics jobs", sql, args, scanAnalyticsJob)
}

func (a *Analytics) PutAnalyticsJob(ctx context.Context, scope access.Scope, j projections.AnalyticsJob) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(analyticsRecord{AnalyticsJob: j, Pages: j.Pages})
	if err != nil {
		return fmt.Errorf("put analytics job %s: %w", j.ID, err)
	}
	return put(ctx, a.db, org, "put analytics job", putAnalyticsJob, org, j.ID, j.CreatedBy, j.CreatedByKind,
		j.DataSourceID, j.State, int64(j.Version), string(raw))
}

func (a *Analytics) AnalyticsResult(ctx context.Context, scope access.Scope, jobID string) ([]json.RawMessage, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return list(ctx, a.db, org, "analytics result", analyticsResultSQL, []any{org, jobID}, func(rows pgx.Rows) (json.RawMessage, error) {
		var raw []byte
		err := rows.Scan(&raw)
		return json.RawMessage(raw), err
	})
}

func (a *Analytics) PutAnalyticsPage(ctx context.Context, scope access.Scope, jobID string, page int, rows json.RawMessage) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, a.db, org, "put analytics page", putAnalyticsPage, org, jobID, page, string(rows))
}
