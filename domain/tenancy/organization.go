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
	members         map[MemberID][]access.Role
	serviceAccounts map[string]*serviceAccount
	// issuers are the external issuers the organization bound.
	issuers map[string]bool
}

type serviceAccount struct {
	revoked     bool
	createdBy   string
	permissions access.PermissionSet
	expiresAt   time.Time
}

// New returns an empty organization, before its first event.
func New() *Organization {
	return &Organization{members: map[MemberID][]access.Role{}, serviceAccounts: map[string]*serviceAccount{}, issuers: map[string]bool{}}
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
		o.members[BuiltIn(e.OwnerSub)] = []access.Role{access.RoleOwner}
	case *OrganizationRenamed:
		o.name = e.Name
	case *OrganizationClosed:
		// Nobody holds anything in a closed organization: the authority
		// the command core re-derives from this aggregate is empty.
		o.closed = true
		clear(o.members)
		clear(o.serviceAccounts)
		clear(o.issuers)
	case *MemberAdded:
		o.members[MemberID{e.Issuer, e.Sub}] = parseKnownRoles(e.Roles)
	case *MemberRolesChanged:
		o.members[MemberID{e.Issuer, e.Sub}] = parseKnownRoles(e.Roles)
	case *MemberRemoved:
		delete(o.members, MemberID{e.Issuer, e.Sub})
	case *IssuerBound:
		o.issuers[e.Issuer] = true
	case *IssuerUnbound:
		delete(o.issuers, e.Issuer)
	case *ServiceAccountCreated:
		perms, _ := access.ParsePermissions(e.Permissions) // recorded names were valid when decided
		o.serviceAccounts[e.ID] = &serviceAccount{createdBy: e.CreatedBy, permissions: perms, expiresAt: e.ExpiresAt}
	case *ServiceAccountReassigned:
		if sa := o.serviceAccounts[e.ID]; sa != nil {
			sa.createdBy = e.CreatedBy
		}
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
	if access.ExternalForm(ownerSub) {
		return nil, fmt.Errorf("%w: owner_sub may not have the form ISSUER|SUB, which names members of external issuers", domain.ErrInvalid)
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

// Close decides the end of the organization. confirm must be the
// organization's current name, so that closing the wrong one by a mistyped
// id is refused. Closing is final: a closed organization refuses every
// command (ErrClosed).
func (o *Organization) Close(confirm string) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if confirm == "" {
		return nil, fmt.Errorf("%w: confirm must be the organization's name", domain.ErrInvalid)
	}
	if confirm != o.name {
		return nil, fmt.Errorf("%w: confirm does not match the organization's name", domain.ErrInvalid)
	}
	return []domain.Event{&OrganizationClosed{Name: o.name}}, nil
}

// Closed reports whether the organization was closed.
func (o *Organization) Closed() bool { return o.closed }

// IsMember reports whether id is a member.
func (o *Organization) IsMember(id MemberID) bool {
	_, ok := o.members[id]
	return ok
}

// MemberRoles returns id's roles and whether id is a member.
func (o *Organization) MemberRoles(id MemberID) ([]access.Role, bool) {
	roles, ok := o.members[id]
	return roles, ok
}

// ServiceAccountActive reports whether service account id was created and
// not revoked.
func (o *Organization) ServiceAccountActive(id string) bool {
	sa := o.serviceAccounts[id]
	return sa != nil && !sa.revoked
}

// TouchesOwners reports whether giving id the roles newRoles (nil for a
// removal) adds or removes the owner role, which needs owners:manage.
func (o *Organization) TouchesOwners(id MemberID, newRoles []access.Role) bool {
	return slices.Contains(o.members[id], access.RoleOwner) != slices.Contains(newRoles, access.RoleOwner)
}

// AddMember decides adding id with roles. A member of an external issuer
// can only be added while the organization binds that issuer.
func (o *Organization) AddMember(id MemberID, roles []access.Role) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if err := o.checkNewMember(id); err != nil {
		return nil, err
	}
	if o.IsMember(id) {
		return nil, fmt.Errorf("%w: %q is already a member", domain.ErrConflict, id)
	}
	if err := checkRoles(roles); err != nil {
		return nil, err
	}
	return []domain.Event{&MemberAdded{Issuer: id.Issuer, Sub: id.Sub, Roles: access.RoleStrings(roles)}}, nil
}

// ChangeRoles decides replacing id's roles.
func (o *Organization) ChangeRoles(id MemberID, roles []access.Role) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if !o.IsMember(id) {
		return nil, fmt.Errorf("%w: member %q", domain.ErrNotFound, id)
	}
	if err := checkRoles(roles); err != nil {
		return nil, err
	}
	if !slices.Contains(roles, access.RoleOwner) {
		if err := o.keepsAnOwner(id); err != nil {
			return nil, err
		}
	}
	if slices.Equal(o.members[id], roles) {
		return nil, nil
	}
	return []domain.Event{&MemberRolesChanged{Issuer: id.Issuer, Sub: id.Sub, Roles: access.RoleStrings(roles)}}, nil
}

// RemoveMember decides removing id.
func (o *Organization) RemoveMember(id MemberID) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if !o.IsMember(id) {
		return nil, fmt.Errorf("%w: member %q", domain.ErrNotFound, id)
	}
	if err := o.keepsAnOwner(id); err != nil {
		return nil, err
	}
	return []domain.Event{&MemberRemoved{Issuer: id.Issuer, Sub: id.Sub}}, nil
}

// keepsAnOwner refuses a change that would leave the organization without
// an owner who can act, when id is its last one: owners of an issuer the
// organization no longer binds cannot sign in, so they do not count.
func (o *Organization) keepsAnOwner(id MemberID) error {
	if !slices.Contains(o.members[id], access.RoleOwner) {
		return nil
	}
	for other, roles := range o.members {
		if other != id && o.IssuerBound(other.Issuer) && slices.Contains(roles, access.RoleOwner) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is the last owner; make another member owner first", domain.ErrConflict, id)
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

// ReassignServiceAccount decides that service account id answers to member
// to from now on. The caller must hold every permission the account lists,
// so that re-assigning cannot hand anyone more than the caller could give
// them; the new creator must be a member. Re-assigning to the current
// creator records nothing.
func (o *Organization) ReassignServiceAccount(caller access.Principal, id string, to MemberID) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	sa, ok := o.serviceAccounts[id]
	if !ok || sa.revoked {
		return nil, fmt.Errorf("%w: service account %q", domain.ErrNotFound, id)
	}
	if !sa.permissions.SubsetOf(caller.Permissions) {
		extra := sa.permissions &^ caller.Permissions
		return nil, fmt.Errorf("%w: the service account holds permissions the caller lacks: %v", domain.ErrForbidden, extra.Names())
	}
	if !o.IsMember(to) {
		return nil, fmt.Errorf("%w: the new creator must be a member", domain.ErrInvalid)
	}
	if to.Subject() == sa.createdBy {
		return nil, nil
	}
	return []domain.Event{&ServiceAccountReassigned{ID: id, CreatedBy: to.Subject(), PreviousCreatedBy: sa.createdBy}}, nil
}

// ErrClosed refuses every command to a closed organization. It is a
// conflict with the organization's state (409), not a missing resource:
// the record of the organization stays in the log.
var ErrClosed = fmt.Errorf("%w: the organization is closed", domain.ErrConflict)

func (o *Organization) mustExist() error {
	if o.closed {
		return ErrClosed
	}
	if !o.Exists() {
		return fmt.Errorf("%w: organization", domain.ErrNotFound)
	}
	return nil
}
