package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
)

// Header names of the API.
const (
	headerCorrelationID  = "X-Correlation-Id"
	headerConsistency    = "Palisade-Consistency"
	headerMinPosition    = "Palisade-Min-Position"
	headerIdempotencyKey = "Idempotency-Key"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	loggerKey
)

func principalFrom(ctx context.Context) access.Principal {
	p, _ := ctx.Value(principalKey).(access.Principal)
	return p
}

func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				loggerFrom(r.Context()).Error("panic", "value", fmt.Sprint(v))
				writeProblem(w, r, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

var correlationPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// traceIDFrom reads the trace id of a request's W3C traceparent header
// with OpenTelemetry's own parser (the one the request's span uses when
// tracing is on), or "" when it is absent or malformed.
func traceIDFrom(h http.Header) string {
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	// discardBody drops what is written: the response to a HEAD that a
	// GET route serves.
	discardBody bool
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.discardBody {
		return len(p), nil
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushing a
// stream, extending its write deadline).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// authenticate verifies the bearer token and resolves the principal from
// the membership read model. It decides nothing about permissions.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, orgID, reason, subject := s.principal(r)
		if reason == reasonOverRate {
			// Refused before the principal was resolved: a flood costs the
			// token check, not the read models (limitRequests).
			s.metrics.rateLimited.WithLabelValues("requests").Inc()
			writeRetryLater(w, r, s.overRateFor(orgID), "the organization is over its request rate")
			return
		}
		if reason != "" {
			s.recordAuthDenial(r, orgID, reason, subject)
			challenge := `Bearer realm="palisade", error="invalid_token"`
			if reason == "missing_token" {
				challenge = `Bearer realm="palisade"` // RFC 6750 §3.1: no error without credentials
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeProblem(w, r, http.StatusUnauthorized, "unauthorized", "missing, invalid or expired credentials")
			return
		}
		notePrincipal(r.Context(), p)
		ctx := context.WithValue(r.Context(), principalKey, p)
		ctx = context.WithValue(ctx, loggerKey, loggerFrom(ctx).With("org_id", p.OrgID, "subject", p.Subject))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// principal returns the request's principal, or a denial reason with the
// organization and subject when the token itself was valid.
func (s *Server) principal(r *http.Request) (p access.Principal, orgID, reason, subject string) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	if h == "" {
		return p, "", "missing_token", ""
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return p, "", "malformed", ""
	}
	claims, err := s.deps.Verifier.Verify(strings.TrimSpace(raw))
	if err != nil {
		reason := "invalid"
		var te *identity.TokenError
		if errors.As(err, &te) {
			reason = te.Reason
		}
		return p, "", reason, ""
	}
	if claims.BuiltIn {
		// Only the deployment's own issuer: an external issuer's token
		// may name an organization it is not bound to, and must not learn
		// that organization's rate before Resolve refuses it.
		if spent, _ := s.requestsSpent(claims.Org); spent {
			return p, claims.Org, reasonOverRate, ""
		}
	}
	scope, scopeErr := permissionScope(claims.ScopeNames())
	p, err = s.deps.Principals.Resolve(r.Context(), projections.Credentials{
		Issuer: credentialIssuer(claims), Kind: claims.Kind, OrgID: claims.Org, Subject: claims.Subject,
		TokenID: claims.ID, Scope: scope,
	})
	switch {
	case errors.Is(err, projections.ErrOrganizationClosed):
		// Nothing is recorded in a closed organization any more: the
		// denial goes to the platform's record, with why.
		loggerFrom(r.Context()).Warn("token of a closed organization refused",
			"org_id", claims.Org, "subject", claims.Subject, "reason", "organization_closed")
		return p, "", "organization_closed", deniedSubject(claims)
	case errors.Is(err, projections.ErrUnknownOrganization):
		// No such organization: the denial goes to the platform's record.
		return p, "", "unknown_organization", deniedSubject(claims)
	case errors.Is(err, projections.ErrIssuerNotBound):
		return p, claims.Org, "issuer_not_bound", deniedSubject(claims)
	case errors.Is(err, projections.ErrCreatorNotMember):
		// A live service account whose creator left: it cannot act until
		// it is re-assigned or revoked.
		loggerFrom(r.Context()).Warn("service account denied: its creator is no longer a member",
			"org_id", claims.Org, "service_account", claims.Subject, "reason", "creator_not_member")
		return p, claims.Org, "creator_not_member", deniedSubject(claims)
	case err != nil:
		return p, claims.Org, "unknown_principal", deniedSubject(claims)
	case scopeErr != nil:
		return access.Principal{}, claims.Org, "bad_scope", deniedSubject(claims)
	}
	return p, "", "", ""
}

// recordAuthDenial counts every authentication denial and records it as
// an event, rate limited so that a flood of garbage cannot flood the log.
func (s *Server) recordAuthDenial(r *http.Request, orgID, reason, subject string) {
	s.metrics.authDenied.WithLabelValues(reason).Inc()
	allowed, suppressed := s.authDenials.allow(orgID, time.Now())
	if !allowed {
		return
	}
	denied := &events.AuthenticationDenied{
		Reason: reason, Method: r.Method, Path: truncate(r.URL.Path, 200),
		RemoteAddr: r.RemoteAddr, Subject: truncate(subject, 256), Suppressed: suppressed,
	}
	if err := s.deps.App.Commands.Security.RecordAuthenticationDenial(r.Context(), orgID, denied); err != nil {
		loggerFrom(r.Context()).Error("record authentication denial", "err", err)
	}
}

// afterCommand issues the command's consistency token (header and return
// value, for the body) and, unless the client asked for
// "Prefer: respond-async", waits (bounded) until the read models have
// applied the command's events, so that a following GET sees them.
func (s *Server) afterCommand(w http.ResponseWriter, r *http.Request, position uint64) string {
	if position == 0 {
		return ""
	}
	token := s.issueConsistency(w, r, position)
	if preferAsync(r) {
		w.Header().Set("Preference-Applied", "respond-async")
		return token
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.deps.ConsistencyWait)
	defer cancel()
	if err := s.deps.ReadModels.WaitFor(ctx, position); err != nil {
		loggerFrom(r.Context()).Warn("read models lag behind a command", "err", err)
	}
	return token
}

// issueConsistency seals position into a consistency token for the
// caller's organization and sets the Palisade-Consistency header. The
// global position itself never leaves the server.
func (s *Server) issueConsistency(w http.ResponseWriter, r *http.Request, position uint64) string {
	if position == 0 || s.deps.Consistency == nil {
		return ""
	}
	token, err := s.deps.Consistency.Seal(principalFrom(r.Context()).OrgID, position)
	if err != nil {
		loggerFrom(r.Context()).Error("seal consistency token", "err", err)
		return ""
	}
	w.Header().Set(headerConsistency, token)
	return token
}

func preferAsync(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "respond-async") {
				return true
			}
		}
	}
	return false
}

