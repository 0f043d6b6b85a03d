package jobs

import (
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/domain"
)

// Category is the stream category of jobs: job-{org}_{job id}.
const Category = "job"

// MaxAttempts bounds how often a job is started: a job found running after
// this many interrupted attempts is failed instead of started again.
const MaxAttempts = 3

// State is where a job is in its life.
type State string

// The states of a job. The zero State is a job not submitted yet.
const (
	Submitted State = "submitted"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool { return s == Succeeded || s == Failed || s == Cancelled }

// Errors of the job state machine; each also matches domain.ErrConflict
// (ErrInvalidJob: domain.ErrInvalid), so callers may test either.
var (
	// ErrInvalidTransition: the job's state does not allow the change.
	ErrInvalidTransition = errors.New("invalid job transition")
	// ErrAttemptsExhausted: the job was started MaxAttempts times already.
	ErrAttemptsExhausted = errors.New("job attempts exhausted")
	// ErrInvalidJob: a submission or an outcome lacks what it needs.
	ErrInvalidJob = errors.New("invalid job")
)

// TransitionError is a refused change of state.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	from := e.From
	if from == "" {
		from = "not submitted"
	}
	return fmt.Sprintf("%v: %s → %s", ErrInvalidTransition, from, e.To)
}

// Unwrap lets errors.Is match ErrInvalidTransition and domain.ErrConflict.
func (e *TransitionError) Unwrap() []error { return []error{ErrInvalidTransition, domain.ErrConflict} }

// JobSubmitted starts a job's stream.
type JobSubmitted struct {
	ID string `json:"id" audit:"record"`
	// Kind names what the job does ("knowledge.ingestion").
	Kind string `json:"kind" audit:"record"`
	// Subject is the stream the job works on (a document's).
	Subject string `json:"subject" audit:"record"`
	// TriggerID is the id of the event that asked for the job.
	TriggerID string `json:"trigger_id" audit:"record"`
}

// JobStarted records an attempt at the work (1 for the first).
type JobStarted struct {
	Attempt int `json:"attempt"`
}

// JobSucceeded records the work's result.
type JobSucceeded struct {
	// Result says briefly what came out ("12 chunks").
	Result string `json:"result" audit:"record"`
	// Items counts what the work produced (chunks, rows), when it counts.
	Items int `json:"items"`
}

// JobFailed records why the work could not be done. The reason is
// content: a kind's failure may quote what it worked on (an analytics
// translation quotes the question's words, a database its data).
type JobFailed struct {
	Reason string `json:"reason" audit:"content"`
}

// JobCancelled records why the work was no longer wanted.
type JobCancelled struct {
	Reason string `json:"reason" audit:"record"`
}

func (JobSubmitted) EventType() string { return "JobSubmitted" }
func (JobStarted) EventType() string   { return "JobStarted" }
func (JobSucceeded) EventType() string { return "JobSucceeded" }
func (JobFailed) EventType() string    { return "JobFailed" }
func (JobCancelled) EventType() string { return "JobCancelled" }

// Events returns a prototype of every job event type.
func Events() []domain.Event {
	return []domain.Event{&JobSubmitted{}, &JobStarted{}, &JobSucceeded{}, &JobFailed{}, &JobCancelled{}}
}

// Job is the aggregate of one job's stream. The organization that owns it
// is the org of its stream; a job never moves.
type Job struct {
	id, kind, subject string
	state             State
	attempts          int
	reason, result    string
	items             int
}

// ID returns the job's id.
func (j *Job) ID() string { return j.id }

// Kind returns what the job does.
func (j *Job) Kind() string { return j.kind }

// Subject returns the stream the job works on.
func (j *Job) Subject() string { return j.subject }

// State returns the job's state ("" before submission).
func (j *Job) State() State { return j.state }

// Attempts returns how often the job was started.
func (j *Job) Attempts() int { return j.attempts }

// Reason returns why the job failed or was cancelled.
func (j *Job) Reason() string { return j.reason }

// Result returns the result and item count of a succeeded job.
func (j *Job) Result() (string, int) { return j.result, j.items }

// Apply folds one recorded event into the job.
func (j *Job) Apply(e domain.Event) {
	switch e := e.(type) {
	case *JobSubmitted:
		j.id, j.kind, j.subject, j.state = e.ID, e.Kind, e.Subject, Submitted
	case *JobStarted:
		j.state, j.attempts = Running, e.Attempt
	case *JobSucceeded:
		j.state, j.result, j.items = Succeeded, e.Result, e.Items
	case *JobFailed:
		j.state, j.reason = Failed, e.Reason
	case *JobCancelled:
		j.state, j.reason = Cancelled, e.Reason
	}
}

// Submit decides submitting a new job of kind on subject, triggered by the
// event triggerID.
func (j *Job) Submit(id, kind, subject, triggerID string) ([]domain.Event, error) {
	if j.state != "" {
		return nil, &TransitionError{From: j.state, To: Submitted}
	}
	if id == "" || kind == "" || subject == "" {
		return nil, fmt.Errorf("%w: a job needs an id, a kind and a subject: %w", ErrInvalidJob, domain.ErrInvalid)
	}
	return []domain.Event{&JobSubmitted{ID: id, Kind: kind, Subject: subject, TriggerID: triggerID}}, nil
}

// Start decides the next attempt: from submitted, or from running when the
// previous attempt was interrupted (a crash, a restart) and attempts remain.
func (j *Job) Start() ([]domain.Event, error) {
	switch {
	case j.state != Submitted && j.state != Running:
		return nil, &TransitionError{From: j.state, To: Running}
	case j.attempts >= MaxAttempts:
		return nil, fmt.Errorf("%w: started %d times: %w", ErrAttemptsExhausted, j.attempts, domain.ErrConflict)
	}
	return []domain.Event{&JobStarted{Attempt: j.attempts + 1}}, nil
}

// Succeed decides recording the result of a running job.
func (j *Job) Succeed(result string, items int) ([]domain.Event, error) {
	if j.state != Running {
		return nil, &TransitionError{From: j.state, To: Succeeded}
	}
	return []domain.Event{&JobSucceeded{Result: result, Items: items}}, nil
}

// Fail decides recording why a submitted or running job cannot be done.
func (j *Job) Fail(reason string) ([]domain.Event, error) {
	if err := j.end(Failed, reason); err != nil {
		return nil, err
	}
	return []domain.Event{&JobFailed{Reason: reason}}, nil
}

// Cancel decides recording why a submitted or running job is not wanted.
func (j *Job) Cancel(reason string) ([]domain.Event, error) {
	if err := j.end(Cancelled, reason); err != nil {
		return nil, err
	}
	return []domain.Event{&JobCancelled{Reason: reason}}, nil
}

func (j *Job) end(to State, reason string) error {
	if j.state != Submitted && j.state != Running {
		return &TransitionError{From: j.state, To: to}
	}
	if reason == "" {
		return fmt.Errorf("%w: a %s job needs a reason: %w", ErrInvalidJob, to, domain.ErrInvalid)
	}
	return nil
}
