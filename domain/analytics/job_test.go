package analytics_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/analytics"
)

// step is one decision on a job, applied if it succeeds.
type step func(j *analytics.Job) ([]domain.Event, error)

var (
	submit = func(j *analytics.Job) ([]domain.Event, error) {
		return analytics.Submit("job-1", "ds-1", "how many orders per month?", "", "ann", "user", "")
	}
	start = func(j *analytics.Job) ([]domain.Event, error) { return j.Start(1) }
	plan  = func(j *analytics.Job) ([]domain.Event, error) {
		return j.Plan("SELECT 1", "builtin", []string{"orders"})
	}
	page   = json.RawMessage(`[["2024-01",12],["2024-02",9]]`)
	ok     = analytics.AnalyticsJobSucceeded{Columns: []analytics.Column{{Name: "month", Type: "text"}}, RowCount: 2, Bytes: 30, SHA256: "ab"}
	finish = func(j *analytics.Job) ([]domain.Event, error) { return j.Succeed([]json.RawMessage{page}, ok) }
	fail   = func(j *analytics.Job) ([]domain.Event, error) {
		return j.Fail(analytics.StageExecute, "canceling statement due to statement timeout", "SELECT 1", 5000)
	}
	askCancel = func(j *analytics.Job) ([]domain.Event, error) { return j.RequestCancel("ann") }
	cancel    = func(j *analytics.Job) ([]domain.Event, error) { return j.Cancel("stopped on request", 40) }
)

// run applies steps in order to a new job, failing the test if one is
// refused, and returns the job.
func run(t *testing.T, steps ...step) *analytics.Job {
	t.Helper()
	var j analytics.Job
	for i, s := range steps {
		evs, err := s(&j)
		if err != nil {
			t.Fatalf("step %d refused: %v", i, err)
		}
		for _, e := range evs {
			j.Apply(e)
		}
	}
	return &j
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []step
		state analytics.State
	}{
		{"submitted", []step{submit}, analytics.Submitted},
		{"running", []step{submit, start}, analytics.Running},
		{"planned", []step{submit, start, plan}, analytics.Running},
		{"succeeded", []step{submit, start, plan, finish}, analytics.Succeeded},
		{"failed before it ran", []step{submit, func(j *analytics.Job) ([]domain.Event, error) {
			return j.Fail(analytics.StageAuthorize, "no longer holds datasources:query", "", 0)
		}}, analytics.Failed},
		{"failed at the guard", []step{submit, start, func(j *analytics.Job) ([]domain.Event, error) {
			return j.Fail(analytics.StageGuard, "not a single SELECT", "DELETE FROM orders", 1)
		}}, analytics.Failed},
		{"failed while running", []step{submit, start, plan, fail}, analytics.Failed},
		{"restarted after an interruption", []step{submit, start, plan, func(j *analytics.Job) ([]domain.Event, error) { return j.Start(2) }}, analytics.Running},
		{"cancelled while running", []step{submit, start, plan, askCancel, cancel}, analytics.Cancelled},
		{"cancel asked while running: still running until it stops", []step{submit, start, askCancel}, analytics.Running},
		{"cancel asked then started: cancelled, never runs", []step{submit, start, askCancel, func(j *analytics.Job) ([]domain.Event, error) { return j.Start(2) }}, analytics.Cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := run(t, tt.steps...)
			if j.State() != tt.state {
				t.Errorf("state %s, want %s", j.State(), tt.state)
			}
			if j.ID() != "job-1" || j.DataSourceID() != "ds-1" || j.RequestedBy() != "ann" {
				t.Errorf("job %q on %q by %q", j.ID(), j.DataSourceID(), j.RequestedBy())
			}
		})
	}
}

func TestPlanAndPagesAreRecorded(t *testing.T) {
	t.Parallel()
	j := run(t, submit, start, plan)
	if j.SQL() != "SELECT 1" || j.Question() != "how many orders per month?" {
		t.Errorf("sql %q, question %q", j.SQL(), j.Question())
	}
	evs, err := finish(j)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events %v, want one page and the summary", evs)
	}
	if p, ok := evs[0].(*analytics.AnalyticsResultPage); !ok || p.Page != 0 || string(p.Rows) != string(page) {
		t.Errorf("first event %#v, want page 0 with the rows", evs[0])
	}
	if s, ok := evs[1].(*analytics.AnalyticsJobSucceeded); !ok || s.Pages != 1 || s.RowCount != 2 {
		t.Errorf("last event %#v, want the summary counting 1 page", evs[1])
	}
	for _, e := range evs {
		j.Apply(e)
	}
	if j.Pages() != 1 {
		t.Errorf("pages %d, want 1", j.Pages())
	}
	// A new attempt forgets the previous attempt's plan and pages.
	j2 := run(t, submit, start, plan)
	j2.Apply(&analytics.AnalyticsResultPage{Page: 0, Rows: page})
	j2.Apply(&analytics.AnalyticsJobStarted{Attempt: 2})
	if j2.Pages() != 0 {
		t.Errorf("pages %d after a restart, want 0", j2.Pages())
	}
	if _, err := finish(j2); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("result without a plan in this attempt: %v, want ErrConflict", err)
	}
}

