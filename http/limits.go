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
	// RequestsSpent says, without taking anything, whether org's request
	// budget is spent now and how long until a request would pass.
	RequestsSpent(org string, now time.Time) (bool, time.Duration)
	// Acquire takes one slot of org's concurrent work of kind; release
	// gives it back. A refusal has a RetryAfter method.
	Acquire(ctx context.Context, org, kind string) (release func(), err error)
}

// reasonOverRate is principal's answer for a verified token whose
// organization's request budget is spent: not a denial, a 429.
const reasonOverRate = "over_rate"

// requestsSpent reports whether the request budget of the organization a
// verified token of the built-in issuer names is spent, before anything
// else is done for the request. Nothing is taken from the budget here
// (limitRequests takes once the principal is resolved), so a token that
// names an organization it is no member of cannot spend that
// organization's budget; but while the organization's own members flood
// it, each further request is refused for the price of the token check.
// What a token of a removed member learns from it (429 rather than 401
// while its former organization is over its rate) is one bit, for the
// token's remaining lifetime.
func (s *Server) requestsSpent(org string) (bool, time.Duration) {
	if s.deps.Limits == nil || org == "" || org == access.PlatformScope {
		return false, 0
	}
	return s.deps.Limits.RequestsSpent(org, time.Now())
}

// overRateFor is how long until org's next request would pass.
func (s *Server) overRateFor(org string) time.Duration {
	_, after := s.requestsSpent(org)
	return after
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
