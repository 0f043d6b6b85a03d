package analytics

import (
	"encoding/json"

	"github.com/palisadehq/palisade/domain"
)

// Category is the stream category of analytics jobs.
const Category = "analytics"

// Stages at which a job fails.
const (
	StageAuthorize = "authorize"
	StageTranslate = "translate"
	StageGuard     = "guard"
	StageExecute   = "execute"
	StageInterrupt = "interrupted"
)

// Column is one column of a result.
type Column struct {
	Name string `json:"name" audit:"record"`
	Type string `json:"type" audit:"record"`
}

// AnalyticsJobSubmitted starts a job's stream. Exactly one of Question and
// SQL is set. RequestedBy is the subject of the asker: the member or
// service account whose authority the job uses. When a bot's tool call
// asked, RequestedBy is the invoker the bot acted for (the outermost of the
// event actor's delegation chain) and BotID names the bot.
type AnalyticsJobSubmitted struct {
	ID           string `json:"id" audit:"record"`
	DataSourceID string `json:"data_source_id" audit:"record"`
	Question     string `json:"question,omitempty" audit:"content"`
	// SQL is what the asker wrote: content, like the question (its
	// literals are the asker's words).
	SQL             string `json:"sql,omitempty" audit:"content"`
	RequestedBy     string `json:"requested_by" audit:"record"`
	RequestedByKind string `json:"requested_by_kind" audit:"record"`
	BotID           string `json:"bot_id,omitempty" audit:"record"`
}

// AnalyticsJobStarted records an attempt at running the job.
type AnalyticsJobStarted struct {
	Attempt int `json:"attempt"`
}

// AnalyticsQueryPlanned records the SQL about to run: how it was obtained
// (Translator: "sql" when the asker wrote it, "builtin" or "llm:MODEL"
// when a question was translated) and the guard's verdict on it (the
// allow-listed tables it reads). The SQL is content: a translation
// carries the question's words as literals; the tables are the record of
// what it reads.
type AnalyticsQueryPlanned struct {
	SQL        string   `json:"sql" audit:"content"`
	Translator string   `json:"translator" audit:"record"`
	Tables     []string `json:"tables" audit:"record"`
}

// AnalyticsResultPage records one page of result rows, in order from 0.
// Rows is a JSON array of arrays, one value per column.
type AnalyticsResultPage struct {
	Page int             `json:"page"`
	Rows json.RawMessage `json:"rows" audit:"content"`
}

// AnalyticsJobSucceeded records the end of a job that ran: its columns and
// the size and hash of what it returned. Pages counts the result pages
// recorded before it.
type AnalyticsJobSucceeded struct {
	Columns    []Column `json:"columns"`
	RowCount   int      `json:"row_count"`
	Bytes      int64    `json:"bytes"`
	SHA256     string   `json:"sha256" audit:"digest"`
	Truncated  bool     `json:"truncated"`
	Pages      int      `json:"pages"`
	DurationMS int64    `json:"duration_ms"`
}

// AnalyticsJobFailed records why a job ended without a result: at which
// stage (the record), and the reason (the guard's, the translator's, the
// database's, the authorization's; never a password), content, since a
// translator or a database may quote the question's words or the data.
type AnalyticsJobFailed struct {
	Stage      string `json:"stage" audit:"record"`
	Reason     string `json:"reason" audit:"content"`
	SQL        string `json:"sql,omitempty" audit:"content"`
	DurationMS int64  `json:"duration_ms"`
}

// AnalyticsJobCancelRequested records who asked to cancel a job.
type AnalyticsJobCancelRequested struct {
	By string `json:"by" audit:"record"`
}

// AnalyticsJobCancelled records that a job ended without a result because
// it was cancelled.
type AnalyticsJobCancelled struct {
	Reason     string `json:"reason" audit:"record"`
	DurationMS int64  `json:"duration_ms"`
}

func (AnalyticsJobSubmitted) EventType() string       { return "AnalyticsJobSubmitted" }
func (AnalyticsJobStarted) EventType() string         { return "AnalyticsJobStarted" }
func (AnalyticsQueryPlanned) EventType() string       { return "AnalyticsQueryPlanned" }
func (AnalyticsResultPage) EventType() string         { return "AnalyticsResultPage" }
func (AnalyticsJobSucceeded) EventType() string       { return "AnalyticsJobSucceeded" }
func (AnalyticsJobFailed) EventType() string          { return "AnalyticsJobFailed" }
func (AnalyticsJobCancelRequested) EventType() string { return "AnalyticsJobCancelRequested" }
func (AnalyticsJobCancelled) EventType() string       { return "AnalyticsJobCancelled" }

// Events returns one value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{&AnalyticsJobSubmitted{}, &AnalyticsJobStarted{}, &AnalyticsQueryPlanned{},
		&AnalyticsResultPage{}, &AnalyticsJobSucceeded{}, &AnalyticsJobFailed{},
		&AnalyticsJobCancelRequested{}, &AnalyticsJobCancelled{}}
}
