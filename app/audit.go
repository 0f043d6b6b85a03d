package app

import (
	"context"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/consumer"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
)

// auditContext is the audit trail as tenants read it: events, narratives
// and exports, the hash chain's checkpoints and verification, and access
// review.
type auditContext struct{}

func (auditContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.AuditProjection(asm.models.Audit, asm.registry.Prototypes())}
}

func (auditContext) assemble(_ context.Context, asm *assembly) error {
	org := asm.Application.Queries.Org
	stories := projections.NewAuditStories(org, projections.NewNarrator(asm.registry))
	review := accessreview.New(asm.Store, asm.registry, asm.Pipeline)
	asm.Application.Queries.Stories = stories
	asm.Application.Queries.AccessReview = review
	asm.web.Queries.Audit = org
	asm.web.Queries.Stories = stories
	asm.web.Queries.AccessReview = review
	asm.routes = append(asm.routes, httpapi.AuditRoutes())
	// The chain follows the log once the bus runs; its queries are set
	// then.
	asm.started = append(asm.started, func(ctx, runCtx context.Context) error {
		if err := asm.startAuditChain(ctx, runCtx); err != nil {
			return err
		}
		asm.web.Queries.AuditChain = asm.Application.Queries.AuditChain
		return nil
	})
	return nil
}
