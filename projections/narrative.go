package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// MaxNarrativeSteps bounds the steps one narrative shows; a request that
// caused more is shown up to there and marked truncated (the audit events
// API pages through the rest by correlation_id).
const MaxNarrativeSteps = 5000

// Narrative is the story of one request: every event recorded under its
// correlation id — the command itself and everything it caused (jobs,
// ingestion, bot turns and their tool calls, analytics jobs, denials) — in
// the organization's sequence order.
type Narrative struct {
	CorrelationID string          `json:"correlation_id"`
	StartedAt     time.Time       `json:"started_at"`
	EndedAt       time.Time       `json:"ended_at"`
	Steps         []NarrativeStep `json:"steps"`
	// Truncated is set when the request caused more than MaxNarrativeSteps.
	Truncated bool `json:"truncated,omitempty"`
}

// NarrativeActor is who acted in one step, with the chain it acted for
// (the invoker first).
type NarrativeActor struct {
	Subject    string   `json:"subject"`
	Kind       string   `json:"kind"`
	Roles      []string `json:"roles"`
	OnBehalfOf []string `json:"on_behalf_of"`
}

// EffectivePermissions is the actor's authority as the event recorded it:
// the role snapshot, the token scope that narrowed it (absent: no scope;
// empty: a scope that allowed nothing) and a service account's creator.
type EffectivePermissions struct {
	Roles     []string  `json:"roles"`
	Scope     *[]string `json:"scope,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Resource is one thing a step touched: kind is one of the Resource*
// constants, id its id in the organization.
type Resource struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Kinds of resources a narrative names.
const (
	ResourceOrganization  = "organization"
	ResourceMember        = "member"
	ResourceServiceAcct   = "service_account"
	ResourceBot           = "bot"
	ResourceConversation  = "conversation"
	ResourceKnowledgeBase = "knowledge_base"
	ResourceDocument      = "document"
	ResourceChunk         = "chunk"
	ResourceSearch        = "search"
	ResourceDataSource    = "data_source"
	ResourceAnalyticsJob  = "analytics_job"
	ResourceJob           = "job"
)

// resourceCategories maps the resource kinds that have their own streams
// to the stream category, and back (see ResourceStream).
func resourceCategories() map[string]string {
	return map[string]string{
		ResourceOrganization: "org", ResourceBot: "bot", ResourceConversation: "conversation",
		ResourceKnowledgeBase: "kb", ResourceDocument: "doc", ResourceSearch: "search",
		ResourceDataSource: "datasource", ResourceAnalyticsJob: "analytics", ResourceJob: "job",
	}
}

// ResourceStream returns the stream of a resource of org ("kind:id", as a
// narrative names it): the stream whose events are what happened to it.
// Chunks, members and service accounts have no stream of their own.
func ResourceStream(orgID, resource string) (string, error) {
	kind, id, ok := bytes.Cut([]byte(resource), []byte(":"))
	category, known := resourceCategories()[string(kind)]
	if !ok || !known || len(id) == 0 {
		return "", fmt.Errorf("%w: resource must be KIND:ID with KIND one of bot, conversation, knowledge_base, document, search, data_source, analytics_job, job, organization", domain.ErrInvalid)
	}
	stream, err := eventstore.NewStreamName(category, orgID, string(id))
	if err != nil {
		return "", fmt.Errorf("%w: resource: %w", domain.ErrInvalid, err)
	}
	return stream.String(), nil
}

// NarrativeStep is one event of a narrative, told: who, with what
// authority, decided how, touching what, and one line saying it.
type NarrativeStep struct {
	Sequence             uint64               `json:"sequence"`
	Time                 time.Time            `json:"time"`
	Type                 string               `json:"type"`
	Stream               string               `json:"stream"`
	EventID              string               `json:"event_id"`
	CausationID          string               `json:"causation_id,omitempty"`
	Actor                NarrativeActor       `json:"actor"`
	EffectivePermissions EffectivePermissions `json:"effective_permissions"`
	// Decision is the authorization reason recorded with the event.
	Decision  string     `json:"decision,omitempty"`
	Resources []Resource `json:"resources"`
	// Details are facts of the record (SQL, row counts, result hashes,
	// tools, chunk ids), never content.
	Details map[string]any `json:"details,omitempty"`
	Summary string         `json:"summary"`
	// Data is the payload as the audit events API shows it to the reader:
	// content redacted unless the reader holds audit:read-content.
	Data json.RawMessage `json:"data"`
}

// NarrativeQuery filters the list of narratives: those with a step by
// Actor, a step of Type, a step on Resource's stream, started in
// [Since, Until). After is a cursor: a NarrativeSummary.FirstSequence.
type NarrativeQuery struct {
	Actor string
	Type  string
	// Resource is "KIND:ID"; the query service turns it into Stream, the
	// stream of that resource (see ResourceStream), which adapters match.
	Resource     string
	Stream       string
	Since, Until time.Time
	After        uint64
	Limit        int
}

// Validate checks the query's filters against their bounds.
func (q NarrativeQuery) Validate() error {
	for _, v := range []string{q.Actor, q.Type, q.Resource, q.Stream} {
		if len(v) > maxFilterLen {
			return fmt.Errorf("%w: a filter value is longer than %d bytes", domain.ErrInvalid, maxFilterLen)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return fmt.Errorf("%w: until must be after since", domain.ErrInvalid)
	}
	return nil
}

// NarrativeRow is what an audit read model knows of one narrative: its
// first event (the root: the request's own command or query), the number
// of the last, how many steps, and when it ended.
type NarrativeRow struct {
	CorrelationID string
	Root          AuditEvent
	LastSequence  uint64
	Steps         int
	EndedAt       time.Time
}

// NarrativeSummary is one narrative in the list.
type NarrativeSummary struct {
	CorrelationID string    `json:"correlation_id"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	RootActor     string    `json:"root_actor"`
	RootType      string    `json:"root_type"`
	Steps         int       `json:"steps"`
	Summary       string    `json:"summary"`
	// FirstSequence is the root's sequence: the list's order (newest
	// first) and its cursor.
	FirstSequence uint64 `json:"first_sequence"`
}

