// Package memory holds the in-memory adapters of the read-model ports,
// used by the embedded default, where read models are restored from a
// snapshot at start (Models.SaveOrg, Models.LoadOrg) and caught up from the
// log, or rebuilt from the whole log when there is no usable snapshot.
//
// Every method takes an access.Scope and touches only that organization's
// partition; a zero scope is refused. The adapters must never hold state
// that the log cannot rebuild.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

func orgOf(scope access.Scope) (string, error) {
	if !scope.Valid() {
		return "", access.ErrNoScope
	}
	return scope.OrgID(), nil
}

// limitOf bounds a requested page size by the one page rule of projections.
func limitOf(n int) int { return projections.PageLimit(n) }

// Tenancy is the memory adapter of projections.TenancyModel.
type Tenancy struct {
	// orgs holds each organization's one record under its own id.
	orgs     *orgTable[projections.Org]
	members  *orgTable[projections.Member]
	accounts *orgTable[projections.ServiceAccount]
	issuers  *orgTable[projections.IssuerBinding]
}

// NewTenancy returns an empty tenancy read model.
func NewTenancy() *Tenancy {
	return &Tenancy{
		orgs:     newOrgTable[projections.Org](nil),
		members:  newOrgTable(cloneMember),
		accounts: newOrgTable(cloneAccount),
		issuers:  newOrgTable[projections.IssuerBinding](nil),
	}
}

func (t *Tenancy) Org(_ context.Context, scope access.Scope) (projections.Org, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Org{}, err
	}
	if o, ok := t.orgs.get(org, org); ok {
		return o, nil
	}
	return projections.Org{}, fmt.Errorf("organization: %w", domain.ErrNotFound)
}

func (t *Tenancy) Member(_ context.Context, scope access.Scope, issuer, sub string) (projections.Member, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Member{}, err
	}
	if m, ok := t.members.get(org, access.PrincipalSubject(issuer, sub)); ok && m.Issuer == issuer {
		return m, nil
	}
	return projections.Member{}, fmt.Errorf("member: %w", domain.ErrNotFound)
}

func (t *Tenancy) Members(_ context.Context, scope access.Scope, page projections.Page) ([]projections.Member, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return t.members.page(org, page, nil), nil
}

func (t *Tenancy) ServiceAccount(_ context.Context, scope access.Scope, id string) (projections.ServiceAccount, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.ServiceAccount{}, err
	}
	if sa, ok := t.accounts.get(org, id); ok {
		return sa, nil
	}
	return projections.ServiceAccount{}, fmt.Errorf("service account: %w", domain.ErrNotFound)
}

func (t *Tenancy) ServiceAccounts(_ context.Context, scope access.Scope, page projections.Page) ([]projections.ServiceAccount, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return t.accounts.page(org, page, nil), nil
}

func (t *Tenancy) PutOrg(_ context.Context, scope access.Scope, o projections.Org) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if o.ID != org {
		return fmt.Errorf("put organization %q in scope %q: %w", o.ID, org, eventstore.ErrOrgMismatch)
	}
	t.orgs.put(org, org, o)
	return nil
}

func (t *Tenancy) PutMember(_ context.Context, scope access.Scope, m projections.Member) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.members.put(org, m.Key(), m)
	return nil
}

func (t *Tenancy) DeleteMember(_ context.Context, scope access.Scope, issuer, sub string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.members.delete(org, access.PrincipalSubject(issuer, sub))
	return nil
}

func (t *Tenancy) PutServiceAccount(_ context.Context, scope access.Scope, sa projections.ServiceAccount) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.accounts.put(org, sa.ID, sa)
	return nil
}

func cloneMember(m projections.Member) projections.Member {
	m.Roles = slices.Clone(m.Roles)
	return m
}

func cloneAccount(sa projections.ServiceAccount) projections.ServiceAccount {
	sa.Permissions = slices.Clone(sa.Permissions)
	if sa.RevokedAt != nil {
		at := *sa.RevokedAt
		sa.RevokedAt = &at
	}
	return sa
}

// Bots is the memory adapter of projections.BotModel.
type Bots struct{ bots *orgTable[projections.Bot] }

// NewBots returns an empty bot read model.
func NewBots() *Bots { return &Bots{bots: newOrgTable(cloneBot)} }

func (b *Bots) Bot(_ context.Context, scope access.Scope, id string) (projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Bot{}, err
	}
	if bot, ok := b.bots.get(org, id); ok {
		return bot, nil
	}
	return projections.Bot{}, fmt.Errorf("bot: %w", domain.ErrNotFound)
}

