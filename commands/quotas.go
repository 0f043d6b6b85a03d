package commands

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// SetOrganizationQuotas replaces an organization's quota overrides,
// recorded in the organization's stream. Only the platform may (with the
// platform's one permission, orgs:create); it reads no content by it.
func (t *Tenancy) SetOrganizationQuotas(ctx context.Context, who access.Principal, orgID string, q tenancy.QuotaOverrides) (Result, error) {
	p := t.p
	d, err := p.authorize(ctx, who, access.OrgsCreate, access.Resource{}, "organizations/"+orgID+"/quotas")
	if err != nil {
		return Result{}, err
	}
	stream, err := eventstore.NewStreamName(tenancy.Category, orgID, orgID)
	if err != nil {
		return Result{}, fmt.Errorf("%w: organization", domain.ErrNotFound)
	}
	return p.execute(ctx, who, d, stream, newOrganization, func(a aggregate) ([]domain.Event, error) {
		return asOrg(a).SetQuotas(q)
	})
}
