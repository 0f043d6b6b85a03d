package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
)

type fixedClaims identity.Claims

func (c fixedClaims) Verify(string) (identity.Claims, error) { return identity.Claims(c), nil }

type countingResolver struct{ calls atomic.Int64 }

func (r *countingResolver) Resolve(_ context.Context, c projections.Credentials) (access.Principal, error) {
	r.calls.Add(1)
	return access.Principal{}, projections.ErrUnknownOrganization
}

// spentLimits is an organization whose request budget is spent.
type spentLimits struct{ taken atomic.Int64 }

func (l *spentLimits) AllowRequest(string, time.Time) (bool, time.Duration) {
	l.taken.Add(1)
	return false, time.Second
}
func (l *spentLimits) RequestsSpent(string, time.Time) (bool, time.Duration) {
	return true, 1500 * time.Millisecond
}
func (l *spentLimits) Acquire(context.Context, string, string) (func(), error) {
	return func() {}, nil
}

// TestOverRateIsRefusedBeforeThePrincipalIsResolved: while an
// organization's request budget is spent, a token of the built-in issuer
// naming it is answered 429 with Retry-After after the token check alone;
// an external issuer's token is resolved first (its issuer may not be
// bound to the organization it names).
func TestOverRateIsRefusedBeforeThePrincipalIsResolved(t *testing.T) {
	for _, tc := range []struct {
		name         string
		builtIn      bool
		wantStatus   int
		wantResolves int64
	}{
		{"built-in issuer", true, http.StatusTooManyRequests, 0},
		{"external issuer", false, http.StatusUnauthorized, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolver, limits := &countingResolver{}, &spentLimits{}
			s := NewServer(Deps{
				Routes:   AllRoutes(),
				Registry: prometheus.NewRegistry(),
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				Verifier: fixedClaims{Org: "org-a", Kind: "user", BuiltIn: tc.builtIn,
					RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", Issuer: "iss"}},
				Principals: resolver,
				Limits:     limits,
				App:        Application{Commands: Commands{Security: discardSecurity{}}},
			})
			req := httptest.NewRequest(http.MethodGet, "/v1/org", nil)
			req.Header.Set("Authorization", "Bearer token")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("GET /v1/org = %d %s, want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusTooManyRequests && rec.Header().Get("Retry-After") != "2" {
				t.Errorf("Retry-After = %q, want 2 (1.5 s rounded up)", rec.Header().Get("Retry-After"))
			}
			if got := resolver.calls.Load(); got != tc.wantResolves {
				t.Errorf("principal resolved %d times, want %d", got, tc.wantResolves)
			}
			if got := limits.taken.Load(); got != 0 {
				t.Errorf("the budget was taken from %d times, want 0", got)
			}
		})
	}
}

// discardSecurity records no authentication denial.
type discardSecurity struct{}

func (discardSecurity) RecordAuthenticationDenial(context.Context, string, *events.AuthenticationDenied) error {
	return nil
}
