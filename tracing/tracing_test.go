package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/tracing"
)

func TestRemoteAcceptsOnlyWellFormedIDs(t *testing.T) {
	t.Parallel()
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		name            string
		traceID, spanID string
		ok              bool
	}{
		{"well-formed", tid, sid, true},
		{"no span id", tid, "", false},
		{"no trace id", "", sid, false},
		{"upper case", "4BF92F3577B34DA6A3CE929D0E0E4736", sid, false},
		{"zero trace id", "00000000000000000000000000000000", sid, false},
		{"zero span id", tid, "0000000000000000", false},
		{"short", tid[:31], sid, false},
		{"not hex", "4bf92f3577b34da6a3ce929d0e0e473g", sid, false},
		{"traceparent smuggled", "00-" + tid, sid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, ok := tracing.Remote(tc.traceID, tc.spanID)
			if ok != tc.ok {
				t.Fatalf("Remote(%q, %q) ok = %v, want %v", tc.traceID, tc.spanID, ok, tc.ok)
			}
			if ok && (sc.TraceID().String() != tc.traceID || sc.SpanID().String() != tc.spanID || !sc.IsRemote() || !sc.IsSampled()) {
				t.Fatalf("span context %v", sc)
			}
			ctx := tracing.ContinueFrom(context.Background(), tc.traceID, tc.spanID)
			if got := trace.SpanContextFromContext(ctx).IsValid(); got != tc.ok {
				t.Fatalf("ContinueFrom valid = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestIDsLeaveOutTheSpanOfAnUnsampledSpan(t *testing.T) {
	t.Parallel()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	for _, tc := range []struct {
		flags    trace.TraceFlags
		wantSpan string
	}{{trace.FlagsSampled, "00f067aa0ba902b7"}, {0, ""}} {
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: tc.flags}))
		gotTrace, gotSpan := tracing.IDs(ctx)
		if gotTrace != tid.String() || gotSpan != tc.wantSpan {
			t.Errorf("flags %v: IDs = %q %q, want %s %q", tc.flags, gotTrace, gotSpan, tid, tc.wantSpan)
		}
	}
	if a, b := tracing.IDs(context.Background()); a != "" || b != "" {
		t.Errorf("IDs without a span = %q %q", a, b)
	}
	// A span context already in ctx is not replaced by an event's.
	own := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	if got := trace.SpanContextFromContext(tracing.ContinueFrom(own, "5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7")); got.TraceID() != tid {
		t.Errorf("ContinueFrom replaced the span in ctx: %v", got)
	}
}
