package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// TokenMinter issues the one token of a new service account.
type TokenMinter interface {
	MintServiceToken(orgID, accountID, tokenID string, expiresAt time.Time) (string, error)
}

// DefaultServiceAccountTTL is how long a service account token lives when
// the creator does not say.
const DefaultServiceAccountTTL = 90 * 24 * time.Hour

func orgStream(orgID string) eventstore.StreamName {
	return eventstore.MustStreamName(tenancy.Category, orgID, orgID)
}

func newOrganization() aggregate { return tenancy.New() }

func asOrg(a aggregate) *tenancy.Organization { return a.(*tenancy.Organization) }

// CreateOrg creates an organization with its first owner. Only the
// platform may.
func (p *Pipeline) CreateOrg(ctx context.Context, who access.Principal, name, ownerSub string) (Result, error) {
	d, err := p.authorize(ctx, who, access.OrgsCreate, access.Resource{}, "organizations")
	if err != nil {
		return Result{}, err
	}
	orgID := newResourceID(ctx, who)
	return p.create(ctx, who, d, orgStream(orgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		if asOrg(a).ID() != "" {
			return p.existing(ctx, "organization")
		}
		return tenancy.Create(orgID, name, ownerSub)
	})
}

// existing answers a create whose target already exists: a replay of the
// same Idempotency-Key changes nothing; anything else is a conflict.
func (p *Pipeline) existing(ctx context.Context, what string) ([]domain.Event, error) {
	if OriginFrom(ctx).IdempotencyKey != "" {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: %s exists", domain.ErrConflict, what)
}

// AddMember adds member (a subject of the built-in issuer or of one the
// organization binds) to the principal's organization with roles.
func (p *Pipeline) AddMember(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role) (Result, error) {
	return p.changeMembership(ctx, who, member, roles, func(o *tenancy.Organization) ([]domain.Event, error) {
		return o.AddMember(member, roles)
	})
}

// ChangeMemberRoles replaces member's roles.
func (p *Pipeline) ChangeMemberRoles(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role) (Result, error) {
	return p.changeMembership(ctx, who, member, roles, func(o *tenancy.Organization) ([]domain.Event, error) {
		return o.ChangeRoles(member, roles)
	})
}

// RemoveMember removes member from the organization.
func (p *Pipeline) RemoveMember(ctx context.Context, who access.Principal, member tenancy.MemberID) (Result, error) {
	return p.changeMembership(ctx, who, member, nil, func(o *tenancy.Organization) ([]domain.Event, error) {
		return o.RemoveMember(member)
	})
}

// changeMembership authorizes members:manage, and owners:manage when the
// change gives or takes the owner role, then runs change.
func (p *Pipeline) changeMembership(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role,
	change func(*tenancy.Organization) ([]domain.Event, error)) (Result, error) {
	org := access.OrgResource(who.OrgID)
	resource := "members/" + member.Subject()
	d, err := p.authorize(ctx, who, access.MembersManage, org, resource)
	if err != nil {
		return Result{}, err
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		o := asOrg(a)
		if o.TouchesOwners(member, roles) {
			if _, err := p.authorize(ctx, who, access.OwnersManage, org, resource); err != nil {
				return nil, err
			}
		}
		return change(o)
	})
	res.ID = member.Sub
	return res, err
}

// ServiceAccountCreated is what creating a service account returns: its
// id, and its token, shown this once and never stored.
type ServiceAccountCreated struct {
	Result
	Token     string
	ExpiresAt time.Time
}

// CreateServiceAccount creates a service account holding perms, which must
// be a subset of the creator's permissions. Only users may create them, so
// a leaked service token cannot mint more.
func (p *Pipeline) CreateServiceAccount(ctx context.Context, who access.Principal, minter TokenMinter,
	name string, perms access.PermissionSet, ttl time.Duration) (ServiceAccountCreated, error) {
	d, err := p.authorize(ctx, who, access.ServiceAccountsManage, access.OrgResource(who.OrgID), "service-accounts")
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	if ttl == 0 {
		ttl = DefaultServiceAccountTTL
	}
	now := p.now()
	req := tenancy.ServiceAccountRequest{
		ID: newResourceID(ctx, who), Name: name, Permissions: perms,
		TokenID: uuid.Must(uuid.NewV7()).String(), ExpiresAt: now.Add(ttl).UTC().Truncate(time.Second),
	}
	// The token is minted before anything is recorded, so that a failure
	// leaves no account without a token; it is useless until the account's
	// event is in the log.
	token, err := minter.MintServiceToken(who.OrgID, req.ID, req.TokenID, req.ExpiresAt)
	if err != nil {
		return ServiceAccountCreated{}, fmt.Errorf("mint service account token: %w", err)
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		return asOrg(a).CreateServiceAccount(who, req, now)
	})
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	res.ID = req.ID
	return ServiceAccountCreated{Result: res, Token: token, ExpiresAt: req.ExpiresAt}, nil
}

// RevokeServiceAccount revokes a service account; its token stops working
// on the next request.
func (p *Pipeline) RevokeServiceAccount(ctx context.Context, who access.Principal, id string) (Result, error) {
	d, err := p.authorize(ctx, who, access.ServiceAccountsManage, access.OrgResource(who.OrgID), "service-accounts/"+id)
	if err != nil {
		return Result{}, err
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		return asOrg(a).RevokeServiceAccount(id)
	})
	res.ID = id
	return res, err
}
