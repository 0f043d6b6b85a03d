// Package memory holds the in-memory adapters of the read-model ports,
// used by the embedded default, where read models are rebuilt from the log
// at every start.
//
// Every method takes an access.Scope and touches only that organization's
// partition; a zero scope is refused. The adapters must never hold state
// that the log cannot rebuild.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// DefaultLimit and MaxLimit bound list pages.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func orgOf(scope access.Scope) (string, error) {
	if !scope.Valid() {
		return "", access.ErrNoScope
	}
	return scope.OrgID(), nil
}

func limitOf(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// keyed is one organization's records of one kind, with their keys sorted
// for cursor pagination.
type keyed[T any] struct {
	byKey  map[string]T
	sorted []string
}

func (k *keyed[T]) put(key string, v T) {
	if k.byKey == nil {
		k.byKey = map[string]T{}
	}
	if _, ok := k.byKey[key]; !ok {
		i, _ := slices.BinarySearch(k.sorted, key)
		k.sorted = slices.Insert(k.sorted, i, key)
	}
	k.byKey[key] = v
}

func (k *keyed[T]) delete(key string) {
	if _, ok := k.byKey[key]; !ok {
		return
	}
	delete(k.byKey, key)
	if i, found := slices.BinarySearch(k.sorted, key); found {
		k.sorted = slices.Delete(k.sorted, i, i+1)
	}
}

func (k *keyed[T]) page(p projections.Page) []T {
	start := 0
	if p.After != "" {
		i, found := slices.BinarySearch(k.sorted, p.After)
		if found {
			i++
		}
		start = i
	}
	limit := limitOf(p.Limit)
	out := make([]T, 0, min(limit, len(k.sorted)-start))
	for _, key := range k.sorted[start:] {
		if len(out) == limit {
			break
		}
		out = append(out, k.byKey[key])
	}
	return out
}

// Tenancy is the memory adapter of projections.TenancyModel.
type Tenancy struct {
	mu       sync.RWMutex
	orgs     map[string]projections.Org
	members  map[string]*keyed[projections.Member]
	accounts map[string]*keyed[projections.ServiceAccount]
	issuers  map[string]map[string]projections.IssuerBinding
}

// NewTenancy returns an empty tenancy read model.
func NewTenancy() *Tenancy {
	return &Tenancy{
		orgs:     map[string]projections.Org{},
		members:  map[string]*keyed[projections.Member]{},
		accounts: map[string]*keyed[projections.ServiceAccount]{},
		issuers:  map[string]map[string]projections.IssuerBinding{},
	}
}

func (t *Tenancy) Org(_ context.Context, scope access.Scope) (projections.Org, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Org{}, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	o, ok := t.orgs[org]
	if !ok {
		return projections.Org{}, fmt.Errorf("organization: %w", domain.ErrNotFound)
	}
	return o, nil
}

func (t *Tenancy) Member(_ context.Context, scope access.Scope, issuer, sub string) (projections.Member, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Member{}, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if k := t.members[org]; k != nil {
		if m, ok := k.byKey[access.PrincipalSubject(issuer, sub)]; ok && m.Issuer == issuer {
			return cloneMember(m), nil
		}
	}
	return projections.Member{}, fmt.Errorf("member: %w", domain.ErrNotFound)
}

func (t *Tenancy) Members(_ context.Context, scope access.Scope, page projections.Page) ([]projections.Member, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	k := t.members[org]
	if k == nil {
		return []projections.Member{}, nil
	}
	out := k.page(page)
	for i := range out {
		out[i] = cloneMember(out[i])
	}
	return out, nil
}

func (t *Tenancy) ServiceAccount(_ context.Context, scope access.Scope, id string) (projections.ServiceAccount, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.ServiceAccount{}, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if k := t.accounts[org]; k != nil {
		if sa, ok := k.byKey[id]; ok {
			return cloneAccount(sa), nil
		}
	}
	return projections.ServiceAccount{}, fmt.Errorf("service account: %w", domain.ErrNotFound)
}

func (t *Tenancy) ServiceAccounts(_ context.Context, scope access.Scope, page projections.Page) ([]projections.ServiceAccount, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	k := t.accounts[org]
	if k == nil {
		return []projections.ServiceAccount{}, nil
	}
	out := k.page(page)
	for i := range out {
		out[i] = cloneAccount(out[i])
	}
	return out, nil
}

func (t *Tenancy) PutOrg(_ context.Context, scope access.Scope, o projections.Org) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if o.ID != org {
		return fmt.Errorf("put organization %q in scope %q: %w", o.ID, org, eventstore.ErrOrgMismatch)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.orgs[org] = o
	return nil
}

func (t *Tenancy) PutMember(_ context.Context, scope access.Scope, m projections.Member) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.members[org]
	if k == nil {
		k = &keyed[projections.Member]{}
		t.members[org] = k
	}
	k.put(m.Key(), cloneMember(m))
	return nil
}

func (t *Tenancy) DeleteMember(_ context.Context, scope access.Scope, issuer, sub string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := t.members[org]; k != nil {
		k.delete(access.PrincipalSubject(issuer, sub))
	}
	return nil
}

func (t *Tenancy) PutServiceAccount(_ context.Context, scope access.Scope, sa projections.ServiceAccount) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.accounts[org]
	if k == nil {
		k = &keyed[projections.ServiceAccount]{}
		t.accounts[org] = k
	}
	k.put(sa.ID, cloneAccount(sa))
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
type Bots struct {
	mu   sync.RWMutex
	bots map[string]*keyed[projections.Bot]
}

// NewBots returns an empty bot read model.
func NewBots() *Bots { return &Bots{bots: map[string]*keyed[projections.Bot]{}} }

func (b *Bots) Bot(_ context.Context, scope access.Scope, id string) (projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Bot{}, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if k := b.bots[org]; k != nil {
		if bot, ok := k.byKey[id]; ok {
			return cloneBot(bot), nil
		}
	}
	return projections.Bot{}, fmt.Errorf("bot: %w", domain.ErrNotFound)
}

func (b *Bots) Bots(_ context.Context, scope access.Scope, page projections.Page) ([]projections.Bot, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	k := b.bots[org]
	if k == nil {
		return []projections.Bot{}, nil
	}
	out := k.page(page)
	for i := range out {
		out[i] = cloneBot(out[i])
	}
	return out, nil
}

func (b *Bots) PutBot(_ context.Context, scope access.Scope, bot projections.Bot) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.bots[org]
	if k == nil {
		k = &keyed[projections.Bot]{}
		b.bots[org] = k
	}
	k.put(bot.ID, cloneBot(bot))
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
// organization's envelopes in log order.
type Audit struct {
	mu     sync.RWMutex
	events map[string][]eventstore.Envelope
}

// NewAudit returns an empty audit index.
func NewAudit() *Audit { return &Audit{events: map[string][]eventstore.Envelope{}} }

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
	if n := len(list); n > 0 && list[n-1].Position >= env.Position {
		return nil // already indexed
	}
	a.events[org] = append(list, env)
	return nil
}

func (a *Audit) Events(_ context.Context, scope access.Scope, q projections.AuditQuery) ([]eventstore.Envelope, error) {
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
	start := sort.Search(len(list), func(i int) bool { return list[i].Position > q.After })
	out := make([]eventstore.Envelope, 0, min(limit, 64))
	for _, env := range list[start:] {
		if len(out) == limit {
			break
		}
		if matchAudit(q, env) {
			out = append(out, env)
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
