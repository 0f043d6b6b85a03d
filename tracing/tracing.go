// Package tracing owns how Palisade's spans join up across the log: the
// W3C trace context an event's metadata records (its trace id and the id
// of the span that appended it), read back and checked before a process
// or projection continues the trace, and the tracer every part takes from
// the provider it is given.
//
// It never installs or reads OpenTelemetry's global provider or
// propagator: each part is handed a trace.TracerProvider (app builds it
// from the OTEL_* environment, tests hand in an SDK provider with an
// in-memory exporter), and nil means off. It never carries tracestate or
// baggage into an event: those are free text a client chose, and an event
// belongs to one organization, so only the two ids cross, and only when
// both are well-formed.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope of Palisade's own spans.
const Scope = "github.com/palisadehq/palisade"

// Tracer returns Palisade's tracer from tp, or a no-op tracer when tp is
// nil (tracing off).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(Scope)
	}
	return tp.Tracer(Scope)
}

// IDs returns the trace and span ids of the span in ctx, as lower-case
// hex, or two empty strings when ctx carries no valid span context. The
// span id is left empty when the span is not sampled: what an event
// causes then starts a trace of its own (as the sampler decides) instead
// of hanging below a span no backend received.
func IDs(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	if !sc.IsSampled() {
		return sc.TraceID().String(), ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// Remote returns the span context an event recorded (traceID and spanID
// as IDs wrote them), sampled and remote, and whether both ids were
// well-formed: 32 and 16 lower-case hex digits, not all zero. Anything
// else (absent, upper case, wrong length, a zero id) is ignored.
func Remote(traceID, spanID string) (trace.SpanContext, bool) {
	if !lowerHex(traceID, 32) || !lowerHex(spanID, 16) {
		return trace.SpanContext{}, false
	}
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	return sc, sc.IsValid()
}

// ContinueFrom returns ctx with the event's recorded span context as the
// remote parent of the next span started from it, when ctx has no valid
// span of its own and the ids are well-formed; otherwise ctx unchanged.
func ContinueFrom(ctx context.Context, traceID, spanID string) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	sc, ok := Remote(traceID, spanID)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
