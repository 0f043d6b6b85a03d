package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/domain/access"
)

// OrgLimiter holds each organization to its request rate and its
// concurrent work (see package quota).
type OrgLimiter interface {
	// AllowRequest takes one request from org's budget, or says how long
	// until one would pass.
	AllowRequest(org string, now time.Time) (bool, time.Duration)
	// Acquire takes one slot of org's concurrent work of kind; release
	// gives it back. A refusal has a RetryAfter method.
	Acquire(ctx context.Context, org, kind string) (release func(), err error)
}

// workUploads is the quota name of concurrent document uploads.
const workUploads = "uploads"

// PrincipalFrom returns the authenticated principal of a request's context
// (zero outside an authenticated request), for the parts behind the HTTP
// layer that bound work per organization.
func PrincipalFrom(ctx context.Context) access.Principal { return principalFrom(ctx) }

// limitRequests holds each organization to its request rate (429 with
// Retry-After beyond it) and to its concurrent document uploads. It runs
// after authentication, so the organization is the verified token's;
// platform requests, which belong to no organization, are not limited.
func (s *Server) limitRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		org := principalFrom(r.Context()).OrgID
		if s.deps.Limits == nil || org == "" || org == access.PlatformScope {
			next.ServeHTTP(w, r)
			return
		}
		if ok, after := s.deps.Limits.AllowRequest(org, time.Now()); !ok {
			s.metrics.rateLimited.WithLabelValues("requests").Inc()
			writeRetryLater(w, r, after, "the organization is over its request rate")
			return
		}
		if isDocumentWrite(r) {
			release, err := s.deps.Limits.Acquire(r.Context(), org, workUploads)
			if err != nil {
				s.metrics.rateLimited.WithLabelValues(workUploads).Inc()
				writeError(w, r, err, "knowledge base")
				return
			}
			defer release()
		}
		next.ServeHTTP(w, r)
	})
}

// isDocumentWrite reports whether r adds or replaces a document: the
// requests that read uploads and start ingestions.
func isDocumentWrite(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return false
	}
	cur := mux.CurrentRoute(r)
	if cur == nil {
		return false
	}
	tpl, err := cur.GetPathTemplate()
	return err == nil && strings.Contains(tpl, "/documents")
}

// retryLater is a refusal that a later retry may pass.
type retryLater interface {
	error
	RetryAfter() time.Duration
}

// asRetryLater finds a retryLater in err's chain.
func asRetryLater(err error) (retryLater, bool) {
	var rl retryLater
	return rl, errors.As(err, &rl)
}

// writeRetryLater answers 429 with Retry-After in whole seconds (≥ 1).
func writeRetryLater(w http.ResponseWriter, r *http.Request, after time.Duration, detail string) {
	secs := int64((after + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	writeProblem(w, r, http.StatusTooManyRequests, "rate-limited", detail)
}
