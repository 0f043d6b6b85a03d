package access

import (
	"fmt"
	"strings"
)

// Role is a named set of organization permissions.
type Role uint8

// The roles, from most to least powerful.
const (
	RoleUnknown Role = iota
	RoleOwner
	RoleAdmin
	RoleBuilder
	RoleAnalyst
	RoleAgent
	RoleMember
	RoleViewer
	RoleAuditor

	roleCount
)

var roleNames = [roleCount]string{
	RoleUnknown: "",
	RoleOwner:   "owner",
	RoleAdmin:   "admin",
	RoleBuilder: "builder",
	RoleAnalyst: "analyst",
	RoleAgent:   "agent",
	RoleMember:  "member",
	RoleViewer:  "viewer",
	RoleAuditor: "auditor",
}

// orgPermissions is every organization-level permission (everything but
// the platform's orgs:create).
const orgPermissions = PermissionSet(((1 << permissionCount) - 1) &^ (1 << OrgsCreate) &^ 1)

var rolePermissions = [roleCount]PermissionSet{
	RoleOwner: orgPermissions,
	// Content of the audit record is the owners' alone unless a role is
	// made for it: an admin who may not read a restricted base must not
	// read it through the audit trail either.
	RoleAdmin: orgPermissions &^ NewPermissionSet(OrgDelete, OwnersManage, AuditReadContent),
	RoleBuilder: NewPermissionSet(OrgRead, MembersRead,
		BotsRead, BotsManage, BotsRun,
		KBRead, KBWrite, KBManage,
		WorkflowsRead, WorkflowsManage, WorkflowsRun,
		DatasourcesRead, AnalyticsRead),
	RoleAnalyst: NewPermissionSet(OrgRead, MembersRead, BotsRead, KBRead,
		DatasourcesRead, DatasourcesQuery, AnalyticsRun, AnalyticsRead, WorkflowsRead),
	RoleAgent: NewPermissionSet(OrgRead, InboxRead, InboxReply, BotsRead, BotsRun, KBRead),
	RoleMember: NewPermissionSet(OrgRead, MembersRead, BotsRead, BotsRun, KBRead,
		WorkflowsRead),
	RoleViewer: NewPermissionSet(OrgRead, MembersRead, BotsRead, KBRead, DatasourcesRead,
		AnalyticsRead, WorkflowsRead, InboxRead),
	RoleAuditor: NewPermissionSet(OrgRead, MembersRead, AuditRead),
}

// String returns the role's name.
func (r Role) String() string {
	if r.Known() {
		return roleNames[r]
	}
	return fmt.Sprintf("unknown(%d)", uint8(r))
}

// Known reports whether r is one of the defined roles.
func (r Role) Known() bool { return r > RoleUnknown && r < roleCount }

// Permissions returns the permissions the role grants; none for an unknown role.
func (r Role) Permissions() PermissionSet {
	if !r.Known() {
		return 0
	}
	return rolePermissions[r]
}

// ParseRole looks a role up by name.
func ParseRole(name string) (Role, bool) {
	for r := RoleUnknown + 1; r < roleCount; r++ {
		if roleNames[r] == name {
			return r, true
		}
	}
	return RoleUnknown, false
}

// ParseRoles parses role names, refusing unknown names, duplicates and an
// empty list.
func ParseRoles(names []string) ([]Role, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: at least one role is required", ErrInvalidRole)
	}
	roles := make([]Role, 0, len(names))
	seen := map[Role]bool{}
	for _, n := range names {
		r, ok := ParseRole(n)
		if !ok {
			return nil, fmt.Errorf("%w: %q (known: %s)", ErrInvalidRole, n, strings.Join(RoleNames(), ", "))
		}
		if seen[r] {
			return nil, fmt.Errorf("%w: %q listed twice", ErrInvalidRole, n)
		}
		seen[r] = true
		roles = append(roles, r)
	}
	return roles, nil
}

// RoleNames lists every role name, most powerful first.
func RoleNames() []string {
	names := make([]string, 0, roleCount-1)
	for r := RoleUnknown + 1; r < roleCount; r++ {
		names = append(names, roleNames[r])
	}
	return names
}

// RoleStrings returns the names of roles.
func RoleStrings(roles []Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.String()
	}
	return names
}

// PermissionsOf returns the union of the permissions of roles.
func PermissionsOf(roles []Role) PermissionSet {
	var s PermissionSet
	for _, r := range roles {
		s |= r.Permissions()
	}
	return s
}
