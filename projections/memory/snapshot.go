package memory

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/snapshot"
)

// Models are the memory read models of one server, saved to a snapshot
// and restored from one together, one organization at a time (so that
// each organization's part can be sealed under its own data key).
//
// Save and restore must not run while a projection writes: the caller
// saves with the groups stopped and restores before they start.
type Models struct {
	Tenancy       *Tenancy
	Bots          *Bots
	Audit         *Audit
	Knowledge     *Knowledge
	Chunks        *Chunks
	Conversations *Conversations
	DataSources   *DataSources
	Analytics     *Analytics
	Jobs          *Jobs
}

// NewModels returns empty memory read models.
func NewModels() Models {
	return Models{
		Tenancy: NewTenancy(), Bots: NewBots(), Audit: NewAudit(), Knowledge: NewKnowledge(), Chunks: NewChunks(),
		Conversations: NewConversations(), DataSources: NewDataSources(), Analytics: NewAnalytics(), Jobs: NewJobs(),
	}
}

// ReadModels returns the models as the projections and queries use them.
func (m Models) ReadModels() projections.ReadModels {
	return projections.ReadModels{
		Tenancy: m.Tenancy, Bots: m.Bots, Audit: m.Audit, Knowledge: m.Knowledge, Chunks: m.Chunks,
		Conversations: m.Conversations, DataSources: m.DataSources, Analytics: m.Analytics, Jobs: m.Jobs,
	}
}

// tableRows is one organization's partition of an orgTable, keys sorted.
type tableRows[V any] struct {
	Keys   []string
	Values []V
}

func (t *orgTable[V]) export(org string) tableRows[V] {
	var out tableRows[V]
	r := t.rows(org, false)
	if r == nil {
		return out
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out.Keys = slices.Clone(r.sorted)
	out.Values = make([]V, len(r.sorted))
	for i, k := range r.sorted {
		out.Values[i] = r.byKey[k]
	}
	return out
}

func (t *orgTable[V]) restore(org string, rows tableRows[V]) error {
	if len(rows.Keys) != len(rows.Values) || !slices.IsSorted(rows.Keys) {
		return fmt.Errorf("%w: table of %d keys and %d values, sorted %t", snapshot.ErrCorrupt, len(rows.Keys), len(rows.Values), slices.IsSorted(rows.Keys))
	}
	if len(rows.Keys) == 0 {
		return nil
	}
	r := t.rows(org, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sorted = rows.Keys
	r.byKey = make(map[string]V, len(rows.Keys))
	for i, k := range rows.Keys {
		r.byKey[k] = rows.Values[i]
	}
	return nil
}

func (t *orgTable[V]) orgIDs() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.orgs))
	for org := range t.orgs {
		out = append(out, org)
	}
	return out
}

// orgState is one organization's rows in every memory read model but the
// audit index, which is written after it by hand (it is most of a
// snapshot's size, and the generic encoding is slower).
type orgState struct {
	Orgs          tableRows[projections.Org]
	Members       tableRows[projections.Member]
	Accounts      tableRows[projections.ServiceAccount]
	Issuers       tableRows[projections.IssuerBinding]
	Bots          tableRows[projections.Bot]
	Bases         tableRows[projections.KnowledgeBase]
	Documents     tableRows[projections.Document]
	Chunks        map[string][]projections.StoredChunk
	Conversations tableRows[projections.Conversation]
	DataSources   tableRows[projections.DataSource]
	Jobs          tableRows[projections.AnalyticsJob]
	Pages         tableRows[json.RawMessage]
	ProcessJobs   tableRows[projections.Job]
}

// SnapshotFormat names the shape of what SaveOrg writes; a snapshot of
// another format must not be restored. It changes by itself when a field
// of a saved type changes; change snapshotRevision when the meaning of
// the rows changes (a projection that folds events differently).
func SnapshotFormat() (string, error) {
	state, err := snapshot.Fingerprint(reflect.TypeFor[orgState]())
	if err != nil {
		return "", err
	}
	env, err := snapshot.Fingerprint(reflect.TypeFor[eventstore.Envelope]())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("memory/%d/%s/%s", snapshotRevision, state[:16], env[:16]), nil
}

// snapshotRevision is bumped by hand whenever a projection of these
// models starts folding events differently, so that older snapshots are
// rebuilt from the log instead of restored.
const snapshotRevision = 1

