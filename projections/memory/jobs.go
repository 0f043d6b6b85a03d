package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Jobs is the memory adapter of projections.JobModel.
type Jobs struct {
	jobs *orgTable[projections.Job]
}

var _ projections.JobModel = (*Jobs)(nil)

// NewJobs returns an empty jobs read model.
func NewJobs() *Jobs {
	return &Jobs{jobs: newOrgTable(func(j projections.Job) projections.Job {
		j.OnBehalfOf = slices.Clone(j.OnBehalfOf)
		return j
	})}
}

func (m *Jobs) Job(_ context.Context, scope access.Scope, id string) (projections.Job, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Job{}, err
	}
	if j, ok := m.jobs.get(org, id); ok {
		return j, nil
	}
	return projections.Job{}, fmt.Errorf("job: %w", domain.ErrNotFound)
}

func (m *Jobs) Jobs(_ context.Context, scope access.Scope, filter projections.JobFilter, page projections.Page) ([]projections.Job, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return m.jobs.page(org, page, filter.Matches), nil
}

func (m *Jobs) PutJob(_ context.Context, scope access.Scope, j projections.Job) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	m.jobs.put(org, j.ID, j)
	return nil
}

// PurgeOrg drops every job of the organization.
func (m *Jobs) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	m.jobs.drop(org)
	return nil
}