// EventDecoder is what the narrator needs of the event registry: decoding
// payloads, and telling record from content (events.Registry is one).
type EventDecoder interface {
	ContentRedactor
	Decode(eventType string, data []byte) (domain.Event, error)
}

// Narrator tells events: it turns audit events into narrative steps, with
// the one-line summary of each type from one table (stepFormats). It reads
// only the record fields of a payload, so what it writes is the same for
// every reader with audit:read.
type Narrator struct {
	decoder EventDecoder
	formats map[string]stepFormat
}

// NewNarrator returns the narrator over the registry of event types.
func NewNarrator(decoder EventDecoder) *Narrator {
	return &Narrator{decoder: decoder, formats: stepFormats()}
}

// Tells reports whether eventType has its own summary (the others get a
// generic line).
func (n *Narrator) Tells(eventType string) bool {
	_, ok := n.formats[eventType]
	return ok
}

// Narrative tells the events of one correlation, given in sequence order
// as the reader may see them.
func (n *Narrator) Narrative(correlationID string, evs []AuditEvent) Narrative {
	out := Narrative{CorrelationID: correlationID, Steps: make([]NarrativeStep, 0, len(evs))}
	for _, e := range evs {
		out.Steps = append(out.Steps, n.Step(e))
	}
	if len(evs) > 0 {
		out.StartedAt = evs[0].Event.OccurredAt
		out.EndedAt = evs[len(evs)-1].Event.OccurredAt
	}
	return out
}

// Summary is the list's row of a narrative.
func (n *Narrator) Summary(r NarrativeRow) NarrativeSummary {
	return NarrativeSummary{
		CorrelationID: r.CorrelationID, StartedAt: r.Root.Event.OccurredAt, EndedAt: r.EndedAt,
		RootActor: r.Root.Event.Actor.Subject, RootType: r.Root.Event.Type, Steps: r.Steps,
		Summary: n.Step(r.Root).Summary, FirstSequence: r.Root.Sequence,
	}
}

