package analytics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/domain"
)

// Limits of a job and its result.
const (
	MaxQuestionLen = 2000      // characters
	MaxSQLBytes    = 64 << 10  // as the guard's limit
	MaxRows        = 10_000    // rows kept of a result
	MaxResultBytes = 10 << 20  // bytes of rows kept, as JSON
	MaxPageBytes   = 512 << 10 // bytes of one result page, as JSON
	MaxReasonLen   = 1000      // bytes of a failure reason kept
)

// State is where a job is in its life.
type State string

// The states of a job; the zero State is a job not submitted yet.
const (
	Submitted State = "submitted"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool { return s == Succeeded || s == Failed || s == Cancelled }

// ErrFinished is the refusal of a change to a job that has ended; it
// matches domain.ErrConflict too.
var ErrFinished = errors.New("the analytics job has already ended")

// Job is the aggregate of one analytics job's stream.
type Job struct {
	id, source, question, sql string
	requestedBy, botID        string
	state                     State
	cancelRequested           bool
	planned                   bool
	pages                     int
}

// ID returns the job's id.
func (j *Job) ID() string { return j.id }

// DataSourceID returns the source the job asks.
func (j *Job) DataSourceID() string { return j.source }

// Question returns the question asked ("" when SQL was given).
func (j *Job) Question() string { return j.question }

// SQL returns the SQL given by the asker, or planned for the question.
func (j *Job) SQL() string { return j.sql }

// RequestedBy returns the subject of the asker.
func (j *Job) RequestedBy() string { return j.requestedBy }

// BotID returns the bot that asked for the job on its asker's behalf ("" if
// none did).
func (j *Job) BotID() string { return j.botID }

// State returns the job's state.
func (j *Job) State() State { return j.state }

// CancelRequested reports whether someone asked to cancel the job.
func (j *Job) CancelRequested() bool { return j.cancelRequested }

// Pages returns how many result pages are recorded.
func (j *Job) Pages() int { return j.pages }

// Apply folds one recorded event into the job.
func (j *Job) Apply(e domain.Event) {
	switch e := e.(type) {
	case *AnalyticsJobSubmitted:
		j.id, j.source, j.question, j.sql, j.requestedBy = e.ID, e.DataSourceID, e.Question, e.SQL, e.RequestedBy
		j.botID = e.BotID
		j.state = Submitted
	case *AnalyticsJobStarted:
		j.state, j.planned, j.pages = Running, false, 0
	case *AnalyticsQueryPlanned:
		j.sql, j.planned = e.SQL, true
	case *AnalyticsResultPage:
		j.pages = e.Page + 1
	case *AnalyticsJobSucceeded:
		j.state = Succeeded
	case *AnalyticsJobFailed:
		j.state = Failed
	case *AnalyticsJobCancelRequested:
		j.cancelRequested = true
	case *AnalyticsJobCancelled:
		j.state = Cancelled
	}
}

// Submit decides a new job asking source either question or sql (exactly
// one of them).
func Submit(id, source, question, sql, by, byKind, botID string) ([]domain.Event, error) {
	switch {
	case id == "" || source == "" || by == "":
		return nil, fmt.Errorf("%w: a job needs an id, a data source and an asker", domain.ErrInvalid)
	case (question == "") == (sql == ""):
		return nil, fmt.Errorf("%w: give either question or sql, not both and not neither", domain.ErrInvalid)
	}
	if question != "" {
		if err := domain.CheckText("question", question, MaxQuestionLen); err != nil {
			return nil, err
		}
	}
	if sql != "" {
		if len(sql) > MaxSQLBytes {
			return nil, fmt.Errorf("%w: sql is longer than %d bytes", domain.ErrInvalid, MaxSQLBytes)
		}
		if err := domain.CheckText("sql", sql, MaxSQLBytes); err != nil {
			return nil, err
		}
	}
	return []domain.Event{&AnalyticsJobSubmitted{ID: id, DataSourceID: source, Question: question, SQL: sql,
		RequestedBy: by, RequestedByKind: byKind, BotID: botID}}, nil
}

// Start decides an attempt at running the job: from submitted, or again
// from running after an interrupted attempt. A job whose cancel was asked
// is cancelled instead.
func (j *Job) Start(attempt int) ([]domain.Event, error) {
	if err := j.mustBeOpen(); err != nil {
		return nil, err
	}
	if attempt < 1 {
		return nil, fmt.Errorf("%w: attempts count from 1", domain.ErrInvalid)
	}
	if j.cancelRequested {
		reason := "cancelled before it ran"
		if j.state == Running {
			reason = "cancelled; the interrupted attempt was not run again"
		}
		return []domain.Event{&AnalyticsJobCancelled{Reason: reason}}, nil
	}
	return []domain.Event{&AnalyticsJobStarted{Attempt: attempt}}, nil
}

// Plan decides recording the SQL that will run and the guard's verdict.
func (j *Job) Plan(sql, translator string, tables []string) ([]domain.Event, error) {
	if err := j.mustBeRunning(); err != nil {
		return nil, err
	}
	if sql == "" || translator == "" {
		return nil, fmt.Errorf("%w: a plan needs its sql and translator", domain.ErrInvalid)
	}
	return []domain.Event{&AnalyticsQueryPlanned{SQL: sql, Translator: translator, Tables: tables}}, nil
}

// Succeed decides recording a result: its pages (each a JSON array of
// rows) and then its summary. The result must fit the job's caps: the
// summary's counts, each page, and the pages together (the rows' bytes plus
// the brackets and commas that join them into pages).
func (j *Job) Succeed(pages []json.RawMessage, summary AnalyticsJobSucceeded) ([]domain.Event, error) {
	if err := j.mustBeRunning(); err != nil {
		return nil, err
	}
	if !j.planned {
		return nil, fmt.Errorf("%w: a job records its plan before its result", domain.ErrConflict)
	}
	if summary.RowCount < 0 || summary.Bytes < 0 || summary.DurationMS < 0 {
		return nil, fmt.Errorf("%w: a result's counts and duration are not negative", domain.ErrInvalid)
	}
	if summary.RowCount > MaxRows || summary.Bytes > MaxResultBytes {
		return nil, fmt.Errorf("%w: a result holds at most %d rows and %d bytes", domain.ErrInvalid, MaxRows, MaxResultBytes)
	}
	evs := make([]domain.Event, 0, len(pages)+1)
	total := 0
	for i, p := range pages {
		if len(p) > MaxPageBytes+MaxPageBytes/2 {
			return nil, fmt.Errorf("%w: result page %d is %d bytes", domain.ErrInvalid, i, len(p))
		}
		if !isJSONArray(p) {
			return nil, fmt.Errorf("%w: result page %d is not a JSON array of rows", domain.ErrInvalid, i)
		}
		total += len(p)
		evs = append(evs, &AnalyticsResultPage{Page: i, Rows: p})
	}
	if total > MaxResultBytes+MaxRows+2*len(pages) {
		return nil, fmt.Errorf("%w: the result pages hold %d bytes, more than %d", domain.ErrInvalid, total, MaxResultBytes)
	}
	summary.Pages = len(pages)
	return append(evs, &summary), nil
}

// Fail decides recording why the job ended without a result.
func (j *Job) Fail(stage, reason, sql string, durationMS int64) ([]domain.Event, error) {
	if err := j.mustBeOpen(); err != nil {
		return nil, err
	}
	switch stage {
	case StageAuthorize, StageTranslate, StageGuard, StageExecute, StageInterrupt:
	default:
		return nil, fmt.Errorf("%w: unknown failure stage %.40q", domain.ErrInvalid, stage)
	}
	if reason == "" {
		reason = "the job failed"
	}
	return []domain.Event{&AnalyticsJobFailed{Stage: stage, Reason: domain.Clip(reason, MaxReasonLen), SQL: sql, DurationMS: durationMS}}, nil
}

// RequestCancel decides a cancel asked by subject by: a job that has not
// started is cancelled at once; a running one is told to stop, and records
// its cancellation when it does.
func (j *Job) RequestCancel(by string) ([]domain.Event, error) {
	if err := j.mustBeOpen(); err != nil {
		return nil, err
	}
	if j.cancelRequested {
		return nil, nil
	}
	evs := []domain.Event{&AnalyticsJobCancelRequested{By: by}}
	if j.state == Submitted {
		evs = append(evs, &AnalyticsJobCancelled{Reason: "cancelled before it ran"})
	}
	return evs, nil
}

// Cancel decides recording that a running job stopped because it was
// cancelled.
func (j *Job) Cancel(reason string, durationMS int64) ([]domain.Event, error) {
	if err := j.mustBeOpen(); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "cancelled"
	}
	return []domain.Event{&AnalyticsJobCancelled{Reason: domain.Clip(reason, MaxReasonLen), DurationMS: durationMS}}, nil
}

func (j *Job) mustBeOpen() error {
	switch {
	case j.state == "":
		return fmt.Errorf("%w: analytics job", domain.ErrNotFound)
	case j.state.Terminal():
		return fmt.Errorf("%w: %w", ErrFinished, domain.ErrConflict)
	}
	return nil
}

func (j *Job) mustBeRunning() error {
	if err := j.mustBeOpen(); err != nil {
		return err
	}
	if j.state != Running {
		return fmt.Errorf("%w: the analytics job is not running", domain.ErrConflict)
	}
	return nil
}

// isJSONArray reports whether p is one valid JSON array.
func isJSONArray(p json.RawMessage) bool {
	t := bytes.TrimLeft(p, " \t\r\n")
	return len(t) > 0 && t[0] == '[' && json.Valid(p)
}
