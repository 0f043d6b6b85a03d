package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// AuditChainQueries read the caller's organization's tamper evidence:
// its signed checkpoints, and a verification of its chain against the log.
type AuditChainQueries interface {
	Checkpoints(ctx context.Context, who access.Principal, after uint64, limit int) ([]chain.Checkpoint, error)
	Verify(ctx context.Context, who access.Principal) (chain.Report, error)
}

// checkpointsBody is a page of checkpoints; next_after is a seq.
type checkpointsBody struct {
	Items     []chain.Checkpoint `json:"items"`
	NextAfter string             `json:"next_after,omitempty"`
}

func (s *Server) auditChain(w http.ResponseWriter, r *http.Request) (AuditChainQueries, bool) {
	q := s.deps.App.Queries.AuditChain
	if q == nil {
		writeError(w, r, fmt.Errorf("%w: this deployment keeps no audit chain", domain.ErrNotFound), "audit chain")
		return nil, false
	}
	return q, true
}

func (s *Server) auditCheckpoints(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	q, ok := s.auditChain(w, r)
	if !ok {
		return
	}
	var after uint64
	limit := 50
	var err error
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, r, fmt.Errorf("%w: after must be a checkpoint's seq (a page's next_after)", errBadRequest), "checkpoint")
			return
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > chain.MaxCheckpointPage {
			writeError(w, r, fmt.Errorf("%w: limit must be between 1 and %d", errBadRequest, chain.MaxCheckpointPage), "checkpoint")
			return
		}
	}
	page, err := q.Checkpoints(r.Context(), principalFrom(r.Context()), after, limit)
	if err != nil {
		writeError(w, r, err, "checkpoint")
		return
	}
	body := checkpointsBody{Items: page}
	if len(page) == limit {
		body.NextAfter = strconv.FormatUint(page[len(page)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	q, ok := s.auditChain(w, r)
	if !ok {
		return
	}
	report, err := q.Verify(r.Context(), principalFrom(r.Context()))
	if err != nil {
		writeError(w, r, err, "audit chain")
		return
	}
	writeJSON(w, http.StatusOK, report)
}
