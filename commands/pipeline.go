// Package commands owns the write side: the core every command goes
// through ([Pipeline]: authorize with access.Decide, load the aggregate
// from its stream, let it decide, decide the principal's authority again
// against its organization's tenancy aggregate and append org-tagged
// events with full metadata only if the tenancy stream is still at the
// version that decision used), the record of denied attempts in each organization's security
// stream, one handler type per bounded context over that core
// ([Tenancy], [Bots], [Knowledge]), grouped as [Commands], and [RunJob],
// which runs a job (domain/jobs) from a process: re-authorized with the
// principal recorded on its trigger, its outcome recorded once; ingestion is one
// such job, which chunks documents and embeds the chunks ([ChunkEmbedding]:
// the durable embedding store first, the embedder only for what it lacks)
// before it records them. HTTP routes,
// bot tools and workflow steps call the same handlers.
//
// It must never read a read model to make a decision — aggregates are
// loaded from the log — and never append an event whose organization is
// not the principal's (the platform creating an organization is the one
// exception, and it appends only to the new organization's stream).
package commands

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/tracing"
)

// Origin is where a command or query came from. The HTTP layer puts it in
// the request context; it ends up in every event's metadata.
type Origin struct {
	CorrelationID  string
	CausationID    string
	TraceID        string
	IdempotencyKey string
	// IdempotentRequest identifies, when IdempotencyKey is set, the
	// request the key stands for: the principal as it is now
	// (permissions included), the key, and the method, path, query and
	// body (the HTTP layer's hash). Creates derive their id from it.
	IdempotentRequest string
	Method            string
	Path              string
	RemoteAddr        string
}

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin in ctx (zero if none).
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Result is what an accepted command reports: the log position of its last
// event (0 when the command changed nothing) and the id of the resource.
type Result struct {
	ID       string
	Position uint64
	// Version is the stream version of the last event, At the time the
	// events were recorded (both zero when nothing changed).
	Version uint64
	At      time.Time
	// events are what the command appended, for handlers that answer
	// with the record they created.
	events []domain.Event
}

// maxConflictRetries bounds how often a command re-reads its aggregate and
// decides again after losing an optimistic-concurrency race (after a short
// jittered wait, so that a burst of writers to one stream spreads out).
const maxConflictRetries = 16

// Pipeline is the write core: it runs commands against the event store.
// Handlers of each bounded context hold one and add the rules of their
// use cases.
type Pipeline struct {
	store    eventstore.Store
	registry *events.Registry
	now      func() time.Time
	logger   *slog.Logger
	denials  *denialCoalescer
	quotas   ResourceQuotas
	observer Observer
	// authority keeps each organization's tenancy aggregate, which every
	// allowed command is decided against again before it appends.
	authority *authority
	// tracer starts the spans of commands, appends and jobs (no-op
	// unless WithTracerProvider gave a provider).
	tracer trace.Tracer
	// digests name content in ids and keys that are not sealed (nil:
	// plain SHA-256; see WithDigestKeys).
	digests DigestKeys
}

// NewPipeline returns a pipeline appending to store.
func NewPipeline(store eventstore.Store, registry *events.Registry, logger *slog.Logger, opts ...Option) *Pipeline {
	p := &Pipeline{store: store, registry: registry, now: eventstore.Now, logger: logger, authority: newAuthority(),
		tracer: tracing.Tracer(nil)}
	for _, o := range opts {
		o(p)
	}
	if p.denials == nil {
		p.denials = newDenialCoalescer(DefaultDenialWindow, time.Now, p.recordCoalesced)
	}
	return p
}

// aggregate is what the pipeline loads: anything that folds events.
type aggregate interface {
	Apply(domain.Event)
}

// authorize decides and, when denied, records the attempt and returns a
// forbidden error.
func (p *Pipeline) authorize(ctx context.Context, who access.Principal, action access.Permission, res access.Resource, resource string) (access.Decision, error) {
	d := access.Decide(who, action, res)
	if d.Allowed {
		return d, nil
	}
	p.RecordDenial(ctx, who, d, resource)
	return d, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
}

// execute loads the aggregate in stream, lets decide produce events and
// appends them at the version it read, retrying a few times when another
// writer got there first (decide then sees the new state).
func (p *Pipeline) execute(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	newAggregate func() aggregate, decide func(aggregate) ([]domain.Event, error)) (Result, error) {
	return p.executeFrom(ctx, who, d, stream, newAggregate, decide, false)
}

