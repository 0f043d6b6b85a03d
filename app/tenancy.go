package app

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
)

// tenancyContext is organizations, their members, service accounts,
// issuers and quotas.
type tenancyContext struct{}

func (tenancyContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.TenancyProjection(asm.models.Tenancy)}
}

func (tenancyContext) assemble(ctx context.Context, asm *assembly) error {
	p := asm.Pipeline
	tenancy := commands.NewTenancy(p, asm.Issuer).WithKeyShredder(asm.keys)
	// A close that a crash cut short between its append and the
	// destruction of the key is finished before anything else runs.
	if shredded, err := tenancy.ShredClosedKeys(ctx); err != nil {
		return fmt.Errorf("destroy the data keys of closed organizations: %w", err)
	} else if len(shredded) > 0 {
		asm.cfg.Logger.Warn("destroyed the data keys of organizations closed before the last stop", "orgs", shredded)
	}
	asm.Application.Commands.Security = p
	asm.Application.Commands.Tenancy = tenancy
	// The organization's queries answer tenancy, bots and the audit record,
	// whose redacted content shows its hash keyed as the log records hashes.
	org := projections.NewQueries(asm.models.Tenancy, asm.models.Bots, asm.models.Audit, p, asm.registry).WithDigestKeys(asm.keys)
	asm.Application.Queries.Org = org

	asm.web.Commands.Security = p
	asm.web.Commands.Idempotency = p
	asm.web.Commands.Tenancy = tenancy
	asm.web.Queries.Tenancy = org
	asm.routes = append(asm.routes, httpapi.TenancyRoutes())

	asm.keptInMemory(asm.Quotas.Projection())
	if asm.replicated() {
		asm.keptInMemory(asm.keyShredding())
	}
	return nil
}
