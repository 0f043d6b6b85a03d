package quota

import (
	"context"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Projection keeps the book's overrides and resource counts from the log.
// The book lives in memory: give the projection checkpoints that start at
// zero (memory ones), so it is rebuilt in full at every start whatever
// store the other read models use.
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
	}}
}
