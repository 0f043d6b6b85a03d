package jobs_test

import (
	"errors"
	"testing"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/jobs"
)

// jobIn returns a job folded from history.
func jobIn(history ...domain.Event) *jobs.Job {
	j := &jobs.Job{}
	for _, e := range history {
		j.Apply(e)
	}
	return j
}

var (
	submitted = &jobs.JobSubmitted{ID: "j1", Kind: "knowledge.ingestion", Subject: "doc-o_d", TriggerID: "e1"}
	started   = func(n int) domain.Event { return &jobs.JobStarted{Attempt: n} }
)

func TestTransitions(t *testing.T) {
	t.Parallel()
	type step func(j *jobs.Job) ([]domain.Event, error)
	submit := func(j *jobs.Job) ([]domain.Event, error) { return j.Submit("j1", "k", "doc-o_d", "e1") }
	start := func(j *jobs.Job) ([]domain.Event, error) { return j.Start() }
	succeed := func(j *jobs.Job) ([]domain.Event, error) { return j.Succeed("3 chunks", 3) }
	fail := func(j *jobs.Job) ([]domain.Event, error) { return j.Fail("no longer a member") }
	cancel := func(j *jobs.Job) ([]domain.Event, error) { return j.Cancel("superseded") }
	tests := []struct {
		name    string
		history []domain.Event
		step    step
		want    jobs.State // the state after the step; "" when refused
		err     error
	}{
		{"submit a new job", nil, submit, jobs.Submitted, nil},
		{"submit twice", []domain.Event{submitted}, submit, "", jobs.ErrInvalidTransition},
		{"start a submitted job", []domain.Event{submitted}, start, jobs.Running, nil},
		{"start an interrupted job again", []domain.Event{submitted, started(1)}, start, jobs.Running, nil},
		{"start after the last attempt", []domain.Event{submitted, started(1), started(2), started(3)}, start, "", jobs.ErrAttemptsExhausted},
		{"start before submission", nil, start, "", jobs.ErrInvalidTransition},
		{"succeed a running job", []domain.Event{submitted, started(1)}, succeed, jobs.Succeeded, nil},
		{"succeed a submitted job", []domain.Event{submitted}, succeed, "", jobs.ErrInvalidTransition},
		{"fail a submitted job", []domain.Event{submitted}, fail, jobs.Failed, nil},
		{"fail a running job", []domain.Event{submitted, started(1)}, fail, jobs.Failed, nil},
		{"cancel a running job", []domain.Event{submitted, started(1)}, cancel, jobs.Cancelled, nil},
		{"succeed twice", []domain.Event{submitted, started(1), &jobs.JobSucceeded{Items: 1}}, succeed, "", jobs.ErrInvalidTransition},
		{"fail a succeeded job", []domain.Event{submitted, started(1), &jobs.JobSucceeded{Items: 1}}, fail, "", jobs.ErrInvalidTransition},
		{"start a failed job", []domain.Event{submitted, &jobs.JobFailed{Reason: "r"}}, start, "", jobs.ErrInvalidTransition},
		{"cancel a cancelled job", []domain.Event{submitted, &jobs.JobCancelled{Reason: "r"}}, cancel, "", jobs.ErrInvalidTransition},
		{"fail without a reason", []domain.Event{submitted}, func(j *jobs.Job) ([]domain.Event, error) { return j.Fail("") }, "", jobs.ErrInvalidJob},
		{"submit without a kind", nil, func(j *jobs.Job) ([]domain.Event, error) { return j.Submit("j1", "", "doc-o_d", "e1") }, "", jobs.ErrInvalidJob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := jobIn(tt.history...)
			before := j.State()
			evs, err := tt.step(j)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || len(evs) != 0 {
					t.Fatalf("got %v, %v; want %v", evs, err, tt.err)
				}
				if !errors.Is(err, domain.ErrConflict) && !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("%v matches no domain error kind", err)
				}
				if j.State() != before {
					t.Fatalf("a refused step changed the state to %s", j.State())
				}
				return
			}
			if err != nil || len(evs) != 1 {
				t.Fatalf("got %v, %v", evs, err)
			}
			j.Apply(evs[0])
			if j.State() != tt.want {
				t.Fatalf("state %s, want %s", j.State(), tt.want)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	for s, want := range map[jobs.State]bool{
		"": false, jobs.Submitted: false, jobs.Running: false,
		jobs.Succeeded: true, jobs.Failed: true, jobs.Cancelled: true,
	} {
		if s.Terminal() != want {
			t.Errorf("%q.Terminal() = %v", s, !want)
		}
	}
}

func TestFold(t *testing.T) {
	t.Parallel()
	j := jobIn(submitted, started(1), started(2), &jobs.JobSucceeded{Result: "3 chunks", Items: 3})
	result, items := j.Result()
	if j.ID() != "j1" || j.Kind() != "knowledge.ingestion" || j.Subject() != "doc-o_d" || j.Attempts() != 2 ||
		result != "3 chunks" || items != 3 || j.State() != jobs.Succeeded {
		t.Fatalf("folded %+v", j)
	}
}
