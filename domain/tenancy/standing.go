package tenancy

import (
	"slices"
	"strings"
	"time"

	"github.com/palisadehq/palisade/domain/access"
)

// Standing: what the organization, as folded, says a subject may do. These
// are the rules principal resolution applies at request time (a member of a
// bound issuer acts with its roles; a service account acts while it is
// neither revoked nor expired and its creator is a member, with its list ∩
// its creator's permissions), stated over the aggregate so that a review of
// access at a past moment folds the log up to then and asks the same
// questions (see package audit/accessreview).

// MemberStanding returns id's roles and whether id could act as a member:
// the organization exists and is open, id is a member, and its issuer is one
// the organization binds (the built-in issuer always is). A built-in sub of
// the external form ISSUER|SUB is never a member (see access.ExternalForm).
func (o *Organization) MemberStanding(id MemberID) ([]access.Role, bool) {
	if !o.Exists() || !o.IssuerBound(id.Issuer) || (id.Issuer == "" && access.ExternalForm(id.Sub)) {
		return nil, false
	}
	roles, ok := o.members[id]
	return slices.Clone(roles), ok
}

// UserPrincipal returns the principal member id acts as (with no token
// scope), and false when id could not act (see MemberStanding).
func (o *Organization) UserPrincipal(id MemberID) (access.Principal, bool) {
	roles, ok := o.MemberStanding(id)
	if !ok {
		return access.Principal{}, false
	}
	return access.NewUser(o.id, id.Subject(), roles, nil), true
}

// ServiceAccountStanding is one service account as the organization says it
// is at a moment.
type ServiceAccountStanding struct {
	ID        string
	CreatedBy string
	// Listed is the account's own permission list.
	Listed    access.PermissionSet
	ExpiresAt time.Time
	Revoked   bool
	// Expired: the moment asked is at or after ExpiresAt.
	Expired bool
	// CreatorMember: the creator could act as a member.
	CreatorMember bool
	// Active: the organization is open and the account neither revoked nor
	// expired, and its creator is a member; only then does it act.
	Active bool
	// Effective is what it may do: Listed ∩ the creator's permissions while
	// it is active, nothing otherwise.
	Effective access.PermissionSet
}

// ServiceAccountStanding returns service account id as it stands at
// moment at, and false when no such account was created.
func (o *Organization) ServiceAccountStanding(id string, at time.Time) (ServiceAccountStanding, bool) {
	sa := o.serviceAccounts[id]
	if sa == nil {
		return ServiceAccountStanding{}, false
	}
	st := ServiceAccountStanding{
		ID: id, CreatedBy: sa.createdBy, Listed: sa.permissions, ExpiresAt: sa.expiresAt,
		Revoked: sa.revoked, Expired: !at.Before(sa.expiresAt),
	}
	issuer, sub := access.SplitPrincipalSubject(sa.createdBy)
	var creatorRoles []access.Role
	if sub != "" {
		creatorRoles, st.CreatorMember = o.MemberStanding(MemberID{Issuer: issuer, Sub: sub})
	}
	st.Active = o.Exists() && !st.Revoked && !st.Expired && st.CreatorMember
	if st.Active {
		st.Effective = access.NewServiceAccount(o.id, id, sa.permissions.Intersect(access.PermissionsOf(creatorRoles)), nil).Permissions
	}
	return st, true
}

// ServiceAccountPrincipal returns the principal service account id acts as
// at moment at (with no token scope), and false when it could not act.
func (o *Organization) ServiceAccountPrincipal(id string, at time.Time) (access.Principal, bool) {
	st, ok := o.ServiceAccountStanding(id, at)
	if !ok || !st.Active {
		return access.Principal{}, false
	}
	p := access.NewServiceAccount(o.id, id, st.Effective, nil)
	p.CreatedBy = st.CreatedBy
	return p, true
}

// Members returns every member on record, sorted by principal subject,
// whether or not it could act (see MemberStanding).
func (o *Organization) Members() []MemberID {
	ids := make([]MemberID, 0, len(o.members))
	for id := range o.members {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b MemberID) int { return strings.Compare(a.Subject(), b.Subject()) })
	return ids
}

// ServiceAccounts returns the ids of every service account on record,
// sorted, revoked ones included.
func (o *Organization) ServiceAccounts() []string {
	ids := make([]string, 0, len(o.serviceAccounts))
	for id := range o.serviceAccounts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