// Step tells one event.
func (n *Narrator) Step(e AuditEvent) NarrativeStep {
	env := e.Event
	s := NarrativeStep{
		Sequence: e.Sequence, Time: env.OccurredAt, Type: env.Type, Stream: env.Stream.String(),
		EventID: env.ID.String(), CausationID: env.CausationID,
		Actor: NarrativeActor{
			Subject: env.Actor.Subject, Kind: env.Actor.Kind,
			Roles: nonNil(env.Actor.Roles), OnBehalfOf: nonNil(env.Actor.OnBehalfOf),
		},
		EffectivePermissions: EffectivePermissions{Roles: nonNil(env.Actor.Roles), CreatedBy: env.Actor.CreatedBy},
		Decision:             env.Authorization,
		Data:                 env.Data,
	}
	if env.Actor.Scope != nil {
		scope := slices.Clone(env.Actor.Scope)
		s.EffectivePermissions.Scope = &scope
	}
	story := &Story{}
	if kind, ok := streamResources()[env.Stream.Category]; ok {
		story.Touch(kind, env.Stream.EntityID)
	}
	format, known := n.formats[env.Type]
	var ev domain.Event
	if known {
		var err error
		if ev, err = n.recordOnly(env); err != nil {
			known = false
		}
	}
	if known {
		format(env, ev, story)
	}
	if story.Summary == "" {
		story.Summary = fmt.Sprintf("%s on %s by %s", env.Type, env.Stream, actorName(env.Actor))
	}
	s.Summary, s.Resources, s.Details = story.Summary, story.Resources, story.Details
	return s
}

// recordOnly decodes env's payload with every content field left empty:
// the content is redacted, then the redactions are dropped, so no
// formatter can put content in a summary or a detail.
func (n *Narrator) recordOnly(env eventstore.Envelope) (domain.Event, error) {
	redacted, _, err := n.decoder.RedactContent(env.Type, env.Data)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(redacted, &v); err != nil {
		return nil, err
	}
	stripped, err := json.Marshal(dropRedactions(v))
	if err != nil {
		return nil, err
	}
	return n.decoder.Decode(env.Type, stripped)
}

// dropRedactions removes every events.RedactedContent value from v.
func dropRedactions(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if isRedaction(x) {
				delete(v, k)
				continue
			}
			v[k] = dropRedactions(x)
		}
		return v
	case []any:
		out := v[:0]
		for _, x := range v {
			if !isRedaction(x) {
				out = append(out, dropRedactions(x))
			}
		}
		return out
	}
	return v
}

func isRedaction(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 3 {
		return false
	}
	_, hash := m["sha256"].(string)
	redacted, _ := m["redacted"].(bool)
	return redacted && hash
}

// Story is what a formatter says of one event: the line, what it touched,
// and the facts worth showing.
type Story struct {
	Summary   string
	Resources []Resource
	Details   map[string]any
}

// Touch adds a resource, once.
func (s *Story) Touch(kind string, ids ...string) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		r := Resource{Kind: kind, ID: id}
		if !slices.Contains(s.Resources, r) {
			s.Resources = append(s.Resources, r)
		}
	}
}

// Detail adds a fact; zero values are left out.
func (s *Story) Detail(key string, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return
		}
	case []string:
		if len(x) == 0 {
			return
		}
	}
	if s.Details == nil {
		s.Details = map[string]any{}
	}
	s.Details[key] = v
}

// streamResources maps stream categories to the kind of resource the
// stream is about.
func streamResources() map[string]string {
	out := map[string]string{}
	for kind, category := range resourceCategories() {
		out[category] = kind
	}
	return out
}

func actorName(a eventstore.Actor) string {
	name := a.Kind + " " + a.Subject
	if a.Kind == "" {
		name = a.Subject
	}
	if len(a.OnBehalfOf) > 0 {
		name += " for " + a.OnBehalfOf[0]
	}
	return name
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

var _ EventDecoder = (*events.Registry)(nil)
