package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced wraps h in a server span per request (otelhttp) when the server
// was given a tracer provider, and returns h unchanged when tracing is off.
//
// Only the W3C traceparent of a request is read (tracestate rides along
// to the span's children but never into an event; baggage is not read at
// all), through otelhttp's own parser: a malformed header is ignored and
// the request starts a trace of its own. Nothing global is used: the
// provider is the one in Deps, the propagator is given here, and
// otelhttp's metrics go to a no-op meter (the server's metrics are
// Prometheus, see metrics.go).
func (s *Server) traced(h http.Handler) http.Handler {
	tp := s.deps.TracerProvider
	if tp == nil {
		return h
	}
	s.router.Use(nameSpan)
	return otelhttp.NewHandler(h, "http.request",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return methodLabel(r.Method) }),
	)
}

// nameSpan names the request's span for its route template once mux has
// matched it ("POST /v1/bots"), never for the path, which holds ids.
func nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A span that does not record (not sampled) is not named.
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					span.SetName(r.Method + " " + tpl)
					span.SetAttributes(attribute.String("http.route", tpl))
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
