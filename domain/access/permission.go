package access

import (
	"fmt"
	"math/bits"
	"sort"
)

// Permission is one named action, "resource:action". The zero value is not a
// permission: Decide denies it, so a permission that failed to parse can never
// allow anything.
type Permission uint8

// The permission catalog. Append only: the numeric value of a permission is
// used in bit sets, never persisted (events carry the names).
const (
	PermissionUnknown Permission = iota
	OrgRead
	OrgDelete
	OwnersManage
	MembersRead
	MembersManage
	ServiceAccountsManage
	BotsRead
	BotsManage
	BotsRun
	KBRead
	KBWrite
	KBManage
	DatasourcesRead
	DatasourcesManage
	DatasourcesQuery
	AnalyticsRun
	AnalyticsRead
	WorkflowsRead
	WorkflowsManage
	WorkflowsRun
	InboxRead
	InboxReply
	InboxManage
	AuditRead
	// OrgsCreate is the one platform-level permission: only a platform
	// principal holds it, and it is never part of an organization role.
	OrgsCreate
	// AuditReadContent shows the content fields of audit events (document
	// text, chunk text, search queries, bot instructions) on top of
	// audit:read's record; only owners hold it by default.
	AuditReadContent
	// ConversationsRead shows other members' conversations with bots;
	// everyone sees their own.
	ConversationsRead

	permissionCount
)

var permissionNames = [permissionCount]string{
	PermissionUnknown:     "",
	OrgRead:               "org:read",
	OrgDelete:             "org:delete",
	OwnersManage:          "owners:manage",
	MembersRead:           "members:read",
	MembersManage:         "members:manage",
	ServiceAccountsManage: "service-accounts:manage",
	BotsRead:              "bots:read",
	BotsManage:            "bots:manage",
	BotsRun:               "bots:run",
	KBRead:                "kb:read",
	KBWrite:               "kb:write",
	KBManage:              "kb:manage",
	DatasourcesRead:       "datasources:read",
	DatasourcesManage:     "datasources:manage",
	DatasourcesQuery:      "datasources:query",
	AnalyticsRun:          "analytics:run",
	AnalyticsRead:         "analytics:read",
	WorkflowsRead:         "workflows:read",
	WorkflowsManage:       "workflows:manage",
	WorkflowsRun:          "workflows:run",
	InboxRead:             "inbox:read",
	InboxReply:            "inbox:reply",
	InboxManage:           "inbox:manage",
	AuditRead:             "audit:read",
	OrgsCreate:            "orgs:create",
	AuditReadContent:      "audit:read-content",
	ConversationsRead:     "conversations:read",
}

// String returns the permission's catalog name, or "unknown(N)".
func (p Permission) String() string {
	if p.Known() {
		return permissionNames[p]
	}
	return fmt.Sprintf("unknown(%d)", uint8(p))
}

// Known reports whether p is in the catalog.
func (p Permission) Known() bool { return p > PermissionUnknown && p < permissionCount }

// manages reports whether p is a resource-management permission, which
// owners and admins keep on resources restricted by grants.
func (p Permission) manages() bool {
	switch p {
	case BotsManage, KBManage, DatasourcesManage, WorkflowsManage, InboxManage:
		return true
	}
	return false
}

// usersOnly reports whether only a person may exercise p: a credential
// that can mint credentials would let a leaked token outlive its revocation.
func (p Permission) usersOnly() bool { return p == ServiceAccountsManage }

// ParsePermission looks a name up in the catalog.
func ParsePermission(name string) (Permission, bool) {
	for i := PermissionUnknown + 1; i < permissionCount; i++ {
		if permissionNames[i] == name {
			return i, true
		}
	}
	return PermissionUnknown, false
}

// Catalog lists every organization-level permission name, sorted.
func Catalog() []string {
	names := make([]string, 0, permissionCount)
	for p := PermissionUnknown + 1; p < permissionCount; p++ {
		if p != OrgsCreate {
			names = append(names, permissionNames[p])
		}
	}
	sort.Strings(names)
	return names
}

// PermissionSet is a set of permissions as a bit set, so that membership
// tests and intersections cost a few instructions and never allocate.
type PermissionSet uint64

// NewPermissionSet returns the set holding perms; unknown permissions are dropped.
func NewPermissionSet(perms ...Permission) PermissionSet {
	var s PermissionSet
	for _, p := range perms {
		if p.Known() {
			s |= 1 << p
		}
	}
	return s
}

// ParsePermissions parses catalog names into a set. Any unknown name is an
// error: a caller asking for a permission that does not exist is refused,
// never silently given less or more.
func ParsePermissions(names []string) (PermissionSet, error) {
	var s PermissionSet
	for _, n := range names {
		p, ok := ParsePermission(n)
		if !ok || p == OrgsCreate {
			return 0, fmt.Errorf("%w: %q", ErrUnknownPermission, n)
		}
		s |= 1 << p
	}
	return s, nil
}

// Has reports whether p is in the set. Unknown permissions are never in it.
func (s PermissionSet) Has(p Permission) bool { return p.Known() && s&(1<<p) != 0 }

// Intersect returns the permissions held by both sets.
func (s PermissionSet) Intersect(o PermissionSet) PermissionSet { return s & o }

// SubsetOf reports whether every permission of s is also in o.
func (s PermissionSet) SubsetOf(o PermissionSet) bool { return s&^o == 0 }

// Len returns the number of permissions in the set.
func (s PermissionSet) Len() int { return bits.OnesCount64(uint64(s)) }

// Names returns the catalog names of the set, sorted.
func (s PermissionSet) Names() []string {
	names := make([]string, 0, s.Len())
	for p := PermissionUnknown + 1; p < permissionCount; p++ {
		if s.Has(p) {
			names = append(names, permissionNames[p])
		}
	}
	sort.Strings(names)
	return names
}
