package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// AnalyticsCommands submit and cancel analytics jobs.
type AnalyticsCommands interface {
	Submit(ctx context.Context, who access.Principal, in commands.AnalyticsRequest) (commands.AnalyticsJobAccepted, error)
	Cancel(ctx context.Context, who access.Principal, id string) (commands.Result, error)
}

// AnalyticsQueries read analytics jobs and their results.
type AnalyticsQueries interface {
	Jobs(ctx context.Context, who access.Principal, page projections.Page) ([]projections.AnalyticsJob, error)
	Job(ctx context.Context, who access.Principal, id string) (projections.AnalyticsJob, error)
	Result(ctx context.Context, who access.Principal, id string) (projections.AnalyticsJob, projections.AnalyticsResult, error)
}

// SubmitAnalyticsJobRequest is the body of POST /v1/analytics/jobs:
// a data source and either a question or one SQL statement.
type SubmitAnalyticsJobRequest struct {
	DataSourceID string `json:"data_source_id"`
	Question     string `json:"question"`
	SQL          string `json:"sql"`
}

type analyticsAcceptedBody struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Consistency string `json:"consistency,omitempty"`
}

type analyticsJobBody struct {
	projections.AnalyticsJob
	Consistency string `json:"consistency,omitempty"`
}

// analyticsRoutes mounts the routes of analytics jobs.
func (s *Server) analyticsRoutes(v1 *mux.Router) {
	v1.HandleFunc("/analytics/jobs", s.submitAnalyticsJob).Methods(http.MethodPost)
	v1.HandleFunc("/analytics/jobs", s.listAnalyticsJobs).Methods(http.MethodGet)
	v1.HandleFunc("/analytics/jobs/{id}", s.getAnalyticsJob).Methods(http.MethodGet)
	v1.HandleFunc("/analytics/jobs/{id}/result", s.getAnalyticsResult).Methods(http.MethodGet)
	v1.HandleFunc("/analytics/jobs/{id}/cancel", s.cancelAnalyticsJob).Methods(http.MethodPost)
}

func (s *Server) submitAnalyticsJob(w http.ResponseWriter, r *http.Request) {
	var in SubmitAnalyticsJobRequest
	if !s.decode(w, r, &in) {
		return
	}
	accepted, err := s.deps.App.Commands.Analytics.Submit(r.Context(), principalFrom(r.Context()),
		commands.AnalyticsRequest{DataSourceID: in.DataSourceID, Question: in.Question, SQL: in.SQL})
	if err != nil {
		writeError(w, r, err, "data source")
		return
	}
	token := s.afterCommand(w, r, accepted.Position)
	w.Header().Set("Location", "/v1/analytics/jobs/"+accepted.ID)
	writeJSON(w, http.StatusAccepted, analyticsAcceptedBody{ID: accepted.ID, State: "submitted", Consistency: token})
}

func (s *Server) listAnalyticsJobs(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	list, err := s.deps.App.Queries.Analytics.Jobs(r.Context(), principalFrom(r.Context()), page)
	if err != nil {
		writeError(w, r, err, "analytics job")
		return
	}
	writeList(w, list, page, func(j projections.AnalyticsJob) string { return j.ID })
}

func (s *Server) getAnalyticsJob(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	j, err := s.deps.App.Queries.Analytics.Job(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "analytics job")
		return
	}
	writeJSON(w, http.StatusOK, analyticsJobBody{AnalyticsJob: j})
}

// getAnalyticsResult answers a succeeded job's rows as JSON, or as CSV
// (a header line of column names, then one line per row) when the client
// accepts text/csv.
func (s *Server) getAnalyticsResult(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	_, res, err := s.deps.App.Queries.Analytics.Result(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "analytics job")
		return
	}
	if !acceptsCSV(r) {
		writeJSON(w, http.StatusOK, res)
		return
	}
	body, err := resultCSV(res)
	if err != nil {
		writeError(w, r, err, "analytics job")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (s *Server) cancelAnalyticsJob(w http.ResponseWriter, r *http.Request) {
	who, id := principalFrom(r.Context()), mux.Vars(r)["id"]
	res, err := s.deps.App.Commands.Analytics.Cancel(r.Context(), who, id)
	if err != nil {
		writeError(w, r, err, "analytics job")
		return
	}
	token := s.afterCommand(w, r, res.Position)
	j, err := s.deps.App.Queries.Analytics.Job(r.Context(), who, id)
	if err != nil {
		writeError(w, r, err, "analytics job")
		return
	}
	status := http.StatusAccepted // the cancel is asked; the job records it when its query stops
	if j.State == "cancelled" || j.State == "succeeded" || j.State == "failed" {
		status = http.StatusOK
	}
	writeJSON(w, status, analyticsJobBody{AnalyticsJob: j, Consistency: token})
}

func acceptsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		media, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(media), "text/csv") {
			return true
		}
	}
	return false
}

// resultCSV writes res as CSV: strings as they are, numbers as written in
// the JSON, booleans as true/false, NULL as an empty field. A text field
// (or column name) that a spreadsheet would run as a formula is defused
// (see spreadsheetSafe): the rows are the tenant's database's, not ours to
// trust.
func resultCSV(res projections.AnalyticsResult) ([]byte, error) {
	var buf bytes.Buffer
	out := csv.NewWriter(&buf)
	header := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		header[i] = spreadsheetSafe(c.Name)
	}
	if err := out.Write(header); err != nil {
		return nil, err
	}
	for i, raw := range res.Rows {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var row []any
		if err := dec.Decode(&row); err != nil {
			return nil, fmt.Errorf("result row %d: %w", i, err)
		}
		record := make([]string, len(row))
		for j, v := range row {
			switch v := v.(type) {
			case nil:
			case string:
				record[j] = spreadsheetSafe(v)
			default:
				record[j] = fmt.Sprint(v)
			}
		}
		if err := out.Write(record); err != nil {
			return nil, err
		}
	}
	out.Flush()
	return buf.Bytes(), out.Error()
}

// spreadsheetSafe prefixes with an apostrophe a text that begins with a
// character spreadsheets start a formula with (=, +, -, @, tab, carriage
// return), unless it is a plain number such as "-12.50" (exact decimals
// arrive as strings), so that opening an export never runs a cell.
func spreadsheetSafe(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v
	}
	return "'" + v
}