// create is execute for a stream that is almost certainly new (a fresh
// UUIDv7): it decides on an empty aggregate and appends expecting no
// stream, skipping the read; only if the stream turns out to exist does it
// load and decide again.
func (p *Pipeline) create(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	newAggregate func() aggregate, decide func(aggregate) ([]domain.Event, error)) (Result, error) {
	return p.executeFrom(ctx, who, d, stream, newAggregate, decide, true)
}

func (p *Pipeline) executeFrom(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	newAggregate func() aggregate, decide func(aggregate) ([]domain.Event, error), assumeNew bool) (_ Result, err error) {
	// One span per command, named for what it recorded ("command
	// BotCreated"), or for its stream's category when it recorded nothing.
	// Its name and attributes are built only for a span that records (most
	// are not sampled where tracing is costly enough to sample, and the
	// samplers the OTEL_* variables choose read neither), once, when it
	// ends: each name and each call that sets attributes is an allocation.
	ctx, span := p.tracer.Start(ctx, "command")
	var res Result
	defer func() {
		if span.IsRecording() {
			attrs := append(make([]attribute.KeyValue, 0, 3),
				attribute.String("palisade.stream.category", stream.Category),
				attribute.String("palisade.org_id", stream.OrgID))
			if err == nil && len(res.events) > 0 {
				span.SetName("command " + res.events[0].EventType())
				attrs = append(attrs, attribute.Int("palisade.events", len(res.events)))
			} else {
				span.SetName("command " + stream.Category)
			}
			span.SetAttributes(attrs...)
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "command refused or failed")
		}
		span.End()
	}()
	res, err = p.executeRetrying(ctx, who, d, stream, newAggregate, decide, assumeNew)
	return res, err
}

func (p *Pipeline) executeRetrying(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	newAggregate func() aggregate, decide func(aggregate) ([]domain.Event, error), assumeNew bool) (Result, error) {
	conflicts, moved := 0, 0
	for attempt := 0; ; attempt++ {
		res, err := p.attempt(ctx, who, d, stream, newAggregate, decide, assumeNew && attempt == 0)
		if errors.Is(err, eventstore.ErrConflict) && conflicts < maxConflictRetries {
			conflicts++
			if err := retryBackoff(ctx, conflicts); err != nil {
				return Result{}, err
			}
			continue
		}
		if errors.Is(err, eventstore.ErrConditionFailed) {
			if moved < maxConditionRetries {
				moved++
				if err := retryBackoff(ctx, moved); err != nil {
					return Result{}, err
				}
				continue
			}
			// Reported as the conflict it is: the membership kept changing.
			return Result{}, fmt.Errorf("%w: %w", eventstore.ErrConflict, err)
		}
		return res, err
	}
}

// attempt is one try of executeFrom: load (unless assumeNew), decide,
// append, holding the organization's gate throughout.
func (p *Pipeline) attempt(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	newAggregate func() aggregate, decide func(aggregate) ([]domain.Event, error), assumeNew bool) (Result, error) {
	release := p.hold(who, d, stream)
	defer release()
	agg := newAggregate()
	var version uint64
	exists := false
	if !assumeNew {
		var err error
		if version, exists, err = p.load(ctx, stream, agg); err != nil {
			return Result{}, err
		}
	}
	evs, err := decide(agg)
	if err != nil {
		return Result{}, err
	}
	if len(evs) == 0 {
		return Result{ID: stream.EntityID}, nil
	}
	expected := eventstore.NoStream()
	if exists {
		expected = eventstore.Exact(version)
	}
	res, at, err := p.appendDecided(ctx, who, d, stream, agg, expected, evs)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: stream.EntityID, Position: res.LastPosition, Version: res.LastVersion, At: at, events: evs}, nil
}

// load folds stream into agg and returns the stream's last version.
func (p *Pipeline) load(ctx context.Context, stream eventstore.StreamName, agg aggregate) (uint64, bool, error) {
	return p.loadFrom(ctx, stream, agg, 0, false)
}

