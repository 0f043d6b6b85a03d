package projections

import (
	"context"
	"fmt"
	"github.com/palisadehq/palisade/consumer"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// issuerHandlers fold an organization's issuer bindings into the tenancy
// read model, which principal resolution reads on every request.
func issuerHandlers(m TenancyModel) []consumer.Handler {
	return []consumer.Handler{
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.IssuerBound) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.PutIssuer(ctx, scope, IssuerBinding{Issuer: e.Issuer, BoundAt: env.OccurredAt, BoundBy: env.Actor.Subject})
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *tenancy.IssuerUnbound) error {
			scope, err := eventScope(env)
			if err != nil {
				return err
			}
			return m.DeleteIssuer(ctx, scope, e.Issuer)
		}),
	}
}

// ErrIssuerNotBound: the token's external issuer is trusted by the
// deployment but not bound by the organization it names. It wraps
// ErrUnknownPrincipal, so it answers like any other invalid token.
var ErrIssuerNotBound = fmt.Errorf("%w: issuer not bound to the organization", ErrUnknownPrincipal)

// memberRoles returns the current roles of member sub of issuer ("" for
// the built-in issuer). A member of an external issuer has none unless the
// organization binds that issuer now, and a built-in sub in the form
// reserved to external members is nobody.
func (r *Principals) memberRoles(ctx context.Context, scope access.Scope, issuer, sub string) ([]access.Role, error) {
	if issuer != "" {
		if _, err := r.tenancy.Issuer(ctx, scope, issuer); err != nil {
			return nil, ErrIssuerNotBound
		}
	} else if access.ExternalForm(sub) {
		return nil, fmt.Errorf("%w: not a member", ErrUnknownPrincipal)
	}
	m, err := r.tenancy.Member(ctx, scope, issuer, sub)
	if err != nil {
		return nil, fmt.Errorf("%w: not a member", ErrUnknownPrincipal)
	}
	roles, err := access.ParseRoles(m.Roles)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnknownPrincipal, err)
	}
	return roles, nil
}

// Issuers lists the external issuers the caller's organization binds.
func (q *Queries) Issuers(ctx context.Context, who access.Principal) ([]IssuerBinding, error) {
	scope, err := q.authorize(ctx, who, access.MembersRead, "org/issuers")
	if err != nil {
		return nil, err
	}
	return q.tenancy.Issuers(ctx, scope)
}