// Orgs lists every organization any of the models holds rows of, sorted.
func (m Models) Orgs() []string {
	seen := map[string]bool{}
	var out []string
	add := func(ids []string) {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	add(m.Tenancy.orgs.orgIDs())
	add(m.Tenancy.members.orgIDs())
	add(m.Tenancy.accounts.orgIDs())
	add(m.Tenancy.issuers.orgIDs())
	add(m.Bots.bots.orgIDs())
	add(m.Knowledge.bases.orgIDs())
	add(m.Knowledge.docs.orgIDs())
	add(m.Conversations.conversations.orgIDs())
	add(m.DataSources.sources.orgIDs())
	add(m.Analytics.jobs.orgIDs())
	add(m.Analytics.pages.orgIDs())
	add(m.Jobs.jobs.orgIDs())
	m.Chunks.mu.RLock()
	for org := range m.Chunks.byOrg {
		add([]string{org})
	}
	m.Chunks.mu.RUnlock()
	m.Audit.mu.RLock()
	for org := range m.Audit.events {
		add([]string{org})
	}
	m.Audit.mu.RUnlock()
	slices.Sort(out)
	return out
}

// SaveOrg writes every row the models hold of org to w.
func (m Models) SaveOrg(w io.Writer, org string) error {
	state := orgState{
		Orgs: m.Tenancy.orgs.export(org), Members: m.Tenancy.members.export(org),
		Accounts: m.Tenancy.accounts.export(org), Issuers: m.Tenancy.issuers.export(org),
		Bots: m.Bots.bots.export(org), Bases: m.Knowledge.bases.export(org), Documents: m.Knowledge.docs.export(org),
		Conversations: m.Conversations.conversations.export(org), DataSources: m.DataSources.sources.export(org),
		Jobs: m.Analytics.jobs.export(org), Pages: m.Analytics.pages.export(org),
		ProcessJobs: m.Jobs.jobs.export(org),
	}
	m.Chunks.mu.RLock()
	state.Chunks = m.Chunks.byOrg[org]
	m.Chunks.mu.RUnlock()
	m.Audit.mu.RLock()
	events := m.Audit.events[org]
	m.Audit.mu.RUnlock()

	enc := snapshot.NewEncoder(w)
	if err := enc.Encode(state); err != nil {
		return fmt.Errorf("snapshot of %s: %w", org, err)
	}
	enc.Uvarint(uint64(len(events)))
	for _, e := range events {
		writeEnvelope(enc, e.Event)
	}
	if err := enc.Flush(); err != nil {
		return fmt.Errorf("snapshot of %s: %w", org, err)
	}
	return nil
}

// LoadOrg reads what SaveOrg wrote into the models, which must hold no
// row of org yet.
func (m Models) LoadOrg(r io.Reader, org string) error {
	dec := snapshot.NewDecoder(r)
	var state orgState
	if err := dec.Decode(&state); err != nil {
		return fmt.Errorf("snapshot of %s: %w", org, err)
	}
	n := dec.Uvarint()
	if n > 1<<31 {
		return fmt.Errorf("snapshot of %s: %w: %d audit events", org, snapshot.ErrCorrupt, n)
	}
	events := make([]projections.AuditEvent, 0, n)
	narratives := &narrativeIndex{byID: map[string][]int{}}
	for i := range int(n) {
		env, ok := readEnvelope(dec)
		if dec.Err() != nil {
			break
		}
		if !ok || env.OrgID != org || (i > 0 && env.Position <= events[i-1].Event.Position) {
			return fmt.Errorf("snapshot of %s: %w: audit event %d of org %q at %d out of place", org, snapshot.ErrCorrupt, i, env.OrgID, env.Position)
		}
		events = append(events, projections.AuditEvent{Sequence: uint64(i) + 1, Event: env})
		if env.CorrelationID != "" {
			narratives.add(env.CorrelationID, i)
		}
	}
	if err := dec.Err(); err != nil {
		return fmt.Errorf("snapshot of %s: %w", org, err)
	}
	for _, restore := range []func() error{
		func() error { return m.Tenancy.orgs.restore(org, state.Orgs) },
		func() error { return m.Tenancy.members.restore(org, state.Members) },
		func() error { return m.Tenancy.accounts.restore(org, state.Accounts) },
		func() error { return m.Tenancy.issuers.restore(org, state.Issuers) },
		func() error { return m.Bots.bots.restore(org, state.Bots) },
		func() error { return m.Knowledge.bases.restore(org, state.Bases) },
		func() error { return m.Knowledge.docs.restore(org, state.Documents) },
		func() error { return m.Conversations.conversations.restore(org, state.Conversations) },
		func() error { return m.DataSources.sources.restore(org, state.DataSources) },
		func() error { return m.Analytics.jobs.restore(org, state.Jobs) },
		func() error { return m.Analytics.pages.restore(org, state.Pages) },
		func() error { return m.Jobs.jobs.restore(org, state.ProcessJobs) },
	} {
		if err := restore(); err != nil {
			return fmt.Errorf("snapshot of %s: %w", org, err)
		}
	}
	if state.Chunks != nil {
		m.Chunks.mu.Lock()
		m.Chunks.byOrg[org] = state.Chunks
		m.Chunks.mu.Unlock()
	}
	if len(events) > 0 {
		m.Audit.mu.Lock()
		m.Audit.events[org] = events
		if len(narratives.roots) > 0 {
			m.Audit.narratives[org] = narratives
		}
		m.Audit.mu.Unlock()
	}
	return nil
}

// writeEnvelope writes an audit event's envelope field by field. The
// fields are listed in envelopeFields; a test holds that list against
// the type, so a field added to the envelope cannot be silently dropped.
func writeEnvelope(enc *snapshot.Encoder, env eventstore.Envelope) {
	enc.Bytes(env.ID[:])
	enc.String(env.Type)
	enc.String(env.Stream.Category)
	enc.String(env.Stream.OrgID)
	enc.String(env.Stream.EntityID)
	enc.Uvarint(env.StreamVersion)
	enc.Uvarint(env.Position)
	enc.Bytes(env.Data)
	enc.String(env.OrgID)
	a := env.Actor
	enc.String(a.Subject)
	enc.String(a.Kind)
	enc.Strings(a.Roles)
	enc.Strings(a.Scope)
	enc.String(a.CreatedBy)
	enc.Strings(a.OnBehalfOf)
	enc.String(a.InvokerKind)
	enc.String(env.CorrelationID)
	enc.String(env.CausationID)
	enc.String(env.TraceID)
	enc.String(env.SpanID)
	enc.String(env.Authorization)
	enc.String(env.IdempotencyKey)
	enc.Varint(int64(env.SchemaVersion))
	enc.Time(env.OccurredAt)
}

// envelopeFields are the fields writeEnvelope writes, by path.
var envelopeFields = []string{
	"ID", "Type", "Stream.Category", "Stream.OrgID", "Stream.EntityID", "StreamVersion", "Position", "Data",
	"Metadata.OrgID", "Metadata.Actor.Subject", "Metadata.Actor.Kind", "Metadata.Actor.Roles", "Metadata.Actor.Scope",
	"Metadata.Actor.CreatedBy", "Metadata.Actor.OnBehalfOf", "Metadata.Actor.InvokerKind",
	"Metadata.CorrelationID", "Metadata.CausationID", "Metadata.TraceID", "Metadata.SpanID", "Metadata.Authorization",
	"Metadata.IdempotencyKey", "Metadata.SchemaVersion", "Metadata.OccurredAt",
}

// readEnvelope reads what writeEnvelope wrote; false when the id is not one.
func readEnvelope(dec *snapshot.Decoder) (eventstore.Envelope, bool) {
	var env eventstore.Envelope
	id := dec.Bytes()
	if len(id) != len(env.ID) {
		return env, false
	}
	copy(env.ID[:], id)
	env.Type = dec.String()
	env.Stream.Category = dec.String()
	env.Stream.OrgID = dec.String()
	env.Stream.EntityID = dec.String()
	env.StreamVersion = dec.Uvarint()
	env.Position = dec.Uvarint()
	env.Data = dec.Bytes()
	env.OrgID = dec.String()
	env.Actor.Subject = dec.String()
	env.Actor.Kind = dec.String()
	env.Actor.Roles = dec.Strings()
	env.Actor.Scope = dec.Strings()
	env.Actor.CreatedBy = dec.String()
	env.Actor.OnBehalfOf = dec.Strings()
	env.Actor.InvokerKind = dec.String()
	env.CorrelationID = dec.String()
	env.CausationID = dec.String()
	env.TraceID = dec.String()
	env.SpanID = dec.String()
	env.Authorization = dec.String()
	env.IdempotencyKey = dec.String()
	env.SchemaVersion = int(dec.Varint())
	env.OccurredAt = dec.Time()
	return env, true
}
