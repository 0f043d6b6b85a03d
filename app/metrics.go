package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/eventstore"
)

// Operator metrics. No series carries an organization id: labels are
// bounded sets (group, relay, job kind, outcome, reason), so a scrape's
// size does not grow with the tenants and names none of them.

// opsMetrics are the collectors the write side and the jobs report to
// (commands.Observer) and the store and embedder decorators observe.
type opsMetrics struct {
	appendDuration *prometheus.HistogramVec
	embedDuration  prometheus.Histogram
	embedErrors    prometheus.Counter
	jobDuration    *prometheus.HistogramVec
	denials        *prometheus.CounterVec
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newOpsMetrics(reg prometheus.Registerer) *opsMetrics {
	m := &opsMetrics{
		appendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "palisade_eventstore_append_duration_seconds", Help: "Latency of appends to the event log, by outcome (ok, conflict, error).",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
		embedDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "palisade_embedding_duration_seconds", Help: "Latency of one call to the embedder (a batch of chunks or a query).",
			Buckets: latencyBuckets,
		}),
		embedErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "palisade_embedding_errors_total", Help: "Calls to the embedder that failed.",
		}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "palisade_job_duration_seconds", Help: "Duration of a job's work by kind (knowledge.ingestion is ingestion) and state it ended in (error: retried).",
			Buckets: latencyBuckets,
		}, []string{"kind", "state"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_authorization_denied_total", Help: "Refused authorizations by reason code.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.appendDuration, m.embedDuration, m.embedErrors, m.jobDuration, m.denials)
	return m
}

// Denied implements commands.Observer.
func (m *opsMetrics) Denied(reason string) { m.denials.WithLabelValues(reason).Inc() }

// JobDone implements commands.Observer.
func (m *opsMetrics) JobDone(kind, state string, took time.Duration) {
	m.jobDuration.WithLabelValues(kind, state).Observe(took.Seconds())
}

// timedStore is the event store with its appends timed.
type timedStore struct {
	eventstore.Store
	m *opsMetrics
}

func (s timedStore) Append(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events)
	s.m.observeAppend(start, err)
	return res, err
}

func (s timedStore) AppendIf(ctx context.Context, stream eventstore.StreamName, expected eventstore.ExpectedVersion, cond eventstore.Condition, events []eventstore.NewEvent) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.AppendIf(ctx, stream, expected, cond, events)
	s.m.observeAppend(start, err)
	return res, err
}

func (m *opsMetrics) observeAppend(start time.Time, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case isConflict(err):
		outcome = "conflict"
	default:
		outcome = "error"
	}
	m.appendDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

// timedEmbedder is the embedder with its calls timed, failures counted,
// and each call in a span of its own (a model call: ingestion's batches of
// chunks and each search's query).
type timedEmbedder struct {
	commands.Embedder
	m      *opsMetrics
	tracer trace.Tracer
}

func (e timedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	ctx, span := e.tracer.Start(ctx, "model call embed", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("palisade.model", e.Model()), attribute.Int("palisade.texts", len(texts))))
	defer span.End()
	start := time.Now()
	out, err := e.Embedder.Embed(ctx, texts)
	e.m.embedDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		e.m.embedErrors.Inc()
		span.RecordError(err)
		span.SetStatus(codes.Error, "embedding failed")
	}
	return out, err
}

// lagCollector reports, at each scrape, how far each consumer group and
// each relay is behind the head of the log, in events and in seconds
// (the age of the oldest event not yet applied or published; 0 when
// caught up), and how many analytics jobs wait for a worker.
type lagCollector struct {
	a *App

	mu      sync.Mutex
	relays  map[string]eventstore.Checkpoint
	workers map[string]eventstore.Checkpoint

	groupEvents, groupSeconds, relayEvents, relaySeconds, queued *prometheus.Desc
}

func newLagCollector(a *App) *lagCollector {
	return &lagCollector{
		a: a, relays: map[string]eventstore.Checkpoint{}, workers: map[string]eventstore.Checkpoint{},
		groupEvents:  prometheus.NewDesc("palisade_consumer_lag_events", "Events of the log a consumer group (read model or process) has not applied yet; a process's lag is its queue.", []string{"group"}, nil),
		groupSeconds: prometheus.NewDesc("palisade_consumer_lag_seconds", "Age of the oldest event a consumer group has not applied (0 when caught up).", []string{"group"}, nil),
		relayEvents:  prometheus.NewDesc("palisade_relay_lag_events", "Events of the log a relay has not published yet.", []string{"relay"}, nil),
		relaySeconds: prometheus.NewDesc("palisade_relay_lag_seconds", "Age of the oldest event a relay has not published (0 when caught up).", []string{"relay"}, nil),
		queued:       prometheus.NewDesc("palisade_jobs_queued", "Jobs waiting for a worker, by kind.", []string{"kind"}, nil),
	}
}

// addWorker makes an elected process's durable checkpoint part of the
// scrape, as a consumer group (saved every 500 events: the lag it shows
// may be that much more than the process's).
func (c *lagCollector) addWorker(name string, cp eventstore.Checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workers[name] = cp
}

// addRelay makes the relay's checkpoint part of the scrape.
func (c *lagCollector) addRelay(name string, cp eventstore.Checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.relays[name] = cp
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.groupEvents
	ch <- c.groupSeconds
	ch <- c.relayEvents
	ch <- c.relaySeconds
	ch <- c.queued
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, err := c.a.Log.Head(ctx)
	if err != nil {
		return
	}
	emit := func(events, seconds *prometheus.Desc, name string, pos uint64) {
		var lag uint64
		if head > pos {
			lag = head - pos
		}
		ch <- prometheus.MustNewConstMetric(events, prometheus.GaugeValue, float64(lag), name)
		ch <- prometheus.MustNewConstMetric(seconds, prometheus.GaugeValue, c.age(ctx, pos, lag), name)
	}
	if c.a.Engine != nil {
		for name, pos := range c.a.Engine.Positions() {
			emit(c.groupEvents, c.groupSeconds, name, pos)
		}
	}
	c.mu.Lock()
	relays := make(map[string]eventstore.Checkpoint, len(c.relays))
	for k, v := range c.relays {
		relays[k] = v
	}
	workers := make(map[string]eventstore.Checkpoint, len(c.workers))
	for k, v := range c.workers {
		workers[k] = v
	}
	c.mu.Unlock()
	for name, cp := range relays {
		if pos, err := cp.Load(ctx); err == nil {
			emit(c.relayEvents, c.relaySeconds, name, pos)
		}
	}
	for name, cp := range workers {
		if pos, err := cp.Load(ctx); err == nil {
			emit(c.groupEvents, c.groupSeconds, name, pos)
		}
	}
	for _, p := range c.a.processes {
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(p.pool.Queued()), p.jobs)
	}
}

// age is how old the first event after pos is, or 0 when nothing lags.
func (c *lagCollector) age(ctx context.Context, pos, lag uint64) float64 {
	if lag == 0 {
		return 0
	}
	next, err := c.a.Log.ReadAll(ctx, pos, eventstore.Filter{}, 1)
	if err != nil || len(next) == 0 {
		return 0
	}
	return time.Since(next[0].OccurredAt).Seconds()
}

func isConflict(err error) bool { return errors.Is(err, eventstore.ErrConflict) }
