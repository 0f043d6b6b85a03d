package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Jobs is the PostgreSQL adapter of projections.JobModel.
type Jobs struct{ db *db }

var _ projections.JobModel = (*Jobs)(nil)

const (
	jobColumns = `id, kind, subject, trigger_id, state, attempts, result, items, reason,
		submitted_by, on_behalf_of, submitted_at, updated_at, version`
	jobSQL = `SELECT ` + jobColumns + ` FROM jobs WHERE org_id = $1 AND id = $2`
	// jobsSQL lists by id after $3 ("" before the first), with the filter's
	// kind ($4) and state ($5) when not empty.
	jobsSQL = `SELECT ` + jobColumns + ` FROM jobs WHERE org_id = $1 AND id > $3
		AND ($4 = '' OR kind = $4) AND ($5 = '' OR state = $5) ORDER BY id LIMIT $2`
	putJobSQL = `INSERT INTO jobs (org_id, ` + jobColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (org_id, id) DO UPDATE SET kind = EXCLUDED.kind, subject = EXCLUDED.subject,
			trigger_id = EXCLUDED.trigger_id, state = EXCLUDED.state, attempts = EXCLUDED.attempts,
			result = EXCLUDED.result, items = EXCLUDED.items, reason = EXCLUDED.reason,
			submitted_by = EXCLUDED.submitted_by, on_behalf_of = EXCLUDED.on_behalf_of,
			submitted_at = EXCLUDED.submitted_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version`
)

func (m *Jobs) Job(ctx context.Context, scope access.Scope, id string) (projections.Job, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Job{}, err
	}
	return getOne(ctx, m.db, org, "job", jobSQL, []any{org, id}, scanJob)
}

func (m *Jobs) Jobs(ctx context.Context, scope access.Scope, filter projections.JobFilter, page projections.Page) ([]projections.Job, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return list(ctx, m.db, org, "jobs", jobsSQL, []any{org, limitOf(page.Limit), page.After, filter.Kind, filter.State}, scanJob)
}

func (m *Jobs) PutJob(ctx context.Context, scope access.Scope, j projections.Job) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	onBehalfOf := j.OnBehalfOf
	if onBehalfOf == nil {
		onBehalfOf = []string{}
	}
	return put(ctx, m.db, org, "put job", putJobSQL, org, j.ID, j.Kind, j.Subject, j.TriggerID, j.State, j.Attempts,
		j.Result, j.Items, j.Reason, j.SubmittedBy, onBehalfOf, j.SubmittedAt, j.UpdatedAt, int64(j.Version))
}

// PurgeOrg drops every job of the organization.
func (m *Jobs) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, m.db, scope, "jobs")
}

func scanJob(rows pgx.Rows) (projections.Job, error) {
	var (
		j       projections.Job
		version int64
	)
	err := rows.Scan(&j.ID, &j.Kind, &j.Subject, &j.TriggerID, &j.State, &j.Attempts, &j.Result, &j.Items, &j.Reason,
		&j.SubmittedBy, &j.OnBehalfOf, &j.SubmittedAt, &j.UpdatedAt, &version)
	if err != nil {
		return j, err
	}
	j.SubmittedAt, j.UpdatedAt, j.Version = j.SubmittedAt.UTC(), j.UpdatedAt.UTC(), uint64(version)
	return j, nil
}
