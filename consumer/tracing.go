package consumer

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/tracing"
)

// startSpan starts the span of group p applying env from the bus, a child
// of the span env's metadata recorded when that is well-formed (a root
// otherwise). Only the event's own ids are used, so a span of one
// organization's event never joins another's trace; groups without a
// handler for env's type (they only advance their position) get none.
func (e *Engine) startSpan(ctx context.Context, p *Group, env eventstore.Envelope) (context.Context, trace.Span) {
	if _, ok := p.byType[env.Type]; !ok {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	parent := trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	if sc, ok := tracing.Remote(env.TraceID, env.SpanID); ok {
		parent = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return e.tracer.Start(parent, p.spanName, consumerKind,
		trace.WithAttributes(
			attribute.String("palisade.group", p.Name),
			attribute.String("palisade.event.type", env.Type),
			attribute.String("palisade.org_id", env.OrgID),
			attribute.Int64("palisade.position", int64(env.Position)),
		))
}

// consumerKind is the span kind of a group's spans, built once: the option
// is an allocation each time it is made.
var consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)

// maxBatchLinks bounds the links of a batch span to the spans of the
// events it applied beyond the first.
const maxBatchLinks = 32

// startBatchSpan starts the span of read-model group p applying batch
// from the bus (nil when tracing is off, or when no event of it has a
// handler: only the position moves). One span per batch, not per event,
// as issue 13 asks, which is cheaper where batches are large. It is a child of
// the span the first traced event's metadata recorded when every traced
// event of the batch is of that event's organization, so that a request's
// trace shows the projections it caused and no organization's batch joins
// another's trace; otherwise it is a root. The spans of the other events
// are links (at most maxBatchLinks).
func (e *Engine) startBatchSpan(p *Group, batch []*delivery) trace.Span {
	if !e.traced {
		return nil
	}
	var first *delivery
	handled, sameOrg := 0, true
	for _, d := range batch {
		if !d.handled() {
			continue
		}
		handled++
		if first == nil {
			first = d
		} else if d.env.OrgID != first.env.OrgID {
			sameOrg = false
		}
	}
	if first == nil {
		return nil
	}
	// What a span costs is mostly allocations, paid per batch of every
	// read model: a root is asked for by option rather than by a context,
	// and attributes and links are built only for a span that records
	// (the samplers the OTEL_* variables choose read neither).
	parent, kind := context.Background(), consumerKind
	var (
		parentSC trace.SpanContext
		span     trace.Span
	)
	if sc, ok := tracing.Remote(first.env.TraceID, first.env.SpanID); ok && sameOrg {
		parent, parentSC = trace.ContextWithRemoteSpanContext(parent, sc), sc
		_, span = e.tracer.Start(parent, p.spanName, kind)
	} else {
		_, span = e.tracer.Start(parent, p.spanName, kind, trace.WithNewRoot())
	}
	if !span.IsRecording() {
		return span
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		attribute.String("palisade.group", p.Name),
		attribute.Int("palisade.events", handled),
		attribute.Int64("palisade.position.first", int64(first.env.Position)),
		attribute.Int64("palisade.position.last", int64(batch[len(batch)-1].env.Position)),
	)
	if sameOrg {
		attrs = append(attrs, attribute.String("palisade.org_id", first.env.OrgID))
	}
	if handled == 1 {
		attrs = append(attrs, attribute.String("palisade.event.type", first.env.Type))
	}
	span.SetAttributes(attrs...)
	if handled > 1 {
		var last trace.SpanContext
		links := 0
		for _, d := range batch {
			if links == maxBatchLinks {
				break
			}
			if !d.handled() {
				continue
			}
			sc, ok := tracing.Remote(d.env.TraceID, d.env.SpanID)
			if !ok || sc.Equal(parentSC) || sc.Equal(last) {
				continue
			}
			span.AddLink(trace.Link{SpanContext: sc})
			links, last = links+1, sc
		}
	}
	return span
}
