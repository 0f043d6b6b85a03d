package access

import (
	"fmt"
	"strings"
)

// Resource is what an action is performed on, as far as authorization
// cares: its organization and, for resources restricted to part of the
// organization, its grants.
type Resource struct {
	OrgID string
	// Restricted resources allow only the subjects their Grants list,
	// whatever the caller's organization-wide permissions say.
	Restricted bool
	Grants     []Grant
}

// OrgResource is the organization itself, for organization-level actions.
func OrgResource(orgID string) Resource { return Resource{OrgID: orgID} }

// GrantSubjectKind says whom a grant names.
type GrantSubjectKind uint8

// The subjects a grant can name.
const (
	GrantUser GrantSubjectKind = iota + 1
	GrantRole
	GrantService
)

// Grant gives one subject permissions on one resource.
type Grant struct {
	Kind GrantSubjectKind
	// Value is a user subject, a role name or a service account id.
	Value       string
	Permissions PermissionSet
}

// Reason says why a decision came out the way it did.
type Reason uint8

// The reasons, allow reasons first.
const (
	ReasonNone Reason = iota
	ReasonRoleAllows
	ReasonServiceAccountAllows
	ReasonDelegationAllows
	ReasonPlatformAllows
	ReasonGrantAllows
	ReasonManagerOverride

	ReasonUnknownPermission
	ReasonNoOrganization
	ReasonOtherOrganization
	ReasonMissingPermission
	ReasonNoGrant
	ReasonPlatformOnly
	ReasonUsersOnly
	// Refusals of a bot's tool calls that no grant of a principal
	// decides: the code around the model refuses them first.
	ReasonUnknownTool
	ReasonToolNotGranted
	ReasonResourceNotGranted
	ReasonInvalidArguments
	ReasonCallLimit
	ReasonDelegationLimit
)

// reasonCodes are the reasons as short, stable codes: label values of
// metrics, never shown in place of Decision.Reason.
var reasonCodes = [...]string{
	ReasonNone: "none", ReasonRoleAllows: "role_allows", ReasonServiceAccountAllows: "service_account_allows",
	ReasonDelegationAllows: "delegation_allows", ReasonPlatformAllows: "platform_allows", ReasonGrantAllows: "grant_allows",
	ReasonManagerOverride: "manager_override", ReasonUnknownPermission: "unknown_permission",
	ReasonNoOrganization: "no_organization", ReasonOtherOrganization: "other_organization",
	ReasonMissingPermission: "missing_permission", ReasonNoGrant: "no_grant", ReasonPlatformOnly: "platform_only",
	ReasonUsersOnly: "users_only", ReasonUnknownTool: "unknown_tool", ReasonToolNotGranted: "tool_not_granted",
	ReasonResourceNotGranted: "resource_not_granted", ReasonInvalidArguments: "invalid_arguments",
	ReasonCallLimit: "call_limit", ReasonDelegationLimit: "delegation_limit",
}

// Code is the reason as a short snake_case code ("missing_permission").
func (r Reason) Code() string {
	if int(r) < len(reasonCodes) && reasonCodes[r] != "" {
		return reasonCodes[r]
	}
	return "unknown"
}

// Decision is the outcome of Decide. It is a small value so that deciding
// never allocates; Reason formats it for people and event metadata.
type Decision struct {
	Allowed    bool
	Code       Reason
	Permission Permission
	// Role is the role that allowed the action, when a role did.
	Role Role
}

// Reason returns a one-line explanation, for event metadata and logs.
func (d Decision) Reason() string {
	p := d.Permission.String()
	switch d.Code {
	case ReasonRoleAllows:
		return fmt.Sprintf("allowed: role %s grants %s", d.Role, p)
	case ReasonServiceAccountAllows:
		return fmt.Sprintf("allowed: service account permission list holds %s", p)
	case ReasonDelegationAllows:
		return fmt.Sprintf("allowed: delegated grants and invoker both hold %s", p)
	case ReasonPlatformAllows:
		return fmt.Sprintf("allowed: platform principal holds %s", p)
	case ReasonGrantAllows:
		return fmt.Sprintf("allowed: resource grant gives %s", p)
	case ReasonManagerOverride:
		return fmt.Sprintf("allowed: role %s keeps %s on restricted resources", d.Role, p)
	case ReasonUnknownPermission:
		return fmt.Sprintf("denied: %s is not a known permission", p)
	case ReasonNoOrganization:
		return fmt.Sprintf("denied: principal has no organization for %s", p)
	case ReasonOtherOrganization:
		return fmt.Sprintf("denied: resource belongs to another organization (%s)", p)
	case ReasonMissingPermission:
		return fmt.Sprintf("denied: principal lacks %s", p)
	case ReasonNoGrant:
		return fmt.Sprintf("denied: resource is restricted and no grant gives %s", p)
	case ReasonPlatformOnly:
		return fmt.Sprintf("denied: %s is reserved to the platform", p)
	case ReasonUsersOnly:
		return fmt.Sprintf("denied: %s is reserved to users, not service accounts, bots or workflows", p)
	case ReasonUnknownTool:
		return "denied: no such tool"
	case ReasonToolNotGranted:
		return "denied: the bot's grants do not list this tool"
	case ReasonResourceNotGranted:
		return fmt.Sprintf("denied: the bot's grants do not list this resource (%s)", p)
	case ReasonInvalidArguments:
		return "denied: the arguments do not match the tool's schema"
	case ReasonCallLimit:
		return "denied: the turn has used all its tool calls"
	case ReasonDelegationLimit:
		return "denied: bots may consult bots at most 3 deep and never in a cycle"
	}
	return "denied: no decision"
}

