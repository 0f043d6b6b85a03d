package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/audit/ocsf"
	"github.com/palisadehq/palisade/projections"
)

// auditRoutes mounts the routes of the audit trail.
func (s *Server) auditRoutes(v1 *mux.Router) {
	v1.HandleFunc("/audit/events", s.auditEvents).Methods(http.MethodGet)
	v1.HandleFunc("/audit/checkpoints", s.auditCheckpoints).Methods(http.MethodGet)
	v1.HandleFunc("/audit/verify", s.auditVerify).Methods(http.MethodGet)
	v1.HandleFunc("/audit/access", s.auditAccess).Methods(http.MethodGet)
	v1.HandleFunc("/audit/narratives", s.listNarratives).Methods(http.MethodGet)
	v1.HandleFunc("/audit/narratives/{correlation_id}", s.getNarrative).Methods(http.MethodGet)
	v1.HandleFunc("/audit/export", s.exportAudit).Methods(http.MethodGet)
}

func (s *Server) getNarrative(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	n, err := s.deps.App.Queries.Stories.Narrative(r.Context(), principalFrom(r.Context()), mux.Vars(r)["correlation_id"])
	if err != nil {
		writeError(w, r, err, "narrative")
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// narrativesBody is a page of narratives, newest first; next_after is the
// last one's first_sequence.
type narrativesBody struct {
	Items     []projections.NarrativeSummary `json:"items"`
	NextAfter string                         `json:"next_after,omitempty"`
}

func (s *Server) listNarratives(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	q := r.URL.Query()
	nq := projections.NarrativeQuery{Actor: q.Get("actor"), Type: q.Get("type"), Resource: q.Get("resource")}
	var err error
	bad := func(msg string) {
		writeError(w, r, fmt.Errorf("%w: %s", errBadRequest, msg), "narrative")
	}
	if nq.Since, err = timeParam(q.Get("since")); err != nil {
		bad("since must be a time in RFC 3339")
		return
	}
	if nq.Until, err = timeParam(q.Get("until")); err != nil {
		bad("until must be a time in RFC 3339")
		return
	}
	if v := q.Get("after"); v != "" {
		if nq.After, err = strconv.ParseUint(v, 10, 64); err != nil || nq.After == 0 {
			bad("after must be a narrative's first_sequence (a page's next_after)")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if nq.Limit, err = strconv.Atoi(v); err != nil || nq.Limit < 1 || nq.Limit > projections.MaxPageLimit {
			bad(fmt.Sprintf("limit must be between 1 and %d", projections.MaxPageLimit))
			return
		}
	}
	page, err := s.deps.App.Queries.Stories.Narratives(r.Context(), principalFrom(r.Context()), nq)
	if err != nil {
		writeError(w, r, err, "narrative")
		return
	}
	body := narrativesBody{Items: page}
	if len(page) == projections.PageLimit(nq.Limit) {
		body.NextAfter = strconv.FormatUint(page[len(page)-1].FirstSequence, 10)
	}
	writeJSON(w, http.StatusOK, body)
}

// exportAudit streams the organization's record as JSON lines, page by
// page as it reads them, flushing each: the audit events API's form
// (format=jsonl, the default) or OCSF events (format=ocsf). A failure
// after the first line cannot change the status any more: the stream then
// ends early, and the error is logged.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	q := r.URL.Query()
	since, err := timeParam(q.Get("since"))
	if err != nil {
		writeError(w, r, fmt.Errorf("%w: since must be a time in RFC 3339", errBadRequest), "event")
		return
	}
	stories := s.deps.App.Queries.Stories
	var line func(projections.AuditEvent) any
	switch format := q.Get("format"); format {
	case "", "jsonl":
		line = func(e projections.AuditEvent) any { return e }
	case "ocsf":
		mapper := ocsf.NewMapper(stories.Narrator())
		line = func(e projections.AuditEvent) any { return mapper.Map(e) }
	default:
		writeError(w, r, fmt.Errorf("%w: format must be jsonl or ocsf", errBadRequest), "event")
		return
	}
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	began := false
	start := func() {
		if !began {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			began = true
		}
	}
	err = stories.Export(r.Context(), principalFrom(r.Context()), since, func(page []projections.AuditEvent) error {
		start()
		for _, e := range page {
			if err := enc.Encode(line(e)); err != nil {
				return err
			}
		}
		return rc.Flush()
	})
	switch {
	case err != nil && !began:
		writeError(w, r, err, "event")
	case err != nil:
		loggerFrom(r.Context()).Warn("audit export ended early", "err", err)
	default:
		start() // nothing to export is an empty stream
	}
}

// timeParam reads an optional RFC 3339 time.
func timeParam(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, v)
}