func (b *Bots) Bots(_ context.Context, scope access.Scope, page projections.Page) ([]projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return b.bots.page(org, page, nil), nil
}

func (b *Bots) PutBot(_ context.Context, scope access.Scope, bot projections.Bot) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	b.bots.put(org, bot.ID, bot)
	return nil
}

func cloneBot(b projections.Bot) projections.Bot {
	b.Grants.KnowledgeBases = slices.Clone(b.Grants.KnowledgeBases)
	b.Grants.DataSources = slices.Clone(b.Grants.DataSources)
	b.Grants.Tools = slices.Clone(b.Grants.Tools)
	b.Grants.Permissions = slices.Clone(b.Grants.Permissions)
	return b
}

// Audit is the memory adapter of projections.AuditModel: each
// organization's events in log order, the event at index i numbered i+1.
type Audit struct {
	mu     sync.RWMutex
	events map[string][]projections.AuditEvent
	// narratives indexes each organization's events by correlation id.
	narratives map[string]*narrativeIndex
}

// NewAudit returns an empty audit index.
func NewAudit() *Audit {
	return &Audit{events: map[string][]projections.AuditEvent{}, narratives: map[string]*narrativeIndex{}}
}

func (a *Audit) Add(_ context.Context, scope access.Scope, env eventstore.Envelope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if env.OrgID != org {
		return fmt.Errorf("audit add: %w", eventstore.ErrOrgMismatch)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.events[org]
	if n := len(list); n > 0 && list[n-1].Event.Position >= env.Position {
		return nil // already indexed
	}
	e := projections.AuditEvent{Sequence: uint64(len(list)) + 1, Event: env}
	a.events[org] = append(list, e)
	if env.CorrelationID != "" {
		n := a.narratives[org]
		if n == nil {
			n = &narrativeIndex{byID: map[string][]int{}}
			a.narratives[org] = n
		}
		n.add(env.CorrelationID, len(list))
	}
	return nil
}

func (a *Audit) Events(_ context.Context, scope access.Scope, q projections.AuditQuery) ([]projections.AuditEvent, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	limit := limitOf(q.Limit)
	// The organization's list is append-only: the slice taken under the
	// lock never changes, so the scan runs without it and never holds up
	// the projection writing other organizations' events.
	a.mu.RLock()
	list := a.events[org]
	a.mu.RUnlock()
	// Sequences are the indexes plus one: the events after q.After start
	// at index q.After.
	start := min(q.After, uint64(len(list)))
	out := make([]projections.AuditEvent, 0, min(limit, 64))
	for _, e := range list[start:] {
		if len(out) == limit {
			break
		}
		if matchAudit(q, e.Event) {
			out = append(out, e)
		}
	}
	return out, nil
}

func matchAudit(q projections.AuditQuery, env eventstore.Envelope) bool {
	if len(q.Types) > 0 && !slices.Contains(q.Types, env.Type) {
		return false
	}
	if q.Stream != "" && env.Stream.String() != q.Stream {
		return false
	}
	if q.Actor != "" && env.Actor.Subject != q.Actor {
		return false
	}
	if q.CorrelationID != "" && env.CorrelationID != q.CorrelationID {
		return false
	}
	if !q.Since.IsZero() && env.OccurredAt.Before(q.Since) {
		return false
	}
	return true
}

// Checkpoints is the memory adapter of consumer.Checkpoints. Memory
// read models have no transactions: Advance applies, then records.
type Checkpoints struct {
	mu        sync.Mutex
	positions map[string]uint64
}

// NewCheckpoints returns checkpoints that all start at 0.
func NewCheckpoints() *Checkpoints { return &Checkpoints{positions: map[string]uint64{}} }

func (c *Checkpoints) Position(_ context.Context, projection string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.positions[projection], nil
}

// KeepsFailedWrites tells the engine (consumer.KeepsFailedWrites) that a
// failed unit is not rolled back: the maps it wrote keep what it wrote.
func (c *Checkpoints) KeepsFailedWrites() {}

func (c *Checkpoints) Advance(ctx context.Context, projection string, position uint64, apply func(context.Context) error) error {
	if err := apply(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if position > c.positions[projection] {
		c.positions[projection] = position
	}
	return nil
}

// Positions returns a copy of every group's position, for a snapshot.
func (c *Checkpoints) Positions() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.positions))
	for group, pos := range c.positions {
		out[group] = pos
	}
	return out
}

// Restore sets the groups' positions to those of a restored snapshot.
func (c *Checkpoints) Restore(positions map[string]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for group, pos := range positions {
		c.positions[group] = pos
	}
}