func TestSubmit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                      string
		id, source, question, sql string
		by                        string
		ok                        bool
	}{
		{"question", "j", "ds", "how many?", "", "ann", true},
		{"sql", "j", "ds", "", "SELECT 1", "ann", true},
		{"sql at the limit", "j", "ds", "", strings.Repeat("x", analytics.MaxSQLBytes), "ann", true},
		{"question of the longest in runes", "j", "ds", strings.Repeat("é", analytics.MaxQuestionLen), "", "ann", true},
		{"both", "j", "ds", "how many?", "SELECT 1", "ann", false},
		{"neither", "j", "ds", "", "", "ann", false},
		{"no id", "", "ds", "q", "", "ann", false},
		{"no source", "j", "", "q", "", "ann", false},
		{"no asker", "j", "ds", "q", "", "", false},
		{"question too long", "j", "ds", strings.Repeat("q", analytics.MaxQuestionLen+1), "", "ann", false},
		{"sql too long", "j", "ds", "", strings.Repeat("x", analytics.MaxSQLBytes+1), "ann", false},
		{"sql with a NUL", "j", "ds", "", "SELECT 1\x00; DROP TABLE t", "ann", false},
		{"question not utf-8", "j", "ds", "how\xff many", "", "ann", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := analytics.Submit(tt.id, tt.source, tt.question, tt.sql, tt.by, "user", "")
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && (!errors.Is(err, domain.ErrInvalid) || evs != nil) {
				t.Fatalf("refusal %v with events %v, want ErrInvalid and none", err, evs)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	bigPage := json.RawMessage("[" + strings.Repeat(`"x",`, analytics.MaxPageBytes/4*2) + `"x"]`)
	tooManyRows := ok
	tooManyRows.RowCount = analytics.MaxRows + 1
	tooManyBytes := ok
	tooManyBytes.Bytes = analytics.MaxResultBytes + 1
	negative := ok
	negative.RowCount = -1
	// 25 pages of 500 kB: each within the page cap, together past the result cap.
	var hugeResult []json.RawMessage
	for range 25 {
		hugeResult = append(hugeResult, json.RawMessage(`["`+strings.Repeat("x", 500<<10)+`"]`))
	}
	succeed := func(pages []json.RawMessage, s analytics.AnalyticsJobSucceeded) step {
		return func(j *analytics.Job) ([]domain.Event, error) { return j.Succeed(pages, s) }
	}
	tests := []struct {
		name   string
		before []step
		decide step
		want   error
	}{
		{"start unknown job", nil, start, domain.ErrNotFound},
		{"cancel unknown job", nil, askCancel, domain.ErrNotFound},
		{"plan before start", []step{submit}, plan, domain.ErrConflict},
		{"result before start", []step{submit}, finish, domain.ErrConflict},
		{"result before plan", []step{submit, start}, finish, domain.ErrConflict},
		{"attempt 0", []step{submit}, func(j *analytics.Job) ([]domain.Event, error) { return j.Start(0) }, domain.ErrInvalid},
		{"plan without sql", []step{submit, start}, func(j *analytics.Job) ([]domain.Event, error) { return j.Plan("", "builtin", nil) }, domain.ErrInvalid},
		{"plan without translator", []step{submit, start}, func(j *analytics.Job) ([]domain.Event, error) { return j.Plan("SELECT 1", "", nil) }, domain.ErrInvalid},
		{"too many rows", []step{submit, start, plan}, succeed(nil, tooManyRows), domain.ErrInvalid},
		{"too many bytes", []step{submit, start, plan}, succeed(nil, tooManyBytes), domain.ErrInvalid},
		{"negative count", []step{submit, start, plan}, succeed(nil, negative), domain.ErrInvalid},
		{"page too big", []step{submit, start, plan}, succeed([]json.RawMessage{bigPage}, ok), domain.ErrInvalid},
		{"pages together too big", []step{submit, start, plan}, succeed(hugeResult, ok), domain.ErrInvalid},
		{"page not an array", []step{submit, start, plan}, succeed([]json.RawMessage{json.RawMessage(`{"a":1}`)}, ok), domain.ErrInvalid},
		{"page not json", []step{submit, start, plan}, succeed([]json.RawMessage{json.RawMessage(`[1,`)}, ok), domain.ErrInvalid},
		{"unknown failure stage", []step{submit, start}, func(j *analytics.Job) ([]domain.Event, error) { return j.Fail("whatever", "x", "", 0) }, domain.ErrInvalid},
	}
	// A finished job refuses every change with ErrConflict.
	ends := map[string][]step{
		"succeeded": {submit, start, plan, finish},
		"failed":    {submit, start, fail},
		"cancelled": {submit, askCancel},
	}
	changes := map[string]step{"start": start, "plan": plan, "succeed": finish, "fail": fail, "cancel": cancel,
		"request cancel": func(j *analytics.Job) ([]domain.Event, error) { return j.RequestCancel("bob") }}
	for end, before := range ends {
		for name, change := range changes {
			tests = append(tests, struct {
				name   string
				before []step
				decide step
				want   error
			}{end + " job refuses " + name, before, change, domain.ErrConflict})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := run(t, tt.before...)
			state := j.State()
			evs, err := tt.decide(j)
			if !errors.Is(err, tt.want) || evs != nil {
				t.Fatalf("got %v, %v; want %v and no event", evs, err, tt.want)
			}
			if state.Terminal() && !errors.Is(err, analytics.ErrFinished) {
				t.Errorf("refusal of a finished job %v does not match ErrFinished", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	t.Run("before start: cancelled at once", func(t *testing.T) {
		t.Parallel()
		j := run(t, submit)
		evs, err := j.RequestCancel("ann")
		if err != nil || len(evs) != 2 {
			t.Fatalf("events %v, %v; want the request and the cancellation", evs, err)
		}
		if r, ok := evs[0].(*analytics.AnalyticsJobCancelRequested); !ok || r.By != "ann" {
			t.Errorf("first event %#v", evs[0])
		}
		if _, ok := evs[1].(*analytics.AnalyticsJobCancelled); !ok {
			t.Errorf("second event %#v", evs[1])
		}
	})
	t.Run("while running: asked once, then recorded by the runner", func(t *testing.T) {
		t.Parallel()
		j := run(t, submit, start, plan)
		evs, err := j.RequestCancel("ann")
		if err != nil || len(evs) != 1 {
			t.Fatalf("events %v, %v; want the request alone", evs, err)
		}
		j.Apply(evs[0])
		if !j.CancelRequested() || j.State() != analytics.Running {
			t.Fatalf("after the request: requested %v, state %s", j.CancelRequested(), j.State())
		}
		if again, err := j.RequestCancel("bob"); err != nil || again != nil {
			t.Errorf("second request: %v, %v; want nothing", again, err)
		}
		evs, err = j.Cancel("", 12)
		if err != nil || len(evs) != 1 {
			t.Fatalf("cancel: %v, %v", evs, err)
		}
		if c := evs[0].(*analytics.AnalyticsJobCancelled); c.Reason == "" || c.DurationMS != 12 {
			t.Errorf("cancelled %#v, want a reason and the duration", c)
		}
	})
	t.Run("restart after a cancel request", func(t *testing.T) {
		t.Parallel()
		j := run(t, submit, start, askCancel)
		evs, err := j.Start(2)
		if err != nil || len(evs) != 1 {
			t.Fatalf("start: %v, %v", evs, err)
		}
		c, ok := evs[0].(*analytics.AnalyticsJobCancelled)
		if !ok || strings.Contains(c.Reason, "before it ran") {
			t.Errorf("event %#v: want a cancellation that does not claim the job never ran", evs[0])
		}
	})
}

func TestFailureReasonClipped(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{
		strings.Repeat("é", analytics.MaxReasonLen), // 2 bytes a rune
		strings.Repeat("日", analytics.MaxReasonLen), // 3 bytes
		strings.Repeat("🙂", analytics.MaxReasonLen), // 4 bytes
		"x" + strings.Repeat("🙂", analytics.MaxReasonLen),
	} {
		j := run(t, submit, start)
		evs, err := j.Fail(analytics.StageExecute, reason, "", 1)
		if err != nil {
			t.Fatal(err)
		}
		got := evs[0].(*analytics.AnalyticsJobFailed).Reason
		if len(got) > analytics.MaxReasonLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") ||
			!strings.HasPrefix(reason, strings.TrimSuffix(got, "…")) {
			t.Errorf("clipped to %d bytes (valid %v): %.20q…", len(got), utf8.ValidString(got), got)
		}
	}
	j := run(t, submit, start)
	evs, _ := j.Fail(analytics.StageExecute, "", "", 1)
	if r := evs[0].(*analytics.AnalyticsJobFailed).Reason; r == "" {
		t.Error("a failure without a reason records none")
	}
	short := "syntax error at or near \"DELETE\""
	evs, _ = j.Fail(analytics.StageGuard, short, "", 1)
	if r := evs[0].(*analytics.AnalyticsJobFailed).Reason; r != short {
		t.Errorf("short reason changed to %q", r)
	}
}
