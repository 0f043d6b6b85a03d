package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/eventstore"
)

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
)

// tracedHarness is a harness whose tracer provider records every span.
func tracedHarness(t *testing.T) (*harness, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.TracerProvider = tp })
	return h, rec
}

// waitSpan returns the first ended span named name in trace tid, waiting
// (bounded) for the processes that end it.
func waitSpan(t *testing.T, rec *tracetest.SpanRecorder, tid trace.TraceID, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range rec.Ended() {
			if s.Name() == name && s.SpanContext().TraceID() == tid {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range rec.Ended() {
				names = append(names, s.Name()+"@"+s.SpanContext().TraceID().String())
			}
			t.Fatalf("no span %q in trace %s; ended: %s", name, tid, strings.Join(names, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func assertChild(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.Parent().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q: parent %s/%s, want %q (%s/%s)", child.Name(), child.Parent().TraceID(), child.Parent().SpanID(),
			parent.Name(), parent.SpanContext().TraceID(), parent.SpanContext().SpanID())
	}
}

// eventOfType returns the first event of type typ in the log.
func eventOfType(t *testing.T, h *harness, typ string) eventstore.Envelope {
	t.Helper()
	envs, err := h.app.Store.ReadAll(context.Background(), 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		if env.Type == typ {
			return env
		}
	}
	t.Fatalf("no %s in the log", typ)
	return eventstore.Envelope{}
}

// One upload is one trace: the request (continuing the caller's
// traceparent), its command and append, the projections that applied the
// event, and the ingestion process with its job and the job's own commands,
// each below the span that caused it; the event's metadata carries the
// append span, which is how the process and the pooled job found their
// parent.
func TestTracingFollowsAnUploadIntoItsProcesses(t *testing.T) {
	t.Parallel()
	h, rec := tracedHarness(t)
	_, owner := h.createOrg("Traced", "owner")
	kb := h.createKB(owner, "manuals")
	var doc kbDoc
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner,
		map[string]any{"title": "Pumps", "content_type": "text/plain", "content": "Pumps move water. Valves stop it."},
		"Traceparent", "00-"+incomingTraceID+"-"+incomingSpanID+"-01").json(t, &doc)
	if got := h.waitDoc(owner, kb, doc.ID); got.State == "pending" {
		t.Fatalf("document still pending")
	}
	tid, _ := trace.TraceIDFromHex(incomingTraceID)

	request := waitSpan(t, rec, tid, "POST /v1/knowledge-bases/{id}/documents")
	if request.SpanKind() != trace.SpanKindServer || request.Parent().SpanID().String() != incomingSpanID || !request.Parent().IsRemote() {
		t.Errorf("request span: kind %v parent %s remote %v, want a server span below the caller's %s",
			request.SpanKind(), request.Parent().SpanID(), request.Parent().IsRemote(), incomingSpanID)
	}
	command := waitSpan(t, rec, tid, "command DocumentAdded")
	assertChild(t, command, request)
	appendSpan := waitSpan(t, rec, tid, "append doc")
	assertChild(t, appendSpan, command)

	added := eventOfType(t, h, "DocumentAdded")
	if added.TraceID != incomingTraceID || added.SpanID != appendSpan.SpanContext().SpanID().String() {
		t.Errorf("DocumentAdded metadata trace %q span %q, want %s and the append span %s",
			added.TraceID, added.SpanID, incomingTraceID, appendSpan.SpanContext().SpanID())
	}

	projection := waitSpan(t, rec, tid, "projection audit")
	assertChild(t, projection, appendSpan)
	process := waitSpan(t, rec, tid, "process ingestion")
	assertChild(t, process, appendSpan)
	if process.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("process span kind %v, want consumer", process.SpanKind())
	}
	// The process hands the version to the ingestion pool; the job runs
	// there and continues the trace the event recorded.
	job := waitSpan(t, rec, tid, "job knowledge.ingestion")
	assertChild(t, job, appendSpan)
	chunked := waitSpan(t, rec, tid, "command DocumentChunked")
	assertChild(t, chunked, job)
	embed := waitSpan(t, rec, tid, "model call embed")
	assertChild(t, embed, job)
	if embed.SpanKind() != trace.SpanKindClient {
		t.Errorf("embedding span kind %v, want client", embed.SpanKind())
	}

	// The events the process recorded carry the same trace.
	if got := eventOfType(t, h, "DocumentChunked"); got.TraceID != incomingTraceID || got.SpanID == "" {
		t.Errorf("DocumentChunked metadata trace %q span %q, want %s and a span", got.TraceID, got.SpanID, incomingTraceID)
	}
	// The audit read model keeps the trace id, not the span id (no
	// adapter column for it).
	var page struct {
		Events []map[string]any `json:"events"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=DocumentAdded", owner, nil).json(t, &page)
	for _, e := range page.Events {
		if _, ok := e["span_id"]; ok || e["trace_id"] != incomingTraceID {
			t.Errorf("audit event %v: want trace_id %s and no span_id", e, incomingTraceID)
		}
	}
}

// A malformed traceparent is ignored: the request starts a trace of its
// own, which is the one the event records.
func TestTracingIgnoresAMalformedTraceparent(t *testing.T) {
	t.Parallel()
	h, rec := tracedHarness(t)
	_, owner := h.createOrg("Traced", "owner")
	for i, header := range []string{
		"00-" + strings.ToUpper(incomingTraceID) + "-" + incomingSpanID + "-01", // upper case
		"00-00000000000000000000000000000000-" + incomingSpanID + "-01",         // zero trace id
		"00-" + incomingTraceID + "-0000000000000000-01",                        // zero span id
		"ff-" + incomingTraceID + "-" + incomingSpanID + "-01",                  // forbidden version
		"00-" + incomingTraceID[:30] + "-" + incomingSpanID + "-01",             // short
		"not a traceparent",
	} {
		h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner,
			map[string]any{"name": "bot " + header, "instructions": "x"}, "Traceparent", header)
		var request sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == "POST /v1/bots" {
				request = s // the last one is this request's
			}
		}
		if request == nil {
			t.Fatalf("%d: no request span", i)
		}
		if request.Parent().IsValid() || request.SpanContext().TraceID().String() == incomingTraceID {
			t.Errorf("%d %q: request span parent %v trace %s, want a new root", i, header, request.Parent(), request.SpanContext().TraceID())
		}
	}
	envs, err := h.app.Store.ReadAll(context.Background(), 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	bots := 0
	for _, env := range envs {
		if env.Type != "BotCreated" {
			continue
		}
		bots++
		if env.TraceID == incomingTraceID || len(env.TraceID) != 32 || len(env.SpanID) != 16 {
			t.Errorf("BotCreated trace %q span %q, want a trace of its own", env.TraceID, env.SpanID)
		}
	}
	if bots != 6 {
		t.Fatalf("%d bots, want 6", bots)
	}
}

// Off (no provider), nothing is traced: no span id reaches an event, and
// the trace id is still taken from a valid traceparent, as before tracing
// existed.
func TestTracingOffRecordsNoSpans(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Untraced", "owner")
	h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{"name": "b", "instructions": "x"},
		"Traceparent", "00-"+incomingTraceID+"-"+incomingSpanID+"-01")
	h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{"name": "c", "instructions": "x"},
		"Traceparent", "00-"+strings.ToUpper(incomingTraceID)+"-"+incomingSpanID+"-01")
	envs, err := h.app.Store.ReadAll(context.Background(), 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var traces []string
	for _, env := range envs {
		if env.SpanID != "" {
			t.Errorf("%s carries span id %q with tracing off", env.Type, env.SpanID)
		}
		if env.Type == "BotCreated" {
			traces = append(traces, env.TraceID)
		}
	}
	if len(traces) != 2 || traces[0] != incomingTraceID || traces[1] == incomingTraceID || len(traces[1]) != 32 {
		t.Errorf("trace ids %q, want the valid header's, then a fresh one for the malformed header", traces)
	}
}

func TestTracingFromEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr bool
	}{
		{name: "unset is off", env: nil},
		{name: "none is off", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "disabled wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}},
		{name: "otlp over grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "otlp over http", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaegr"}, wantErr: true},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "udp"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := app.TracingFromEnv(context.Background(), func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if (tr.Provider != nil) != tc.on {
				t.Fatalf("provider %v, want on %v", tr.Provider, tc.on)
			}
			if err == nil {
				if err := tr.Shutdown(context.Background()); err != nil {
					t.Fatalf("shutdown: %v", err)
				}
			}
		})
	}
}

// An analytics question is one trace too: its job, the translation (a
// model call) and the query on the data source are spans below the job,
// and none of their attributes carries the question, the SQL or a row.
func TestTracingFollowsAnAnalyticsJob(t *testing.T) {
	t.Parallel()
	h, rec := tracedHarness(t)
	org, owner := h.createOrg("Traced", "owner")
	ana := h.addMember(org, owner, "ana", "analyst")
	src := createSource(t, h, owner, sqliteSales(t, h, org, 10), []string{"sales"},
		datasources.Grant{Subject: "user:ana", Permissions: queryGrant})
	var accepted struct{ ID string }
	h.must(http.StatusAccepted, http.MethodPost, "/v1/analytics/jobs", ana,
		map[string]string{"data_source_id": src, "question": "how many sales by region"},
		"Traceparent", "00-"+incomingTraceID+"-"+incomingSpanID+"-01").json(t, &accepted)
	if job := awaitJob(t, h, ana, accepted.ID); job.State != "succeeded" {
		t.Fatalf("job = %+v", job)
	}
	tid, _ := trace.TraceIDFromHex(incomingTraceID)
	job := waitSpan(t, rec, tid, "job analytics.query")
	translate := waitSpan(t, rec, tid, "model call translate")
	assertChild(t, translate, job)
	query := waitSpan(t, rec, tid, "query data source")
	assertChild(t, query, job)
	for _, s := range []sdktrace.ReadOnlySpan{translate, query} {
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %q kind %v, want client", s.Name(), s.SpanKind())
		}
		for _, kv := range s.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, "sales") || strings.Contains(v, "region") {
				t.Errorf("span %q attribute %s = %q carries the question or the SQL", s.Name(), kv.Key, v)
			}
		}
	}
	rows := false
	for _, kv := range query.Attributes() {
		rows = rows || (kv.Key == "palisade.rows" && kv.Value.AsInt64() == 5)
	}
	if !rows {
		t.Errorf("query span attributes %v, want palisade.rows = 5", query.Attributes())
	}
}

// With a sampler below 1 (what OTEL_TRACES_SAMPLER=parentbased_traceidratio
// sets), a sampled request's trace is whole, its spans named and described
// as with every trace sampled (the spans of a trace that is not sampled
// are named and described only when they record), and no span of a trace
// that was not sampled is recorded at all.
func TestASampledTraceIsWhole(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5))), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.TracerProvider = tp })
	org, owner := h.createOrg("Sampled", "owner")
	for i := range 30 {
		h.createBot(owner, fmt.Sprintf("bot %d", i))
	}
	orgOf := func(s sdktrace.ReadOnlySpan) string {
		for _, kv := range s.Attributes() {
			if kv.Key == "palisade.org_id" {
				return kv.Value.AsString()
			}
		}
		return ""
	}
	requests := map[trace.TraceID]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.Name() == "POST /v1/bots" {
			requests[s.SpanContext().TraceID()] = s
		}
	}
	if len(requests) == 0 || len(requests) == 30 {
		t.Fatalf("%d of 30 requests sampled at one in two", len(requests))
	}
	for tid, request := range requests {
		command := waitSpan(t, rec, tid, "command BotCreated")
		assertChild(t, command, request)
		appendSpan := waitSpan(t, rec, tid, "append bot")
		assertChild(t, appendSpan, command)
		projection := waitSpan(t, rec, tid, "projection bots")
		assertChild(t, projection, appendSpan)
		for _, s := range []sdktrace.ReadOnlySpan{command, appendSpan, projection} {
			if orgOf(s) != org {
				t.Errorf("span %q: palisade.org_id %q, want %s", s.Name(), orgOf(s), org)
			}
		}
		// The command and the append describe what they wrote.
		for _, want := range []struct {
			span sdktrace.ReadOnlySpan
			key  attribute.Key
			ok   func(attribute.Value) bool
		}{
			{command, "palisade.stream.category", func(v attribute.Value) bool { return v.AsString() == "bot" }},
			{command, "palisade.events", func(v attribute.Value) bool { return v.AsInt64() == 1 }},
			{appendSpan, "palisade.stream.category", func(v attribute.Value) bool { return v.AsString() == "bot" }},
			{appendSpan, "palisade.events", func(v attribute.Value) bool { return v.AsInt64() == 1 }},
			{appendSpan, "palisade.position", func(v attribute.Value) bool { return v.AsInt64() > 0 }},
		} {
			i := slices.IndexFunc(want.span.Attributes(), func(kv attribute.KeyValue) bool { return kv.Key == want.key })
			if i < 0 || !want.ok(want.span.Attributes()[i].Value) {
				t.Errorf("span %q: attributes %v, want %s set as written", want.span.Name(), want.span.Attributes(), want.key)
			}
		}
	}
	sampled := map[trace.TraceID]bool{}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			sampled[s.SpanContext().TraceID()] = true
		}
	}
	for _, s := range rec.Ended() {
		if s.Name() == "command" || s.Name() == "append" {
			t.Errorf("a recorded span kept the name it has when not sampled: %q", s.Name())
		}
		if (strings.HasPrefix(s.Name(), "command ") || strings.HasPrefix(s.Name(), "append ")) && !sampled[s.SpanContext().TraceID()] {
			t.Errorf("span %q of trace %s recorded, whose request was not sampled", s.Name(), s.SpanContext().TraceID())
		}
	}
}
