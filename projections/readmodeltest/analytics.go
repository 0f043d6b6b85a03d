package readmodeltest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// runAnalytics runs the cases of the analytics read model: the port's
// contract, and the projection folding jobs through it.
func runAnalytics(t *testing.T, newModels func(t *testing.T) Models) {
	models := func(t *testing.T) Models {
		t.Helper()
		m := newModels(t)
		if m.Analytics == nil {
			t.Skip("no analytics read model in this suite's Models")
		}
		return m
	}

	t.Run("AnalyticsZeroScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		var zero access.Scope
		for name, err := range map[string]error{
			"AnalyticsJob":    first(m.Analytics.AnalyticsJob(ctx, zero, "job-1")),
			"AnalyticsJobs":   first(m.Analytics.AnalyticsJobs(ctx, zero, projections.AnalyticsJobQuery{})),
			"AnalyticsResult": first(m.Analytics.AnalyticsResult(ctx, zero, "job-1")),
			"PutAnalyticsJob": m.write(ctx, func(ctx context.Context) error {
				return m.Analytics.PutAnalyticsJob(ctx, zero, projections.AnalyticsJob{ID: "job-1"})
			}),
			"PutAnalyticsPage": m.write(ctx, func(ctx context.Context) error {
				return m.Analytics.PutAnalyticsPage(ctx, zero, "job-1", 0, []byte(`[]`))
			}),
		} {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}
	})

	t.Run("AnalyticsRoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		started, finished := at.Add(time.Second), at.Add(2*time.Second)
		full := projections.AnalyticsJob{
			ID: "job-1", State: "succeeded", DataSourceID: "src-1", Question: "how many sales", SQL: "SELECT 1",
			Translator: "builtin", Tables: []string{"sales"}, RowCount: 2,
			Columns: []analytics.Column{{Name: "n", Type: "int8"}}, Bytes: 9, SHA256: "ab", Truncated: true, Pages: 2,
			CreatedBy: "alice", CreatedByKind: "user", BotID: "bot-1",
			Timings: projections.AnalyticsTimings{SubmittedAt: at, StartedAt: &started, FinishedAt: &finished, DurationMS: 1000},
			Version: 5,
		}
		for _, job := range []projections.AnalyticsJob{
			full,
			{ID: "job-2", State: "failed", DataSourceID: "src-1", Stage: "guard", Error: "DELETE is not a SELECT",
				Tables: []string{}, Columns: []analytics.Column{}, CreatedBy: "bob", CreatedByKind: "user", Timings: projections.AnalyticsTimings{SubmittedAt: at}},
			{ID: "job-3", State: "submitted", DataSourceID: "src-2", Tables: []string{}, Columns: []analytics.Column{},
				CreatedBy: "alice", CreatedByKind: "service", Timings: projections.AnalyticsTimings{SubmittedAt: at}},
		} {
			if err := m.write(ctx, func(ctx context.Context) error { return m.Analytics.PutAnalyticsJob(ctx, a, job) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.write(ctx, func(ctx context.Context) error {
			return errors.Join(
				m.Analytics.PutAnalyticsPage(ctx, a, "job-1", 1, []byte(`[["b",2]]`)),
				m.Analytics.PutAnalyticsPage(ctx, a, "job-1", 0, []byte(`[["a",1]]`)),
				m.Analytics.PutAnalyticsPage(ctx, a, "job-10", 0, []byte(`[["other job",0]]`)),
			)
		}); err != nil {
			t.Fatal(err)
		}
		if got, err := m.Analytics.AnalyticsJob(ctx, a, "job-1"); err != nil || !reflect.DeepEqual(got, full) {
			t.Fatalf("job-1 = %#v, %v\nwant %#v", got, err, full)
		}
		pages, err := m.Analytics.AnalyticsResult(ctx, a, "job-1")
		if err != nil || len(pages) != 2 || string(pages[0]) != `[["a",1]]` || string(pages[1]) != `[["b",2]]` {
			t.Fatalf("job-1's pages = %s, %v", pages, err)
		}
		if _, err := m.Analytics.AnalyticsJob(ctx, b, "job-1"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("org-b reads org-a's job: %v", err)
		}
		if pages, err := m.Analytics.AnalyticsResult(ctx, b, "job-1"); err != nil || len(pages) != 0 {
			t.Fatalf("org-b reads org-a's result: %s, %v", pages, err)
		}
		ids := func(q projections.AnalyticsJobQuery) []string {
			list, err := m.Analytics.AnalyticsJobs(ctx, a, q)
			if err != nil {
				t.Fatal(err)
			}
			out := []string{}
			for _, j := range list {
				out = append(out, j.ID)
			}
			return out
		}
		for _, tt := range []struct {
			name string
			q    projections.AnalyticsJobQuery
			want []string
		}{
			{"all", projections.AnalyticsJobQuery{}, []string{"job-1", "job-2", "job-3"}},
			{"alice the user", projections.AnalyticsJobQuery{CreatedBy: "alice", CreatedByKind: "user"}, []string{"job-1"}},
			{"page", projections.AnalyticsJobQuery{Page: projections.Page{After: "job-1", Limit: 1}}, []string{"job-2"}},
		} {
			if got := ids(tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}
		if list, err := m.Analytics.AnalyticsJobs(ctx, b, projections.AnalyticsJobQuery{}); err != nil || len(list) != 0 {
			t.Fatalf("org-b lists %d jobs, %v", len(list), err)
		}
	})

	t.Run("AnalyticsProjectionFoldsJobs", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		log := jobsLog(t)
		foldAnalytics(t, m, log, 0)
		check := func(when string) {
			t.Helper()
			ok, err := m.Analytics.AnalyticsJob(ctx, a, "job-ok")
			if err != nil || ok.State != "succeeded" || ok.SQL != "SELECT region FROM sales" || ok.Translator != "sql" ||
				ok.RowCount != 3 || ok.Pages != 2 || ok.Timings.StartedAt == nil || ok.Timings.FinishedAt == nil || ok.Timings.DurationMS != 12 {
				t.Fatalf("%s: job-ok = %#v, %v", when, ok, err)
			}
			pages, err := m.Analytics.AnalyticsResult(ctx, a, "job-ok")
			if err != nil || len(pages) != 2 {
				t.Fatalf("%s: job-ok's pages = %s, %v", when, pages, err)
			}
			bad, err := m.Analytics.AnalyticsJob(ctx, a, "job-bad")
			if err != nil || bad.State != "failed" || bad.Stage != "guard" || bad.Error != "DELETE is not allowed" || bad.SQL != "DELETE FROM sales" {
				t.Fatalf("%s: job-bad = %#v, %v", when, bad, err)
			}
			stopped, err := m.Analytics.AnalyticsJob(ctx, a, "job-stop")
			if err != nil || stopped.State != "cancelled" || stopped.CancelBy != "alice" {
				t.Fatalf("%s: job-stop = %#v, %v", when, stopped, err)
			}
		}
		check("folded")
		for _, after := range []uint64{0, 2, 5, uint64(len(log.envs) - 1)} {
			foldAnalytics(t, m, log, after)
			check("redelivered")
		}
	})
}

// jobsLog is the log of three jobs of org-a: one that succeeds with two
// result pages, one the guard refuses, one cancelled while it ran.
func jobsLog(t *testing.T) *sliceLog {
	t.Helper()
	log := &sliceLog{}
	add := func(job string, e domain.Event) {
		log.add(t, eventstore.MustStreamName(analytics.Category, "org-a", job), alice, e)
	}
	submit := func(id, sql string) {
		add(id, &analytics.AnalyticsJobSubmitted{ID: id, DataSourceID: "src-1", SQL: sql, RequestedBy: "alice", RequestedByKind: "user"})
	}
	submit("job-ok", "SELECT region FROM sales")
	submit("job-bad", "DELETE FROM sales")
	add("job-ok", &analytics.AnalyticsJobStarted{Attempt: 1})
	add("job-bad", &analytics.AnalyticsJobStarted{Attempt: 1})
	add("job-ok", &analytics.AnalyticsQueryPlanned{SQL: "SELECT region FROM sales", Translator: "sql", Tables: []string{"sales"}})
	add("job-bad", &analytics.AnalyticsJobFailed{Stage: "guard", Reason: "DELETE is not allowed", SQL: "DELETE FROM sales"})
	add("job-ok", &analytics.AnalyticsResultPage{Page: 0, Rows: json.RawMessage(`[["north"],["south"]]`)})
	add("job-ok", &analytics.AnalyticsResultPage{Page: 1, Rows: json.RawMessage(`[["east"]]`)})
	add("job-ok", &analytics.AnalyticsJobSucceeded{Columns: []analytics.Column{{Name: "region", Type: "text"}}, RowCount: 3,
		Bytes: 30, SHA256: "ab", Pages: 2, DurationMS: 12})
	submit("job-stop", "SELECT 1")
	add("job-stop", &analytics.AnalyticsJobStarted{Attempt: 1})
	add("job-stop", &analytics.AnalyticsJobCancelRequested{By: "alice"})
	add("job-stop", &analytics.AnalyticsJobCancelled{Reason: "cancelled while the query ran", DurationMS: 3})
	return log
}

func foldAnalytics(t *testing.T, m Models, log *sliceLog, after uint64) {
	t.Helper()
	checkpoints := &unitCheckpoints{m: m, position: after}
	engine := consumer.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), checkpoints, projections.AnalyticsProjection(m.Analytics))
	if _, err := engine.Rebuild(context.Background(), log); err != nil {
		t.Fatalf("fold after %d: %v", after, err)
	}
}
