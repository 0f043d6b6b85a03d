package commands

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// IssuerTrust says which external token issuers the deployment trusts
// (identity.Verifier answers it from its configuration).
type IssuerTrust interface {
	TrustsExternal(issuer string) bool
}

// BindIssuer lets the principal's organization trust an external issuer the
// deployment trusts: its users may then be members and act in the
// organization. Binding an issuer lets it vouch for members, owners
// included, so it needs members:manage and owners:manage. Binding one
// already bound changes nothing.
func (t *Tenancy) BindIssuer(ctx context.Context, who access.Principal, trust IssuerTrust, issuer string) (Result, error) {
	p := t.p
	d, err := t.authorizeIssuers(ctx, who, issuer)
	if err != nil {
		return Result{}, err
	}
	if !trust.TrustsExternal(issuer) {
		return Result{}, fmt.Errorf("%w: issuer %.80q is not an external issuer this deployment trusts", domain.ErrInvalid, issuer)
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		return asOrg(a).BindIssuer(issuer)
	})
	res.ID = issuer
	return res, err
}

// UnbindIssuer ends the organization's trust in an external issuer: its
// tokens answer 401 from the next request on. Its members stay on record,
// unable to act, until the issuer is bound again.
func (t *Tenancy) UnbindIssuer(ctx context.Context, who access.Principal, issuer string) (Result, error) {
	p := t.p
	d, err := t.authorizeIssuers(ctx, who, issuer)
	if err != nil {
		return Result{}, err
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		return asOrg(a).UnbindIssuer(issuer)
	})
	res.ID = issuer
	return res, err
}

// authorizeIssuers requires members:manage and owners:manage: an issuer
// bound to the organization can assert any of its members, owners too.
// The decision recorded is the owners:manage one. Only then is the issuer
// looked at: an empty one is invalid.
func (t *Tenancy) authorizeIssuers(ctx context.Context, who access.Principal, issuer string) (access.Decision, error) {
	p := t.p
	org := access.OrgResource(who.OrgID)
	if _, err := p.authorize(ctx, who, access.MembersManage, org, "org/issuers"); err != nil {
		return access.Decision{}, err
	}
	d, err := p.authorize(ctx, who, access.OwnersManage, org, "org/issuers")
	if err == nil && issuer == "" {
		err = fmt.Errorf("%w: issuer is required", domain.ErrInvalid)
	}
	return d, err
}
