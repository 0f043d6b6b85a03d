package tenancy

import (
	"fmt"
	"slices"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// Limits of an organization.
const (
	MaxServiceAccountTTL = 366 * 24 * time.Hour
	MinServiceAccountTTL = time.Minute
)

// Organization is the aggregate that guards an organization's membership.
// Build it by folding its stream with Apply; its methods decide and return
// the events to append, never mutating it.
type Organization struct {
	id              string
	name            string
	closed          bool
	members         map[string][]access.Role
	serviceAccounts map[string]*serviceAccount
}

type serviceAccount struct {
	revoked bool
}

// New returns an empty organization, before its first event.
func New() *Organization {
	return &Organization{members: map[string][]access.Role{}, serviceAccounts: map[string]*serviceAccount{}}
}

// Exists reports whether the organization has been created (and not closed).
func (o *Organization) Exists() bool { return o.id != "" && !o.closed }

// ID returns the organization's id.
func (o *Organization) ID() string { return o.id }

// Apply folds one recorded event into the aggregate.
func (o *Organization) Apply(e domain.Event) {
	switch e := e.(type) {
	case *OrganizationCreated:
		o.id, o.name = e.OrgID, e.Name
		o.members[e.OwnerSub] = []access.Role{access.RoleOwner}
	case *OrganizationRenamed:
		o.name = e.Name
	case *OrganizationClosed:
		o.closed = true
	case *MemberAdded:
		o.members[e.Sub] = parseKnownRoles(e.Roles)
	case *MemberRolesChanged:
		o.members[e.Sub] = parseKnownRoles(e.Roles)
	case *MemberRemoved:
		delete(o.members, e.Sub)
	case *ServiceAccountCreated:
		o.serviceAccounts[e.ID] = &serviceAccount{}
	case *ServiceAccountRevoked:
		if sa := o.serviceAccounts[e.ID]; sa != nil {
			sa.revoked = true
		}
	}
}

func parseKnownRoles(names []string) []access.Role {
	roles := make([]access.Role, 0, len(names))
	for _, n := range names {
		if r, ok := access.ParseRole(n); ok {
			roles = append(roles, r)
		}
	}
	return roles
}

// Create decides the creation of an organization with its first owner.
func Create(orgID, name, ownerSub string) ([]domain.Event, error) {
	if err := domain.CheckName("name", name); err != nil {
		return nil, err
	}
	if err := domain.CheckSubject("owner_sub", ownerSub); err != nil {
		return nil, err
	}
	return []domain.Event{&OrganizationCreated{OrgID: orgID, Name: name, OwnerSub: ownerSub}}, nil
}

// Rename decides a new display name.
func (o *Organization) Rename(name string) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if err := domain.CheckName("name", name); err != nil {
		return nil, err
	}
	if name == o.name {
		return nil, nil
	}
	return []domain.Event{&OrganizationRenamed{Name: name}}, nil
}

// Close decides the end of the organization.
func (o *Organization) Close() ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	return []domain.Event{&OrganizationClosed{}}, nil
}

// IsMember reports whether sub is a member.
func (o *Organization) IsMember(sub string) bool {
	_, ok := o.members[sub]
	return ok
}

// TouchesOwners reports whether giving sub the roles newRoles (nil for a
// removal) adds or removes the owner role, which needs owners:manage.
func (o *Organization) TouchesOwners(sub string, newRoles []access.Role) bool {
	return slices.Contains(o.members[sub], access.RoleOwner) != slices.Contains(newRoles, access.RoleOwner)
}

// AddMember decides adding sub with roles.
func (o *Organization) AddMember(sub string, roles []access.Role) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if err := domain.CheckSubject("sub", sub); err != nil {
		return nil, err
	}
	if o.IsMember(sub) {
		return nil, fmt.Errorf("%w: %q is already a member", domain.ErrConflict, sub)
	}
	if err := checkRoles(roles); err != nil {
		return nil, err
	}
	return []domain.Event{&MemberAdded{Sub: sub, Roles: access.RoleStrings(roles)}}, nil
}

