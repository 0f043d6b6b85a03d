package app

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// embeddingStore is the durable embedding store as the application holds
// it: what ingestion reads and writes, and the purge of an organization.
type embeddingStore interface {
	commands.EmbeddingStore
	projections.OrgPurger
}

// embeddingPurge is the group that forgets a closed organization's chunk
// vectors. They are derived from its content (an embedding can be inverted
// back to much of its text) and are not sealed, so destroying the data key
// does not make them unreadable: they are deleted when the close is
// applied. A read model, so that a read made with the close's consistency
// token waits for it. PurgeOrg is idempotent: a replay of the close, or
// every replica applying it against the one shared store, deletes nothing
// more.
func (a *App) embeddingPurge() *consumer.Group {
	return &consumer.Group{Name: "embedding-purge", Handlers: []consumer.Handler{
		consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *tenancy.OrganizationClosed) error {
			scope, err := access.EventScope(env.OrgID)
			if err != nil {
				return err
			}
			if err := a.vectors.PurgeOrg(ctx, scope); err != nil {
				return fmt.Errorf("forget the embeddings of closed organization %s: %w", env.OrgID, err)
			}
			return nil
		}),
	}}
}
