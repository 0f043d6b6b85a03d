package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Analytics is the memory adapter of projections.AnalyticsModel.
type Analytics struct {
	jobs  *orgTable[projections.AnalyticsJob]
	pages *orgTable[json.RawMessage] // by job id and page number
}

var _ projections.AnalyticsModel = (*Analytics)(nil)

// NewAnalytics returns an empty analytics read model.
func NewAnalytics() *Analytics {
	return &Analytics{
		jobs:  newOrgTable(cloneAnalyticsJob),
		pages: newOrgTable(func(r json.RawMessage) json.RawMessage { return slices.Clone(r) }),
	}
}

func cloneAnalyticsJob(j projections.AnalyticsJob) projections.AnalyticsJob {
	j.Tables, j.Columns = slices.Clone(j.Tables), slices.Clone(j.Columns)
	if j.Timings.StartedAt != nil {
		at := *j.Timings.StartedAt
		j.Timings.StartedAt = &at
	}
	if j.Timings.FinishedAt != nil {
		at := *j.Timings.FinishedAt
		j.Timings.FinishedAt = &at
	}
	return j
}

// pageKey orders a job's pages by number under the job's id.
func pageKey(jobID string, page int) string { return fmt.Sprintf("%s\x00%010d", jobID, page) }

func (a *Analytics) AnalyticsJob(_ context.Context, scope access.Scope, id string) (projections.AnalyticsJob, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.AnalyticsJob{}, err
	}
	if j, ok := a.jobs.get(org, id); ok {
		return j, nil
	}
	return projections.AnalyticsJob{}, fmt.Errorf("analytics job: %w", domain.ErrNotFound)
}

func (a *Analytics) AnalyticsJobs(_ context.Context, scope access.Scope, q projections.AnalyticsJobQuery) ([]projections.AnalyticsJob, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return a.jobs.page(org, q.Page, func(j projections.AnalyticsJob) bool {
		return (q.CreatedBy == "" || j.CreatedBy == q.CreatedBy) && (q.CreatedByKind == "" || j.CreatedByKind == q.CreatedByKind)
	}), nil
}

func (a *Analytics) PutAnalyticsJob(_ context.Context, scope access.Scope, j projections.AnalyticsJob) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	a.jobs.put(org, j.ID, j)
	return nil
}

func (a *Analytics) AnalyticsResult(_ context.Context, scope access.Scope, jobID string) ([]json.RawMessage, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	r := a.pages.rows(org, false)
	if r == nil {
		return []json.RawMessage{}, nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	prefix := jobID + "\x00"
	i := sort.SearchStrings(r.sorted, prefix)
	out := []json.RawMessage{}
	for ; i < len(r.sorted) && len(r.sorted[i]) > len(prefix) && r.sorted[i][:len(prefix)] == prefix; i++ {
		out = append(out, slices.Clone(r.byKey[r.sorted[i]]))
	}
	return out, nil
}

func (a *Analytics) PutAnalyticsPage(_ context.Context, scope access.Scope, jobID string, page int, rows json.RawMessage) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if page < 0 {
		return fmt.Errorf("%w: page %s", domain.ErrInvalid, strconv.Itoa(page))
	}
	a.pages.put(org, pageKey(jobID, page), rows)
	return nil
}
