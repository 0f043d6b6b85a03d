package readmodeltest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

func runJobs(t *testing.T, newModels func(t *testing.T) Models) {
	models := func(t *testing.T) Models {
		t.Helper()
		m := newModels(t)
		if m.Jobs == nil {
			t.Skip("no jobs read model in this suite's Models")
		}
		return m
	}

	t.Run("JobsZeroScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		var zero access.Scope
		for name, err := range map[string]error{
			"Job":  first(m.Jobs.Job(ctx, zero, "job-1")),
			"Jobs": first(m.Jobs.Jobs(ctx, zero, projections.JobFilter{}, projections.Page{})),
			"PutJob": m.write(ctx, func(ctx context.Context) error {
				return m.Jobs.PutJob(ctx, zero, projections.Job{ID: "job-1"})
			}),
		} {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}
	})

	t.Run("JobsFoldOnceFilterAndIsolate", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		log, want := jobLog(t)
		foldJobs(t, m, log, 0)
		// Everything again, as a redelivery would: nothing changes.
		foldJobs(t, m, log, 0)
		got, err := m.Jobs.Job(ctx, scope(t, "org-a"), "job-1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("job-1 of org-a:\n got %+v\nwant %+v", got, want)
		}
		if other, err := m.Jobs.Job(ctx, scope(t, "org-b"), "job-1"); err != nil || other.State != string(jobs.Failed) || other.Kind != "analytics.query" {
			t.Errorf("job-1 of org-b: %+v, %v; want its own failed analytics job", other, err)
		}
		if _, err := m.Jobs.Job(ctx, scope(t, "org-b"), "job-2"); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("org-a's job-2 read from org-b: %v, want not found", err)
		}
		for _, tc := range []struct {
			org    string
			filter projections.JobFilter
			want   []string
		}{
			{"org-a", projections.JobFilter{}, []string{"job-1", "job-2", "job-3"}},
			{"org-a", projections.JobFilter{Kind: "knowledge.ingestion"}, []string{"job-1", "job-2"}},
			{"org-a", projections.JobFilter{State: string(jobs.Cancelled)}, []string{"job-2"}},
			{"org-a", projections.JobFilter{Kind: "analytics.query", State: string(jobs.Submitted)}, []string{"job-3"}},
			{"org-a", projections.JobFilter{Kind: "analytics.query", State: string(jobs.Failed)}, nil},
			{"org-b", projections.JobFilter{}, []string{"job-1"}},
		} {
			var ids []string
			page := projections.Page{Limit: 1}
			for {
				batch, err := m.Jobs.Jobs(ctx, scope(t, tc.org), tc.filter, page)
				if err != nil {
					t.Fatal(err)
				}
				for _, j := range batch {
					ids = append(ids, j.ID)
				}
				if len(batch) < page.Limit {
					break
				}
				page.After = batch[len(batch)-1].ID
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("jobs of %s matching %+v, one per page: %v, want %v", tc.org, tc.filter, ids, tc.want)
			}
		}
		if err := m.write(ctx, func(ctx context.Context) error { return m.Jobs.PurgeOrg(ctx, scope(t, "org-a")) }); err != nil {
			t.Fatal(err)
		}
		if left, err := m.Jobs.Jobs(ctx, scope(t, "org-a"), projections.JobFilter{}, projections.Page{}); err != nil || len(left) != 0 {
			t.Errorf("org-a's jobs after its purge: %v, %v", left, err)
		}
		if left, err := m.Jobs.Jobs(ctx, scope(t, "org-b"), projections.JobFilter{}, projections.Page{}); err != nil || len(left) != 1 {
			t.Errorf("org-b's jobs after org-a's purge: %v, %v", left, err)
		}
	})
}

// jobLog is org-a's ingestion job-1 (submitted, interrupted, started
// again, succeeded), its cancelled job-2 and submitted analytics job-3,
// with org-b's own failed job-1 interleaved; and what folding makes of
// org-a's job-1.
func jobLog(t *testing.T) (*sliceLog, projections.Job) {
	t.Helper()
	log := &sliceLog{}
	process := eventstore.Actor{Subject: "ingestion", Kind: "process", OnBehalfOf: []string{"alice"}, InvokerKind: "user"}
	add := func(org, id string, e domain.Event) {
		log.add(t, eventstore.MustStreamName(jobs.Category, org, id), process, e)
	}
	doc := "document-org-a_kb-1.doc-1"
	add("org-a", "job-1", &jobs.JobSubmitted{ID: "job-1", Kind: "knowledge.ingestion", Subject: doc, TriggerID: "ev-1"})
	add("org-b", "job-1", &jobs.JobSubmitted{ID: "job-1", Kind: "analytics.query", Subject: "analytics-org-b_q", TriggerID: "ev-2"})
	add("org-a", "job-1", &jobs.JobStarted{Attempt: 1})
	add("org-a", "job-2", &jobs.JobSubmitted{ID: "job-2", Kind: "knowledge.ingestion", Subject: doc, TriggerID: "ev-3"})
	add("org-b", "job-1", &jobs.JobStarted{Attempt: 1})
	add("org-a", "job-1", &jobs.JobStarted{Attempt: 2})
	add("org-a", "job-2", &jobs.JobCancelled{Reason: "a newer version of the document replaced it"})
	add("org-b", "job-1", &jobs.JobFailed{Reason: "the asker is no longer a member"})
	add("org-a", "job-1", &jobs.JobSucceeded{Result: "12 chunks", Items: 12})
	add("org-a", "job-3", &jobs.JobSubmitted{ID: "job-3", Kind: "analytics.query", Subject: "analytics-org-a_q", TriggerID: "ev-4"})
	sec := func(n int) time.Time { return at.Add(time.Duration(n) * time.Second) }
	return log, projections.Job{
		ID: "job-1", Kind: "knowledge.ingestion", Subject: doc, TriggerID: "ev-1", State: string(jobs.Succeeded),
		Attempts: 2, Result: "12 chunks", Items: 12, SubmittedBy: "ingestion", OnBehalfOf: []string{"alice"},
		SubmittedAt: sec(1), UpdatedAt: sec(9), Version: 3,
	}
}

// foldJobs applies the events of log after position after to m through a
// fresh JobProjection, one unit of work per batch.
func foldJobs(t *testing.T, m Models, log *sliceLog, after uint64) {
	t.Helper()
	checkpoints := &unitCheckpoints{m: m, position: after}
	engine := consumer.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), checkpoints, projections.JobProjection(m.Jobs))
	if _, err := engine.Rebuild(context.Background(), log); err != nil {
		t.Fatalf("fold after %d: %v", after, err)
	}
}
