package consumer_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections/memory"
)

// tracedEnvelope is a BotCreated of org at pos whose metadata records the
// span (trace, span: 32 and 16 hex digits) that appended it.
func tracedEnvelope(t *testing.T, pos uint64, org, traceID, spanID string) eventstore.Envelope {
	env := envelope(t, pos, org, "bot")
	env.TraceID, env.SpanID = traceID, spanID
	return env
}

func spanContext(t *testing.T, traceID, spanID string) trace.SpanContext {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(spanID)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

func attr(s sdktrace.ReadOnlySpan, key string) (string, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

// A read model's events are traced per batch: one span for the events
// applied together, a child of the first event's span when the batch is
// one organization's (the others linked), a root linking them all when it
// mixes organizations. A process keeps a span per event, below that
// event's span.
func TestReadModelsAreTracedPerBatchAndProcessesPerEvent(t *testing.T) {
	t.Parallel()
	const (
		t1, s1 = "11111111111111111111111111111111", "1111111111111111"
		t2, s2 = "22222222222222222222222222222222", "2222222222222222"
		t3, s3 = "33333333333333333333333333333333", "3333333333333333"
	)
	for _, tc := range []struct {
		name      string
		batch     []eventstore.Envelope // positions 2 on, applied as one batch
		parent    trace.SpanContext     // zero: a root
		links     []trace.SpanContext
		org       string // the org attribute; "" for none
		processes int    // process spans of the batch's events
	}{
		{
			name: "one organization",
			batch: []eventstore.Envelope{
				tracedEnvelope(t, 2, "org-a", t2, s2), tracedEnvelope(t, 3, "org-a", t2, s2), tracedEnvelope(t, 4, "org-a", t3, s3),
			},
			parent: spanContext(t, t2, s2), links: []trace.SpanContext{spanContext(t, t3, s3)}, org: "org-a", processes: 3,
		},
		{
			name: "two organizations",
			batch: []eventstore.Envelope{
				tracedEnvelope(t, 2, "org-a", t2, s2), tracedEnvelope(t, 3, "org-b", t3, s3),
			},
			links: []trace.SpanContext{spanContext(t, t2, s2), spanContext(t, t3, s3)}, processes: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, tp := recordSpans(t)
			hold, entered, free := holdFirst()
			model := &txModel{}
			var mu sync.Mutex
			var processed []uint64
			process := &consumer.Group{Name: "steps", Kind: consumer.Process, Handlers: []consumer.Handler{
				consumer.On(func(_ context.Context, env eventstore.Envelope, _ *bots.BotCreated) error {
					mu.Lock()
					defer mu.Unlock()
					processed = append(processed, env.Position)
					return nil
				}),
			}}
			engine := consumer.NewEngine(quietLogger(), memory.NewCheckpoints(), model.group(hold), process)
			engine.TraceWith(tp)
			b := attach(t, engine)
			t.Cleanup(free)
			b.publishAll(t, []eventstore.Envelope{tracedEnvelope(t, 1, "org-a", t1, s1)})
			<-entered
			b.publishAll(t, tc.batch)
			free()
			last := uint64(len(tc.batch) + 1)
			wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := engine.WaitFor(wait, last); err != nil {
				t.Fatal(err)
			}
			if _, units, _ := model.snapshot(); units != 2 {
				t.Fatalf("%d units of work, want 2 (the event held back, then the batch)", units)
			}

			var batch []sdktrace.ReadOnlySpan
			deadline := time.Now().Add(10 * time.Second)
			for {
				batch = batch[:0]
				steps := 0
				for _, s := range rec.Ended() {
					switch s.Name() {
					case "projection tx":
						if first, _ := attr(s, "palisade.position.first"); first != "1" {
							batch = append(batch, s)
						}
					case "process steps":
						if pos, _ := attr(s, "palisade.position"); pos != "1" {
							steps++
							if sc := spanContextOf(t, tc.batch, pos); !s.Parent().Equal(sc) {
								t.Fatalf("process span at %s: parent %v, want its event's span %v", pos, s.Parent(), sc)
							}
						}
					}
				}
				// The batch's span ends just after its position is
				// reached; the process applies on its own.
				if steps == tc.processes && len(batch) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d process spans for the batch's events, want one per event (%d); %d read-model spans",
						steps, tc.processes, len(batch))
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(batch) != 1 {
				t.Fatalf("%d read-model spans for one batch of %d events, want one", len(batch), len(tc.batch))
			}
			s := batch[0]
			if !s.Parent().Equal(tc.parent) {
				t.Errorf("batch span parent %v, want %v", s.Parent(), tc.parent)
			}
			var links []trace.SpanContext
			for _, l := range s.Links() {
				links = append(links, l.SpanContext)
			}
			if !slices.EqualFunc(links, tc.links, trace.SpanContext.Equal) {
				t.Errorf("batch span links %v, want %v", links, tc.links)
			}
			if org, ok := attr(s, "palisade.org_id"); org != tc.org || ok != (tc.org != "") {
				t.Errorf("batch span org %q (set %v), want %q", org, ok, tc.org)
			}
			if n, _ := attr(s, "palisade.events"); n != strconv.Itoa(len(tc.batch)) {
				t.Errorf("batch span events %s, want %d", n, len(tc.batch))
			}
			if s.SpanKind() != trace.SpanKindConsumer {
				t.Errorf("batch span kind %v, want consumer", s.SpanKind())
			}
		})
	}
}

// spanContextOf returns the span recorded by the event of batch at
// position pos (decimal).
func spanContextOf(t *testing.T, batch []eventstore.Envelope, pos string) trace.SpanContext {
	t.Helper()
	for _, env := range batch {
		if pos == strconv.FormatUint(env.Position, 10) {
			return spanContext(t, env.TraceID, env.SpanID)
		}
	}
	t.Fatalf("no event at position %s", pos)
	return trace.SpanContext{}
}

// A batch that an event which does not decode cuts short is applied up to
// that event under one span, over what it applied: not under that span
// and a second one over the whole batch, as when the applier started the
// span before dispatching (it applies the part before the event by calling
// itself).
func TestABatchCutShortHasOneSpan(t *testing.T) {
	t.Parallel()
	const tid, sid = "44444444444444444444444444444444", "4444444444444444"
	rec, tp := recordSpans(t)
	hold, entered, free := holdFirst()
	model := &txModel{}
	engine := consumer.NewEngine(quietLogger(), memory.NewCheckpoints(), model.group(hold))
	engine.TraceWith(tp)
	b := attach(t, engine)
	t.Cleanup(free)
	var envs []eventstore.Envelope
	for pos := uint64(1); pos <= 5; pos++ {
		envs = append(envs, tracedEnvelope(t, pos, "org-a", tid, sid))
	}
	envs[3].Data = []byte(`{"id": 7}`) // position 4: an id that is not a string
	b.publishAll(t, envs[:1])
	<-entered
	b.publishAll(t, envs[1:]) // 2..5 queue as one batch
	free()
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := engine.WaitFor(wait, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a few retries of position 4

	var batchSpans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "projection tx" {
			batchSpans = append(batchSpans, s)
		}
	}
	var cut []sdktrace.ReadOnlySpan
	for _, s := range batchSpans {
		if first, _ := attr(s, "palisade.position.first"); first == "2" {
			cut = append(cut, s)
		}
	}
	if len(cut) != 1 {
		t.Fatalf("%d spans for the batch from position 2, want 1", len(cut))
	}
	if last, _ := attr(cut[0], "palisade.position.last"); last != "3" {
		t.Errorf("the cut batch's span ends at %s, want 3 (before the event that does not decode)", last)
	}
	if n, _ := attr(cut[0], "palisade.events"); n != "2" {
		t.Errorf("the cut batch's span counts %s events, want 2", n)
	}
}

// recordSpans returns a provider that samples every span into rec.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

// holdFirst returns a read model's apply that holds the event at position
// 1 back until free is called, so that the events published meanwhile
// queue behind it and are applied as one batch; entered is closed once it
// holds. Register free as a cleanup after the engine's, so that a failing
// test releases the hold before the engine closes.
func holdFirst() (hold func(eventstore.Envelope) error, entered <-chan struct{}, free func()) {
	release, in := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	hold = func(env eventstore.Envelope) error {
		if env.Position == 1 {
			close(in)
			<-release
		}
		return nil
	}
	return hold, in, free
}
