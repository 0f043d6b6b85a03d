package commands

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/tracing"
)

// Option tunes a Pipeline.
type Option func(*Pipeline)

// WithDenialWindow sets how long repeated denials of one principal for one
// permission are coalesced (DefaultDenialWindow when d ≤ 0).
func WithDenialWindow(d time.Duration) Option {
	return func(p *Pipeline) {
		p.denials = newDenialCoalescer(d, time.Now, p.recordCoalesced)
	}
}

// WithTracerProvider makes the pipeline trace its commands, appends and
// jobs with tp (nil: off).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(p *Pipeline) { p.tracer = tracing.Tracer(tp) }
}

// WithResourceQuotas makes creates of quota-bound resources ask q first.
func WithResourceQuotas(q ResourceQuotas) Option {
	return func(p *Pipeline) { p.quotas = q }
}

// Kinds of stored resources an organization's quotas bound.
const (
	ResourceBots           = "bots"
	ResourceKnowledgeBases = "knowledge_bases"
	ResourceDocuments      = "documents"
)

// ResourceQuotas says whether an organization may store one more resource
// of a kind; a refusal wraps domain.ErrQuotaExceeded. The count it checks
// against is the one the read models have reached, so concurrent creates
// can pass it together: it is a bound on growth, not an exact ceiling.
type ResourceQuotas interface {
	AdmitResource(ctx context.Context, orgID, kind string) error
}

// admitResource asks the configured quotas, if any.
func (p *Pipeline) admitResource(ctx context.Context, orgID, kind string) error {
	if p.quotas == nil {
		return nil
	}
	return p.quotas.AdmitResource(ctx, orgID, kind)
}

// Observer is told what the pipeline does, for an operator's metrics. Its
// arguments are bounded sets (no organization, no subject), so they can be
// labels.
type Observer interface {
	// Denied is called for every refused authorization, with the reason's
	// code (access.Reason.Code).
	Denied(reason string)
	// JobDone is called when a job's work has run, with the job's kind,
	// the state it ended in ("succeeded", "failed", "cancelled", or
	// "error" when the work returned an error and will be retried) and
	// how long the work took.
	JobDone(kind, state string, took time.Duration)
}

// WithObserver has the pipeline report denials and jobs to o.
func WithObserver(o Observer) Option {
	return func(p *Pipeline) { p.observer = o }
}
