package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain/access"
)

// AccessReview answers access-review questions about a past moment
// (audit/accessreview).
type AccessReview interface {
	Review(ctx context.Context, who access.Principal, q accessreview.Query) (accessreview.Answer, error)
}

// auditAccess answers GET /v1/audit/access?subject=…|resource=…[&issuer=][&at=]:
// what a subject could do at a moment, or who could read a resource then,
// from the log folded up to that moment. Parameters it cannot read are 400,
// as for every query parameter; at defaults to now.
func (s *Server) auditAccess(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query, err := accessreview.ParseQuery(q.Get("subject"), q.Get("issuer"), q.Get("resource"), q.Get("at"), time.Now())
	if err != nil {
		writeError(w, r, fmt.Errorf("%w: %v", errBadRequest, err), "access")
		return
	}
	answer, err := s.deps.App.Queries.AccessReview.Review(r.Context(), principalFrom(r.Context()), query)
	if err != nil {
		writeError(w, r, err, "access")
		return
	}
	if answer.Subject != nil {
		writeJSON(w, http.StatusOK, answer.Subject)
		return
	}
	writeJSON(w, http.StatusOK, answer.Resource)
}