// loadFrom folds into agg the events of stream after version (all of them
// when exists is false: agg has seen none) and returns the stream's last
// version. agg is left consistent with the version returned, also when a
// read fails part way.
func (p *Pipeline) loadFrom(ctx context.Context, stream eventstore.StreamName, agg aggregate, version uint64, exists bool) (uint64, bool, error) {
	const page = 500
	var from uint64
	if exists {
		from = version + 1
	}
	for {
		envs, err := p.store.ReadStream(ctx, stream, from, page)
		if err != nil {
			return version, exists, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, env := range envs {
			e, err := p.registry.Decode(env.Type, env.Data)
			if err != nil {
				return version, exists, fmt.Errorf("load %s at version %d: %w", stream, env.StreamVersion, err)
			}
			agg.Apply(e)
			version, exists = env.StreamVersion, true
		}
		if len(envs) < page {
			return version, exists, nil
		}
		from = version + 1
	}
}

// append records evs with the metadata of who, d and the request origin.
func (p *Pipeline) append(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	expected eventstore.ExpectedVersion, evs []domain.Event) (eventstore.AppendResult, time.Time, error) {
	return p.appendIf(ctx, who, d, stream, expected, nil, evs)
}

// appendIf is append, conditioned on cond when it is not nil.
func (p *Pipeline) appendIf(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	expected eventstore.ExpectedVersion, cond *eventstore.Condition, evs []domain.Event) (eventstore.AppendResult, time.Time, error) {
	if err := p.refuseClosed(ctx, stream); err != nil {
		return eventstore.AppendResult{}, time.Time{}, err
	}
	// The append's span is open while the metadata is written, so the
	// events record it as their cause's span: what they trigger continues
	// the trace below it.
	// As the command's span, named and described only when it records,
	// once, when it ends.
	ctx, span := p.tracer.Start(ctx, "append")
	defer span.End()
	res, at, err := p.appendTraced(ctx, who, d, stream, expected, cond, evs)
	if span.IsRecording() {
		attrs := append(make([]attribute.KeyValue, 0, 4),
			attribute.String("palisade.stream.category", stream.Category),
			attribute.String("palisade.org_id", stream.OrgID),
			attribute.Int("palisade.events", len(evs)))
		if err == nil {
			attrs = append(attrs, attribute.Int64("palisade.position", int64(res.LastPosition)))
		}
		span.SetName("append " + stream.Category)
		span.SetAttributes(attrs...)
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "append failed")
	}
	return res, at, err
}