// awaitConsistency honours a consistency token (?consistency= or the
// Palisade-Consistency header): the query waits (bounded) until the read
// models have applied the write the token was issued for. A token of
// another organization or a malformed one is 400, and so is the retired
// bare position (?min_position=, Palisade-Min-Position). It answers the
// request itself and returns false when it could not.
func (s *Server) awaitConsistency(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Query().Has("min_position") || r.Header.Get(headerMinPosition) != "" {
		writeProblem(w, r, http.StatusBadRequest, "bad-request",
			"min_position and Palisade-Min-Position are gone: send the consistency token back as ?consistency= or the Palisade-Consistency header")
		return false
	}
	token := r.URL.Query().Get("consistency")
	if token == "" {
		token = r.Header.Get(headerConsistency)
	}
	if token == "" {
		return true
	}
	if s.deps.Consistency == nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "consistency tokens are not accepted by this server")
		return false
	}
	pos, err := s.deps.Consistency.Open(principalFrom(r.Context()).OrgID, token)
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "consistency must be a token issued to this organization")
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.deps.ConsistencyWait)
	defer cancel()
	if err := s.deps.ReadModels.WaitFor(ctx, pos); err != nil {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "not-caught-up", "read models have not reached that point yet")
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// withIdempotencyKey returns ctx whose origin carries the client's key and
// the identity of the request it stands for (see
// commands.Origin.IdempotentRequest).
func withIdempotencyKey(ctx context.Context, key, request string) context.Context {
	o := commands.OriginFrom(ctx)
	o.IdempotencyKey, o.IdempotentRequest = key, request
	return commands.WithOrigin(ctx, o)
}

// permissionScope reads the permissions a token's scope narrows to. The
// standard OpenID Connect scopes say nothing about Palisade and are passed
// over; every other entry must be a known permission, so a typo fails
// closed instead of widening. nil means the token does not narrow: it had
// no scope, or only OpenID Connect scopes.
func permissionScope(names []string) (*access.PermissionSet, error) {
	var perms []string
	for _, n := range names {
		if !oidcScopes[n] {
			perms = append(perms, n)
		}
	}
	if len(perms) == 0 {
		return nil, nil
	}
	set, err := access.ParsePermissions(perms)
	if err != nil {
		return nil, err
	}
	return &set, nil
}

var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "address": true, "phone": true, "offline_access": true}
