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

// Tenancy handles the commands of organizations, their members and their
// service accounts.
type Tenancy struct {
	p      *Pipeline
	minter TokenMinter
	// keys are destroyed when an organization closes (WithKeyShredder).
	keys KeyShredder
}

// NewTenancy returns the tenancy handlers over p; minter issues service
// account tokens.
func NewTenancy(p *Pipeline, minter TokenMinter) *Tenancy {
	return &Tenancy{p: p, minter: minter}
}

func orgStream(orgID string) eventstore.StreamName {
	return eventstore.MustStreamName(tenancy.Category, orgID, orgID)
}

func newOrganization() aggregate { return tenancy.New() }

func asOrg(a aggregate) *tenancy.Organization { return a.(*tenancy.Organization) }

// OrgCreated is what creating an organization returns: the organization
// as recorded.
type OrgCreated struct {
	Result
	Name     string
	OwnerSub string
}

// CreateOrg creates an organization with its first owner. Only the
// platform may.
func (t *Tenancy) CreateOrg(ctx context.Context, who access.Principal, name, ownerSub string) (OrgCreated, error) {
	p := t.p
	d, err := p.authorize(ctx, who, access.OrgsCreate, access.Resource{}, "organizations")
	if err != nil {
		return OrgCreated{}, err
	}
	orgID := newResourceID(ctx, who)
	stream := orgStream(orgID)
	res, err := p.create(ctx, who, d, stream, newOrganization, func(a aggregate) ([]domain.Event, error) {
		if asOrg(a).ID() != "" {
			return p.existing(ctx, "organization")
		}
		return tenancy.Create(orgID, name, ownerSub)
	})
	if err != nil {
		return OrgCreated{}, err
	}
	e, res, err := created[*tenancy.OrganizationCreated](ctx, p, stream, res)
	if err != nil {
		return OrgCreated{}, err
	}
	return OrgCreated{Result: res, Name: e.Name, OwnerSub: e.OwnerSub}, nil
}

// MemberChanged is what adding a member or changing its roles returns: the
// member's roles as recorded.
type MemberChanged struct {
	Result
	Sub   string
	Roles []string
}

// AddMember adds member (a subject of the built-in issuer or of one the
// organization binds) to the principal's organization with roles.
func (t *Tenancy) AddMember(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role) (MemberChanged, error) {
	res, err := t.changeMembership(ctx, who, member, roles, func(o *tenancy.Organization) ([]domain.Event, error) {
		return o.AddMember(member, roles)
	})
	return memberChanged(res, member.Subject(), roles), err
}

// ChangeMemberRoles replaces member's roles.
func (t *Tenancy) ChangeMemberRoles(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role) (MemberChanged, error) {
	res, err := t.changeMembership(ctx, who, member, roles, func(o *tenancy.Organization) ([]domain.Event, error) {
		return o.ChangeRoles(member, roles)
	})
	return memberChanged(res, member.Subject(), roles), err
}

// memberChanged reads the roles the organization recorded for sub; a
// change that recorded nothing left them as asked.
func memberChanged(res Result, sub string, asked []access.Role) MemberChanged {
	out := MemberChanged{Result: res, Sub: sub, Roles: access.RoleStrings(asked)}
	for _, e := range res.events {
		switch e := e.(type) {
		case *tenancy.MemberAdded:
			out.Roles = e.Roles
		case *tenancy.MemberRolesChanged:
			out.Roles = e.Roles
		}
	}
	return out
}

// RemoveMember removes member from the organization.
func (t *Tenancy) RemoveMember(ctx context.Context, who access.Principal, member tenancy.MemberID) (Result, error) {
	return t.changeMembership(ctx, who, member, nil, func(o *tenancy.Organization) ([]domain.Event, error) {
		return o.RemoveMember(member)
	})
}