func (p *Pipeline) appendTraced(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	expected eventstore.ExpectedVersion, cond *eventstore.Condition, evs []domain.Event) (eventstore.AppendResult, time.Time, error) {
	md := p.metadata(ctx, who, stream.OrgID, d.Reason())
	batch := make([]eventstore.NewEvent, len(evs))
	for i, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			return eventstore.AppendResult{}, time.Time{}, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		batch[i] = eventstore.NewEvent{ID: eventstore.NewEventID(), Type: e.EventType(), Metadata: md, Data: data}
	}
	var res eventstore.AppendResult
	var err error
	if cond != nil {
		res, err = p.store.AppendIf(ctx, stream, expected, *cond, batch)
	} else {
		res, err = p.store.Append(ctx, stream, expected, batch)
	}
	if err != nil {
		return res, time.Time{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	return res, md.OccurredAt, nil
}

// metadata is the record of who, d and the request origin. The trace id is
// the current span's when tracing is on (it then equals the origin's: the
// request's span took the trace of a valid incoming traceparent), the
// origin's otherwise.
func (p *Pipeline) metadata(ctx context.Context, who access.Principal, orgID, authz string) eventstore.Metadata {
	o := OriginFrom(ctx)
	traceID, spanID := tracing.IDs(ctx)
	if traceID == "" {
		traceID = o.TraceID
	}
	return eventstore.Metadata{
		OrgID:          orgID,
		Actor:          ActorOf(who),
		CorrelationID:  o.CorrelationID,
		CausationID:    o.CausationID,
		TraceID:        traceID,
		SpanID:         spanID,
		Authorization:  authz,
		IdempotencyKey: o.IdempotencyKey,
		SchemaVersion:  1,
		OccurredAt:     p.now(),
	}
}

// ActorOf is the record of who: the effective principal that was
// authorized, as every event's metadata carries it.
func ActorOf(who access.Principal) eventstore.Actor {
	a := eventstore.Actor{
		Subject:    who.Subject,
		Kind:       string(who.Kind),
		Roles:      access.RoleStrings(who.Roles),
		CreatedBy:  who.CreatedBy,
		OnBehalfOf: who.OnBehalfOf,
	}
	if len(who.OnBehalfOf) > 0 {
		a.InvokerKind = string(who.InvokerKind)
	}
	if who.TokenScope != nil {
		a.Scope = who.TokenScope.Names()
	}
	return a
}

// RecordDenial appends an AccessDenied event to the principal's
// organization's security stream (the platform's for principals without an
// organization). Repeated denials of one principal for one permission are
// coalesced (see denialCoalescer): the first in full, the rest counted in
// one summary per window. Recording failures are logged, never returned:
// the caller is refused either way.
func (p *Pipeline) RecordDenial(ctx context.Context, who access.Principal, d access.Decision, resource string) {
	org := who.OrgID
	if org == "" {
		org = access.PlatformScope
	}
	if p.observer != nil {
		p.observer.Denied(d.Code.Code())
	}
	o := OriginFrom(ctx)
	if len(resource) > 200 {
		resource = resource[:200]
	}
	if !p.denials.admit(ctx, who, org, d, resource) {
		return
	}
	denied := &events.AccessDenied{
		Action: d.Permission.String(), Permission: d.Permission.String(), Reason: d.Reason(),
		Resource: resource, Method: o.Method, Path: o.Path,
	}
	stream := eventstore.MustStreamName(events.SecurityCategory, org, "denials")
	if _, _, err := p.append(ctx, who, d, stream, eventstore.Any(), []domain.Event{denied}); err != nil {
		p.logger.Error("record denial", "org_id", org, "subject", who.Subject, "err", err)
	}
}

// RecordAuthenticationDenial appends an AuthenticationDenied event to the
// security stream of orgID, which is only given when a verified token named
// it (a removed member, a revoked service account), and to the platform's
// otherwise.
func (p *Pipeline) RecordAuthenticationDenial(ctx context.Context, orgID string, denied *events.AuthenticationDenied) error {
	if _, err := eventstore.NewStreamName(events.SecurityCategory, orgID, "authentication"); err != nil {
		orgID = access.PlatformScope
	}
	stream := eventstore.MustStreamName(events.SecurityCategory, orgID, "authentication")
	anonymous := access.Principal{Subject: "anonymous", Kind: access.KindUser}
	_, _, err := p.append(ctx, anonymous, access.Decision{}, stream, eventstore.Any(), []domain.Event{denied})
	return err
}

// newResourceID returns the id of a resource a command creates. With an
// Idempotency-Key the id is derived from the request the key stands for
// (Origin.IdempotentRequest: principal, permissions, key, method, path,
// query and body), so a retry that reaches a restarted server cannot
// create a second resource: its append finds the stream already there.
// Only that same request finds it: a different body under the key, or
// the key of a narrower token of the same subject, names another id, and
// can never be answered with the resource the first request created.
func newResourceID(ctx context.Context, who access.Principal) string {
	o := OriginFrom(ctx)
	if o.IdempotencyKey == "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	request := o.IdempotentRequest
	if request == "" {
		request = o.IdempotencyKey
	}
	sum := sha256.Sum256([]byte(who.OrgID + "\x00" + who.Subject + "\x00" + request))
	return uuid.NewSHA1(uuid.NameSpaceURL, sum[:]).String()
}

// existing answers a create whose target already exists: a replay of the
// same request under its Idempotency-Key (whose id newResourceID derived
// from that request) changes nothing; anything else is a conflict.
func (p *Pipeline) existing(ctx context.Context, what string) ([]domain.Event, error) {
	if OriginFrom(ctx).IdempotencyKey != "" {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: %s exists", domain.ErrConflict, what)
}

// created returns the event of type E that a create recorded in stream,
// with res completed by when it was recorded. A create that appended
// nothing (the replay of an Idempotency-Key whose resource exists) reads
// the stream's first event, so that the replay answers with the record the
// first attempt created.
func created[E domain.Event](ctx context.Context, p *Pipeline, stream eventstore.StreamName, res Result) (E, Result, error) {
	var zero E
	for _, e := range res.events {
		if ev, ok := e.(E); ok {
			return ev, res, nil
		}
	}
	envs, err := p.store.ReadStream(ctx, stream, 0, 1)
	if err != nil {
		return zero, res, fmt.Errorf("read back %s: %w", stream, err)
	}
	if len(envs) == 0 {
		return zero, res, fmt.Errorf("read back %s: the stream is empty", stream)
	}
	e, err := p.registry.Decode(envs[0].Type, envs[0].Data)
	if err != nil {
		return zero, res, fmt.Errorf("read back %s: %w", stream, err)
	}
	ev, ok := e.(E)
	if !ok {
		return zero, res, fmt.Errorf("read back %s: first event is %s", stream, envs[0].Type)
	}
	res.At, res.Version = envs[0].OccurredAt, envs[0].StreamVersion
	return ev, res, nil
}
