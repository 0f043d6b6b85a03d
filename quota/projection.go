package quota

import (
	"maps"

	"context"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Projection keeps the book's overrides and resource counts from the log.
// A closed organization's entry (its overrides, counts and document ids)
// is dropped when the close is applied, so that neither the book nor a
// snapshot of it keeps anything of that organization.
// The book lives in memory: give the projection checkpoints that start at
// zero (memory ones), so it is rebuilt in full at start whatever store the
// other read models use, or at the position of a snapshot of State that
// was restored (Restore).
func (b *Book) Projection() *consumer.Group {
	return &consumer.Group{Name: "quotas", Handlers: []consumer.Handler{
		consumer.On(func(_ context.Context, env eventstore.Envelope, e *tenancy.OrganizationQuotasSet) error {
			b.SetOverrides(env.OrgID, e.Quotas)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *bots.BotCreated) error {
			b.count(env.OrgID, KindBots, 1)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *bots.BotArchived) error {
			b.count(env.OrgID, KindBots, -1)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *knowledge.KnowledgeBaseCreated) error {
			b.count(env.OrgID, KindKnowledgeBases, 1)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *knowledge.KnowledgeBaseArchived) error {
			b.count(env.OrgID, KindKnowledgeBases, -1)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *knowledge.DocumentAdded) error {
			b.document(env.OrgID, env.Stream.EntityID, true)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *knowledge.DocumentDeleted) error {
			b.document(env.OrgID, env.Stream.EntityID, false)
			return nil
		}),
		consumer.On(func(_ context.Context, env eventstore.Envelope, _ *tenancy.OrganizationClosed) error {
			b.forget(env.OrgID)
			return nil
		}),
	}}
}

// BookState is what the book's projection keeps of each organization (its
// overrides, stored resources and live documents), for a snapshot of the
// in-memory groups. Requests, work in progress and budgets are not in it:
// a start begins them afresh, as a rebuild does.
type BookState struct {
	Orgs map[string]OrgState
}

// OrgState is one organization's part of a BookState.
type OrgState struct {
	Overrides tenancy.QuotaOverrides
	Stored    map[string]int
	Documents []string
}

// State returns what the projection has kept.
func (b *Book) State() BookState {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := BookState{Orgs: make(map[string]OrgState, len(b.orgs))}
	for org, u := range b.orgs {
		s := OrgState{Overrides: u.overrides, Stored: maps.Clone(u.stored)}
		for id := range u.documents {
			s.Documents = append(s.Documents, id)
		}
		out.Orgs[org] = s
	}
	return out
}

// Restore puts back what State returned, under the book's current
// defaults.
func (b *Book) Restore(s BookState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for org, saved := range s.Orgs {
		u := b.org(org)
		u.overrides = saved.Overrides
		u.setLimits(b.cfg.Defaults.With(saved.Overrides))
		u.stored = maps.Clone(saved.Stored)
		if u.stored == nil {
			u.stored = map[string]int{}
		}
		for _, id := range saved.Documents {
			u.documents[id] = struct{}{}
		}
	}
}