// Decide says whether principal may perform action on res, and why. It is
// pure and does not allocate. Anything it does not recognise is denied.
func Decide(p Principal, action Permission, res Resource) Decision {
	d := Decision{Permission: action}
	if !action.Known() {
		d.Code = ReasonUnknownPermission
		return d
	}
	if action == OrgsCreate {
		if p.Kind == KindPlatform && p.Permissions.Has(OrgsCreate) {
			d.Allowed, d.Code = true, ReasonPlatformAllows
		} else {
			d.Code = ReasonPlatformOnly
		}
		return d
	}
	if p.Kind == KindPlatform || p.OrgID == "" || p.OrgID == PlatformScope {
		d.Code = ReasonNoOrganization
		return d
	}
	if res.OrgID != p.OrgID {
		d.Code = ReasonOtherOrganization
		return d
	}
	if !p.Permissions.Has(action) {
		d.Code = ReasonMissingPermission
		return d
	}
	if action.usersOnly() && (p.Kind != KindUser || len(p.OnBehalfOf) > 0) {
		d.Code = ReasonUsersOnly
		return d
	}
	if res.Restricted {
		return decideGrants(p, action, res, d)
	}
	d.Allowed = true
	switch {
	case len(p.OnBehalfOf) > 0:
		d.Code = ReasonDelegationAllows
	case p.Kind == KindService:
		d.Code = ReasonServiceAccountAllows
	default:
		d.Code = ReasonRoleAllows
		d.Role = roleGranting(p.Roles, action)
	}
	return d
}

func decideGrants(p Principal, action Permission, res Resource, d Decision) Decision {
	for _, g := range res.Grants {
		if g.Permissions.Has(action) && grantNames(g, p) {
			d.Allowed, d.Code = true, ReasonGrantAllows
			return d
		}
	}
	if action.manages() && len(p.OnBehalfOf) == 0 {
		for _, r := range p.Roles {
			if r == RoleOwner || r == RoleAdmin {
				d.Allowed, d.Code, d.Role = true, ReasonManagerOverride, r
				return d
			}
		}
	}
	d.Code = ReasonNoGrant
	return d
}

// grantNames reports whether g names p. A delegated principal (a bot, a
// workflow, a process) is named by what names its outermost invoker: the
// invoker's roles, which it carries, or the invoker's own subject. It is
// never named by its own id, so a grant can never give a bot more than
// the person it acts for holds.
func grantNames(g Grant, p Principal) bool {
	subject, kind := p.Subject, p.Kind
	if len(p.OnBehalfOf) > 0 {
		subject, kind = p.OnBehalfOf[0], p.InvokerKind
	}
	switch g.Kind {
	case GrantUser:
		return kind == KindUser && g.Value == subject
	case GrantService:
		return kind == KindService && g.Value == subject
	case GrantRole:
		for _, r := range p.Roles {
			if r.Known() && roleNames[r] == g.Value {
				return true
			}
		}
	}
	return false
}

func roleGranting(roles []Role, action Permission) Role {
	for _, r := range roles {
		if r.Permissions().Has(action) {
			return r
		}
	}
	return RoleUnknown
}

// ParseGrant reads a recorded grant — a subject "user:SUB", "role:ROLE" or
// "service:ID" and permission names — into what Decide matches. A subject
// of another form is not a grant (false); unknown permission names give
// nothing (fail closed).
func ParseGrant(subject string, permissions []string) (Grant, bool) {
	kind, value, _ := strings.Cut(subject, ":")
	var perms []Permission
	for _, name := range permissions {
		if p, ok := ParsePermission(name); ok {
			perms = append(perms, p)
		}
	}
	g := Grant{Value: value, Permissions: NewPermissionSet(perms...)}
	switch kind {
	case "user":
		g.Kind = GrantUser
	case "role":
		g.Kind = GrantRole
	case "service":
		g.Kind = GrantService
	default:
		return Grant{}, false
	}
	return g, true
}
