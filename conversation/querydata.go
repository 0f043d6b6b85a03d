package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/projections"
)

// AnalyticsJobs submits and cancels analytics jobs (commands.Analytics).
type AnalyticsJobs interface {
	Submit(ctx context.Context, who access.Principal, in commands.AnalyticsRequest) (commands.AnalyticsJobAccepted, error)
	Cancel(ctx context.Context, who access.Principal, id string) (commands.Result, error)
}

// AnalyticsResults reads a job its submitter asked for, with its result
// (projections.AnalyticsQueries).
type AnalyticsResults interface {
	Asked(ctx context.Context, who access.Principal, id string) (projections.AnalyticsJob, projections.AnalyticsResult, error)
}

// Limits of query_data.
const (
	// MaxQueryRows bounds the rows query_data hands the model; the job
	// keeps its whole result (up to analytics.MaxRows) in the read model.
	MaxQueryRows = 50
	// jobVisibleWithin bounds how long a submitted job may stay missing
	// from the read model before the tool gives up on it.
	jobVisibleWithin = 10 * time.Second
	// maxPoll is the longest pause between two reads of a running job.
	maxPoll = 200 * time.Millisecond
	// maxReasonLen bounds a failed job's reason as the model reads it.
	maxReasonLen = 500
)

// QueryDataTool returns query_data: a bot asks a question of a data source
// granted to it (every bot of an ask_bot chain must be granted the
// source) as an analytics job, submitted as the effective principal, so
// that the job is authorized at submission and again at execution on the
// invoker's authority as it is then, narrowed by the bots' grants. The
// tool waits for the job's end within the turn; a turn that ends first
// cancels the job.
func QueryDataTool(jobs AnalyticsJobs, results AnalyticsResults) Tool {
	return Tool{
		Name: "query_data",
		Description: "Ask a question in plain language of a data source available to you. It is translated to one read-only SELECT, " +
			"checked and run; you get the columns, at most 50 rows, the row count and the SQL that ran.",
		Permission: access.DatasourcesQuery,
		Schema: `{"type":"object","additionalProperties":false,"required":["data_source_id","question"],"properties":{
			"data_source_id":{"type":"string","minLength":1,"maxLength":64},
			"question":{"type":"string","minLength":1,"maxLength":2000}}}`,
		Run: func(ctx context.Context, call Call) (Output, error) { return queryData(ctx, jobs, results, call) },
	}
}

func queryData(ctx context.Context, jobs AnalyticsJobs, results AnalyticsResults, call Call) (Output, error) {
	var args struct {
		DataSourceID string `json:"data_source_id"`
		Question     string `json:"question"`
	}
	if err := decodeArguments(call.Arguments, &args); err != nil {
		return Output{}, err
	}
	if !slices.Contains(call.Bot.DataSources, args.DataSourceID) {
		return Output{}, notGranted(access.DatasourcesQuery, "data-sources/"+args.DataSourceID)
	}
	// Submit decides analytics:run and the source's grants on the
	// effective principal; a refusal is a not-found or forbidden, which
	// the runner reports as denied.
	accepted, err := jobs.Submit(ctx, call.As, commands.AnalyticsRequest{DataSourceID: args.DataSourceID, Question: args.Question})
	if err != nil {
		return Output{}, err
	}
	id := accepted.Job.ID
	job, res, err := awaitJob(ctx, results, call.As, id)
	if err != nil {
		if ctx.Err() != nil {
			// The turn ended first: the job must not run on for nobody.
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, cerr := jobs.Cancel(stop, call.As, id); cerr != nil && !errors.Is(cerr, analytics.ErrFinished) {
				err = errors.Join(err, fmt.Errorf("cancel analytics job %s: %w", id, cerr))
			}
		}
		return Output{}, err
	}
	ids := Output{DataSourceIDs: []string{args.DataSourceID}, AnalyticsJobIDs: []string{id}}
	switch analytics.State(job.State) {
	case analytics.Failed:
		return ids, &ToolError{Message: fmt.Sprintf("analytics job %s failed at %s: %s", id, job.Stage, clip(job.Error))}
	case analytics.Cancelled:
		return ids, &ToolError{Message: fmt.Sprintf("analytics job %s was cancelled: %s", id, clip(job.Error))}
	}
	rows := res.Rows
	if len(rows) > MaxQueryRows {
		rows = rows[:MaxQueryRows]
	}
	columns := make([]map[string]string, len(job.Columns))
	for i, c := range job.Columns {
		columns[i] = map[string]string{"name": c.Name, "type": c.Type}
	}
	out := ids
	out.Result = map[string]any{
		"job_id": id, "data_source_id": args.DataSourceID, "sql": job.SQL,
		"columns": columns, "rows": rawRows(rows), "row_count": job.RowCount,
		"truncated": job.Truncated || len(rows) < len(res.Rows),
	}
	out.Rows = job.RowCount
	out.Summary = fmt.Sprintf("job %s: %d rows from data source %s", id, job.RowCount, args.DataSourceID)
	return out, nil
}

// awaitJob reads the job until it has ended, pausing a little longer each
// time, for as long as ctx lasts. A job not in the read model yet is
// waited for jobVisibleWithin.
func awaitJob(ctx context.Context, results AnalyticsResults, who access.Principal, id string) (projections.AnalyticsJob, projections.AnalyticsResult, error) {
	pause := 5 * time.Millisecond
	missingSince := time.Now()
	for {
		job, res, err := results.Asked(ctx, who, id)
		switch {
		case errors.Is(err, domain.ErrNotFound) && time.Since(missingSince) < jobVisibleWithin:
		case err != nil:
			return job, res, fmt.Errorf("read analytics job %s: %w", id, err)
		case analytics.State(job.State).Terminal():
			return job, res, nil
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return projections.AnalyticsJob{}, projections.AnalyticsResult{}, ctx.Err()
		case <-timer.C:
		}
		pause = min(2*pause, maxPoll)
	}
}

// rawRows keeps rows as the JSON arrays the read model holds.
func rawRows(rows []json.RawMessage) []json.RawMessage {
	if rows == nil {
		return []json.RawMessage{}
	}
	return rows
}

func clip(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	cut := maxReasonLen
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
