// Package httpapi (folder http) owns Palisade's HTTP surface: gorilla/mux
// routes, the JWT middleware, problem+json errors, idempotency keys,
// consistency waits, health, metrics and the OpenAPI document.
//
// Idempotency-Keys: a finished request's response is recorded in the log
// (Commands.Idempotency), so any replica replays it; a request still in
// flight is known to this process's cache and, with several replicas, to
// the shared claims (Deps.IdempotencyClaims, consulted only for a key the
// cache has not seen), so a duplicate sent to another replica is 409, not
// run twice.
//
// It only authenticates. A route authenticates, decodes, calls one use
// case of the [Application] (interfaces declared here, filled by app with
// the commands handlers and the projections query services) and encodes;
// errors become statuses in one table (problem.go). Every authorization
// decision is made by the use cases; a handler never checks a permission
// itself, never takes the organization from anywhere but the verified
// token, and never imports an adapter.
package httpapi

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
)

//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document served at /openapi.json.
func OpenAPIDocument() []byte { return openAPIDocument }

// TokenVerifier verifies bearer tokens.
type TokenVerifier interface {
	Verify(raw string) (identity.Claims, error)
}

// PrincipalResolver turns verified credentials into a principal.
type PrincipalResolver interface {
	Resolve(ctx context.Context, c projections.Credentials) (access.Principal, error)
}

// ReadModels is how far the read models have got.
type ReadModels interface {
	WaitFor(ctx context.Context, position uint64) error
}

// ConsistencySealer turns log positions into opaque consistency tokens
// bound to an organization, and back (consistency.Sealer).
type ConsistencySealer interface {
	Seal(orgID string, position uint64) (string, error)
	Open(orgID, token string) (uint64, error)
}

// Metrics is where the HTTP surface registers its metrics and what
// /metrics serves.
type Metrics interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Deps are the parts the HTTP surface is wired to, each an interface.
type Deps struct {
	// App is every use case the routes call.
	App Application
	// Routes are the route sets of the bounded contexts App holds, mounted
	// under /v1 in this order (AllRoutes for all of them).
	Routes     []Routes
	Principals PrincipalResolver
	Verifier   TokenVerifier
	// JWKS publishes the built-in issuer's public keys.
	JWKS func() ([]byte, error)
	// Extractor turns uploads into text.
	// Issuers says which external issuers the deployment trusts, the ones
	// an organization may bind (nil: none).
	Issuers    commands.IssuerTrust
	Extractor  DocumentExtractor
	ReadModels ReadModels
	// Consistency seals the consistency tokens of responses; nil issues
	// none and refuses every token a query sends.
	Consistency ConsistencySealer
	// Ready reports whether the server may take traffic (log reachable,
	// read models rebuilt).
	Ready    func(ctx context.Context) error
	Registry Metrics
	// MetricsElsewhere leaves /metrics off the API's router: the operator
	// serves MetricsHandler on an address of its own (serve
	// --metrics-addr), so the metrics need not be public.
	MetricsElsewhere bool
	Logger           *slog.Logger
	// AccessLog receives one line per request (method, route template,
	// status, duration, organization, principal kind, correlation id);
	// nil writes none.
	AccessLog *slog.Logger
	// ConsistencyWait bounds how long a command waits for the read models.
	ConsistencyWait time.Duration
	// TurnTimeout is a bot turn's wall time; a streamed turn's write
	// deadline is extended past it.
	TurnTimeout time.Duration
	// Limits holds organizations to their request rates and concurrent
	// uploads; nil limits nothing.
	Limits OrgLimiter
	// AuthDenialRate and AuthDenialBurst bound how many refused
	// credentials a second are recorded one by one per organization (the
	// rest are counted in the next record); zero takes 50 a second with a
	// burst of 100.
	AuthDenialRate  float64
	AuthDenialBurst int
	// TracerProvider traces every request (tracing.go); nil: off.
	TracerProvider trace.TracerProvider
	// IdempotencyClaims shares the Idempotency-Keys in flight with the
	// other replicas; nil keeps them in this process (one replica).
	IdempotencyClaims IdempotencyClaims
	// IdempotencyLease is how long a shared claim outlives its last
	// renewal (a third of it apart); zero takes 30 s.
	IdempotencyLease time.Duration
}