// changeMembership authorizes members:manage, then, against the caller as
// the organization it decides on has it (rederive: a demotion recorded
// since the request began counts), owners:manage when the change gives or
// takes the owner role, and every permission of the roles given and of
// the member's roles now: nobody hands out, or takes away, a role that
// grants more than they hold (a token scoped to members:manage, or a
// service account holding it, could otherwise make admins). Then it runs
// change.
func (t *Tenancy) changeMembership(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role,
	change func(*tenancy.Organization) ([]domain.Event, error)) (Result, error) {
	p := t.p
	org := access.OrgResource(who.OrgID)
	resource := "members/" + member.Subject()
	d, err := p.authorize(ctx, who, access.MembersManage, org, resource)
	if err != nil {
		return Result{}, err
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		o := asOrg(a)
		caller := rederive(o, who)
		if o.TouchesOwners(member, roles) {
			if _, err := p.authorize(ctx, caller, access.OwnersManage, org, resource); err != nil {
				return nil, err
			}
		}
		current, _ := o.MemberRoles(member)
		for _, given := range [][]access.Role{roles, current} {
			if missing := access.PermissionsOf(given) &^ caller.Permissions; missing != 0 {
				perm, _ := access.ParsePermission(missing.Names()[0])
				if _, err := p.authorize(ctx, caller, perm, org, resource); err != nil {
					return nil, err
				}
			}
		}
		return change(o)
	})
	res.ID = member.Sub
	return res, err
}

// ServiceAccountCreated is what creating a service account returns: the
// account as recorded, and its token, shown this once and never stored.
type ServiceAccountCreated struct {
	Result
	Name        string
	Permissions []string
	Token       string
	ExpiresAt   time.Time
}

// CreateServiceAccount creates a service account holding perms, which must
// be a subset of the creator's permissions, whose token lives ttl (0 takes
// the domain's default). Only users may create them, so a leaked service
// token cannot mint more.
func (t *Tenancy) CreateServiceAccount(ctx context.Context, who access.Principal,
	name string, perms access.PermissionSet, ttl time.Duration) (ServiceAccountCreated, error) {
	p := t.p
	now := p.now()
	expiresAt, err := tenancy.ServiceAccountExpiry(now, ttl)
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	d, err := p.authorize(ctx, who, access.ServiceAccountsManage, access.OrgResource(who.OrgID), "service-accounts")
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	req := tenancy.ServiceAccountRequest{
		ID: newResourceID(ctx, who), Name: name, Permissions: perms,
		TokenID: uuid.Must(uuid.NewV7()).String(), ExpiresAt: expiresAt,
	}
	// The token is minted before anything is recorded, so that a failure
	// leaves no account without a token; it is useless until the account's
	// event is in the log.
	token, err := t.minter.MintServiceToken(who.OrgID, req.ID, req.TokenID, req.ExpiresAt)
	if err != nil {
		return ServiceAccountCreated{}, fmt.Errorf("mint service account token: %w", err)
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		// Its permissions are a subset of the caller's as this version
		// of the organization has them.
		o := asOrg(a)
		return o.CreateServiceAccount(rederive(o, who), req, now)
	})
	if err != nil {
		return ServiceAccountCreated{}, err
	}
	res.ID = req.ID
	out := ServiceAccountCreated{Result: res, Name: req.Name, Permissions: perms.Names(), Token: token, ExpiresAt: req.ExpiresAt}
	for _, e := range res.events {
		if e, ok := e.(*tenancy.ServiceAccountCreated); ok {
			out.Name, out.Permissions, out.ExpiresAt = e.Name, e.Permissions, e.ExpiresAt
		}
	}
	return out, nil
}

// RevokeServiceAccount revokes a service account; its token stops working
// on the next request.
func (t *Tenancy) RevokeServiceAccount(ctx context.Context, who access.Principal, id string) (Result, error) {
	p := t.p
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

// ReassignServiceAccount makes service account id answer to member to:
// from now on it acts with its list ∩ what to holds. The caller needs
// service-accounts:manage and every permission the account lists.
func (t *Tenancy) ReassignServiceAccount(ctx context.Context, who access.Principal, id string, to tenancy.MemberID) (Result, error) {
	p := t.p
	d, err := p.authorize(ctx, who, access.ServiceAccountsManage, access.OrgResource(who.OrgID), "service-accounts/"+id+"/creator")
	if err != nil {
		return Result{}, err
	}
	res, err := p.execute(ctx, who, d, orgStream(who.OrgID), newOrganization, func(a aggregate) ([]domain.Event, error) {
		o := asOrg(a)
		return o.ReassignServiceAccount(rederive(o, who), id, to)
	})
	res.ID = id
	return res, err
}
