package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/tracing"
)

// routeUnmatched is the route template of a request no route took (404,
// and 405 when the path exists with other methods): one label value, so
// that probing random paths cannot grow the metrics.
const routeUnmatched = "unmatched"

// requestInfo is what the inner layers learn about a request and the
// outer one logs and counts once the response is written: the route
// template (set by nameRoute once mux has matched) and the principal (set
// by authenticate).
type requestInfo struct {
	route         string
	orgID         string
	principalKind string
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// notePrincipal records who the request was made by, for the access log.
func notePrincipal(ctx context.Context, p access.Principal) {
	if info := infoFrom(ctx); info != nil {
		info.orgID, info.principalKind = p.OrgID, string(p.Kind)
	}
}

// serveHTTP is the root handler, in front of the router, so that every
// request, matched or not, gets a correlation id, a trace id, a logger
// that carries them, a bounded body, a recovered panic, request metrics
// and its access-log line. HEAD is answered as the GET of the same route
// would be, without the body.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	correlation := r.Header.Get(headerCorrelationID)
	if !correlationPattern.MatchString(correlation) {
		correlation = uuid.Must(uuid.NewV7()).String()
	}
	// With tracing on, the request's span holds the trace (that of a valid
	// incoming traceparent, or a new one); off, the header is read here.
	traceID, _ := tracing.IDs(r.Context())
	if traceID == "" {
		traceID = traceIDFrom(r.Header)
	}
	if traceID == "" {
		traceID = strings.ReplaceAll(uuid.Must(uuid.NewRandom()).String(), "-", "")
	}
	w.Header().Set(headerCorrelationID, correlation)
	logger := s.deps.Logger.With("correlation_id", correlation, "trace_id", traceID)
	info := &requestInfo{route: routeUnmatched}
	ctx := context.WithValue(r.Context(), loggerKey, logger)
	ctx = context.WithValue(ctx, requestInfoKey{}, info)
	ctx = commands.WithOrigin(ctx, commands.Origin{
		CorrelationID: correlation,
		CausationID:   correlation,
		TraceID:       traceID,
		Method:        r.Method,
		Path:          truncate(r.URL.Path, 200),
		RemoteAddr:    r.RemoteAddr,
	})
	// Only document uploads may be large; JSON bodies are further held to
	// MaxBodyBytes by the decoder.
	limit := int64(MaxBodyBytes + 1)
	if strings.Contains(r.URL.Path, "/documents") {
		limit = MaxUploadBytes
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	req := r.WithContext(ctx)
	if r.Method == http.MethodHead && s.routeAllows(req, http.MethodGet) {
		req.Method = http.MethodGet
		rec.discardBody = true
	}
	s.recoverPanics(s.router).ServeHTTP(rec, req)

	took := time.Since(start)
	s.metrics.observe(r.Method, info.route, rec.status, took)
	if s.deps.AccessLog != nil {
		s.deps.AccessLog.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", methodLabel(r.Method)),
			slog.String("route", info.route),
			slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.String("org_id", info.orgID),
			slog.String("principal", info.principalKind),
			slog.String("correlation_id", correlation),
		)
	}
}

// nameRoute records the template of the route mux matched (a router
// middleware: it runs only for matched routes).
func (s *Server) nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					info.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowProbe is the order of the methods an Allow header lists.
var allowProbe = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// routeAllows reports whether a route takes method on r's path.
func (s *Server) routeAllows(r *http.Request, method string) bool {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	probe := r.Clone(r.Context())
	probe.Method = method
	var m mux.RouteMatch
	return s.router.Match(probe, &m) && m.MatchErr == nil
}

// notFound answers a request no route took: 405 with the methods the
// path does take (RFC 9110 §15.5.6), or 404. It asks every method itself
// because mux v1.8.1 reports a method mismatch inside a subrouter (/v1)
// as not found.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range allowProbe {
		if s.routeAllows(r, m) {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such route")
		return
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeProblem(w, r, http.StatusMethodNotAllowed, "method-not-allowed", "method not allowed on this route")
}

// MetricsHandler serves the metrics of g at /metrics (GET and HEAD), and
// nothing else: the handler of the separate metrics address.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/metrics":
			http.NotFound(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			metrics.ServeHTTP(w, r)
		}
	})
}