// Server is the HTTP API.
type Server struct {
	deps        Deps
	router      *mux.Router
	root        http.Handler
	metrics     *metrics
	idempotency *idempotencyCache
	authDenials *denialLimiter
}

// NewServer wires the routes.
func NewServer(deps Deps) *Server {
	if deps.ConsistencyWait == 0 {
		deps.ConsistencyWait = 5 * time.Second
	}
	s := &Server{
		deps:        deps,
		router:      mux.NewRouter(),
		metrics:     newMetrics(deps.Registry),
		idempotency: newIdempotencyCache(100_000, 64<<20, 24*time.Hour),
		authDenials: newDenialLimiter(deps.AuthDenialRate, deps.AuthDenialBurst),
	}
	s.routes()
	s.root = s.traced(http.HandlerFunc(s.serveHTTP))
	return s
}

// Handler returns the root handler: every request, whether a route takes
// it or not, goes through serveHTTP (correlation id, metrics, access log),
// inside the request's span when tracing is on.
func (s *Server) Handler() http.Handler { return s.root }

// Router exposes the mux router, for tests that walk the routes.
func (s *Server) Router() *mux.Router { return s.router }

func (s *Server) routes() {
	r := s.router
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.notFound)
	r.Use(s.nameRoute)

	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet)
	if !s.deps.MetricsElsewhere {
		r.Handle("/metrics", promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	}
	r.HandleFunc("/openapi.json", s.openapi).Methods(http.MethodGet)
	r.HandleFunc("/.well-known/jwks.json", s.jwks).Methods(http.MethodGet)

	v1 := r.PathPrefix("/v1").Subrouter()
	v1.Use(s.authenticate, s.limitRequests, s.idempotent)
	for _, mount := range s.deps.Routes {
		mount(s, v1)
	}
}

// Routes mounts one bounded context's routes on the authenticated /v1
// router. Each context's are in the file of its handlers; the application
// hands the server the route sets of the contexts it assembled (Deps.Routes).
type Routes func(s *Server, v1 *mux.Router)

// TenancyRoutes are the routes of organizations, issuers, quotas, members
// and service accounts.
func TenancyRoutes() Routes { return (*Server).tenancyRoutes }

// BotRoutes are the routes of bots.
func BotRoutes() Routes { return (*Server).botRoutes }

// AuditRoutes are the routes of the audit trail: events, narratives,
// exports, checkpoints, verification and access review.
func AuditRoutes() Routes { return (*Server).auditRoutes }

// KnowledgeRoutes are the routes of knowledge bases, documents and search.
func KnowledgeRoutes() Routes { return (*Server).knowledgeRoutes }

// ConversationRoutes are the routes of conversations with bots.
func ConversationRoutes() Routes { return (*Server).conversationRoutes }

// DataSourceRoutes are the routes of data sources.
func DataSourceRoutes() Routes { return (*Server).dataSourceRoutes }

// AnalyticsRoutes are the routes of analytics jobs.
func AnalyticsRoutes() Routes { return (*Server).analyticsRoutes }

// JobRoutes are the routes of the processes' jobs.
func JobRoutes() Routes { return (*Server).jobRoutes }

// AllRoutes are every context's routes: the API as openapi.json describes
// it (tests that build a Server without the application use them).
func AllRoutes() []Routes {
	return []Routes{TenancyRoutes(), BotRoutes(), AuditRoutes(), KnowledgeRoutes(), ConversationRoutes(),
		DataSourceRoutes(), AnalyticsRoutes(), JobRoutes()}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready != nil {
		if err := s.deps.Ready(r.Context()); err != nil {
			loggerFrom(r.Context()).Warn("not ready", "err", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "not-ready", "not ready")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	doc, err := s.deps.JWKS()
	if err != nil {
		writeError(w, r, err, "key set")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}