// ChangeRoles decides replacing sub's roles.
func (o *Organization) ChangeRoles(sub string, roles []access.Role) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if !o.IsMember(sub) {
		return nil, fmt.Errorf("%w: member %q", domain.ErrNotFound, sub)
	}
	if err := checkRoles(roles); err != nil {
		return nil, err
	}
	if !slices.Contains(roles, access.RoleOwner) {
		if err := o.keepsAnOwner(sub); err != nil {
			return nil, err
		}
	}
	if slices.Equal(o.members[sub], roles) {
		return nil, nil
	}
	return []domain.Event{&MemberRolesChanged{Sub: sub, Roles: access.RoleStrings(roles)}}, nil
}

// RemoveMember decides removing sub.
func (o *Organization) RemoveMember(sub string) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if !o.IsMember(sub) {
		return nil, fmt.Errorf("%w: member %q", domain.ErrNotFound, sub)
	}
	if err := o.keepsAnOwner(sub); err != nil {
		return nil, err
	}
	return []domain.Event{&MemberRemoved{Sub: sub}}, nil
}

// keepsAnOwner refuses a change that would leave the organization without
// an owner, when sub is its last one.
func (o *Organization) keepsAnOwner(sub string) error {
	if !slices.Contains(o.members[sub], access.RoleOwner) {
		return nil
	}
	for other, roles := range o.members {
		if other != sub && slices.Contains(roles, access.RoleOwner) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is the last owner; make another member owner first", domain.ErrConflict, sub)
}

func checkRoles(roles []access.Role) error {
	if len(roles) == 0 {
		return fmt.Errorf("%w: at least one role is required", domain.ErrInvalid)
	}
	for _, r := range roles {
		if !r.Known() {
			return fmt.Errorf("%w: unknown role", domain.ErrInvalid)
		}
	}
	return nil
}

// ServiceAccountRequest is what a creator asks for.
type ServiceAccountRequest struct {
	ID          string
	Name        string
	Permissions access.PermissionSet
	TokenID     string
	ExpiresAt   time.Time
}

// CreateServiceAccount decides a new service account created by creator.
// Its permissions must be a non-empty subset of the creator's: a service
// account can never do more than the person who made it.
func (o *Organization) CreateServiceAccount(creator access.Principal, req ServiceAccountRequest, now time.Time) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if err := domain.CheckName("name", req.Name); err != nil {
		return nil, err
	}
	if req.Permissions.Len() == 0 {
		return nil, fmt.Errorf("%w: permissions must list at least one permission", domain.ErrInvalid)
	}
	if !req.Permissions.SubsetOf(creator.Permissions) {
		extra := req.Permissions &^ creator.Permissions
		return nil, fmt.Errorf("%w: a service account cannot hold permissions its creator lacks: %v", domain.ErrForbidden, extra.Names())
	}
	if ttl := req.ExpiresAt.Sub(now); ttl < MinServiceAccountTTL-time.Second || ttl > MaxServiceAccountTTL {
		return nil, fmt.Errorf("%w: ttl must be between %s and %s", domain.ErrInvalid, MinServiceAccountTTL, MaxServiceAccountTTL)
	}
	if _, ok := o.serviceAccounts[req.ID]; ok {
		return nil, fmt.Errorf("%w: service account %q exists", domain.ErrConflict, req.ID)
	}
	return []domain.Event{&ServiceAccountCreated{
		ID:          req.ID,
		Name:        req.Name,
		Permissions: req.Permissions.Names(),
		CreatedBy:   creator.Subject,
		TokenID:     req.TokenID,
		ExpiresAt:   req.ExpiresAt,
	}}, nil
}

// RevokeServiceAccount decides revoking a service account.
func (o *Organization) RevokeServiceAccount(id string) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	sa, ok := o.serviceAccounts[id]
	if !ok || sa.revoked {
		return nil, fmt.Errorf("%w: service account %q", domain.ErrNotFound, id)
	}
	return []domain.Event{&ServiceAccountRevoked{ID: id}}, nil
}

func (o *Organization) mustExist() error {
	if !o.Exists() {
		return fmt.Errorf("%w: organization", domain.ErrNotFound)
	}
	return nil
}
