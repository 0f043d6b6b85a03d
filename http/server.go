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
	App        Application
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
		idempotency: newIdempotencyCache(100_000, 24*time.Hour),
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

	v1.HandleFunc("/orgs", s.createOrg).Methods(http.MethodPost)
	v1.HandleFunc("/orgs/{id}/quotas", s.setOrgQuotas).Methods(http.MethodPut)
	v1.HandleFunc("/orgs/{id}", s.closeOrg).Methods(http.MethodDelete)
	v1.HandleFunc("/org", s.getOrg).Methods(http.MethodGet)
	v1.HandleFunc("/org/issuers", s.listIssuers).Methods(http.MethodGet)
	v1.HandleFunc("/org/issuers", s.bindIssuer).Methods(http.MethodPut)
	v1.HandleFunc("/org/issuers", s.unbindIssuer).Methods(http.MethodDelete)

	v1.HandleFunc("/members", s.addMember).Methods(http.MethodPost)
	v1.HandleFunc("/members", s.listMembers).Methods(http.MethodGet)
	v1.HandleFunc("/members/{sub}", s.getMember).Methods(http.MethodGet)
	v1.HandleFunc("/members/{sub}", s.changeMember).Methods(http.MethodPut)
	v1.HandleFunc("/members/{sub}", s.removeMember).Methods(http.MethodDelete)

	v1.HandleFunc("/service-accounts", s.createServiceAccount).Methods(http.MethodPost)
	v1.HandleFunc("/service-accounts", s.listServiceAccounts).Methods(http.MethodGet)
	v1.HandleFunc("/service-accounts/{id}", s.revokeServiceAccount).Methods(http.MethodDelete)
	v1.HandleFunc("/service-accounts/{id}/creator", s.reassignServiceAccount).Methods(http.MethodPut)

	v1.HandleFunc("/bots", s.createBot).Methods(http.MethodPost)
	v1.HandleFunc("/bots", s.listBots).Methods(http.MethodGet)
	v1.HandleFunc("/bots/{id}", s.getBot).Methods(http.MethodGet)
	v1.HandleFunc("/bots/{id}", s.updateBot).Methods(http.MethodPatch)
	v1.HandleFunc("/bots/{id}", s.archiveBot).Methods(http.MethodDelete)

	v1.HandleFunc("/knowledge-bases", s.createKnowledgeBase).Methods(http.MethodPost)
	v1.HandleFunc("/knowledge-bases", s.listKnowledgeBases).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/search", s.search).Methods(http.MethodPost)
	v1.HandleFunc("/knowledge-bases/{id}", s.getKnowledgeBase).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/{id}", s.updateKnowledgeBase).Methods(http.MethodPatch)
	v1.HandleFunc("/knowledge-bases/{id}", s.archiveKnowledgeBase).Methods(http.MethodDelete)
	v1.HandleFunc("/knowledge-bases/{id}/grants", s.setKnowledgeBaseGrants).Methods(http.MethodPut)
	v1.HandleFunc("/knowledge-bases/{id}/documents", s.addDocument).Methods(http.MethodPost)
	v1.HandleFunc("/knowledge-bases/{id}/documents", s.listDocuments).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/{id}/documents/{doc}", s.getDocument).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/{id}/documents/{doc}", s.replaceDocument).Methods(http.MethodPut)
	v1.HandleFunc("/knowledge-bases/{id}/documents/{doc}", s.deleteDocument).Methods(http.MethodDelete)

	v1.HandleFunc("/conversations", s.startConversation).Methods(http.MethodPost)
	v1.HandleFunc("/conversations", s.listConversations).Methods(http.MethodGet)
	v1.HandleFunc("/conversations/{id}", s.getConversation).Methods(http.MethodGet)
	v1.HandleFunc("/conversations/{id}", s.archiveConversation).Methods(http.MethodDelete)
	v1.HandleFunc("/conversations/{id}/messages", s.ask).Methods(http.MethodPost)

	v1.HandleFunc("/data-sources", s.createDataSource).Methods(http.MethodPost)
	v1.HandleFunc("/data-sources", s.listDataSources).Methods(http.MethodGet)
	v1.HandleFunc("/data-sources/{id}", s.getDataSource).Methods(http.MethodGet)
	v1.HandleFunc("/data-sources/{id}", s.updateDataSource).Methods(http.MethodPatch)
	v1.HandleFunc("/data-sources/{id}", s.deleteDataSource).Methods(http.MethodDelete)
	v1.HandleFunc("/data-sources/{id}/test", s.testDataSource).Methods(http.MethodPost)
	v1.HandleFunc("/data-sources/{id}/grants", s.setDataSourceGrants).Methods(http.MethodPut)

	v1.HandleFunc("/audit/events", s.auditEvents).Methods(http.MethodGet)
	v1.HandleFunc("/audit/checkpoints", s.auditCheckpoints).Methods(http.MethodGet)
	v1.HandleFunc("/audit/verify", s.auditVerify).Methods(http.MethodGet)
	v1.HandleFunc("/audit/access", s.auditAccess).Methods(http.MethodGet)

	s.analyticsRoutes(v1)
	s.auditStoryRoutes(v1)
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
