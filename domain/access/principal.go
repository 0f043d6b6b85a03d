package access

import "errors"

// Errors of the access package. Callers match them with errors.Is.
var (
	ErrUnknownPermission = errors.New("unknown permission")
	ErrInvalidRole       = errors.New("invalid role")
	ErrNoScope           = errors.New("no organization scope")
)

// PlatformScope is the organization id of platform-level streams (for
// example the platform's security stream). No organization can have it as
// its id, because organization ids are UUIDs.
const PlatformScope = "platform"

// Kind says what sort of actor a principal is.
type Kind string

// The kinds of actor.
const (
	KindUser     Kind = "user"
	KindService  Kind = "service"
	KindPlatform Kind = "platform"
	KindBot      Kind = "bot"
	KindWorkflow Kind = "workflow"
	// KindProcess is an asynchronous process (ingestion, …) recording the
	// outcome of work it did on behalf of the principal in OnBehalfOf.
	KindProcess Kind = "process"
)

// Principal is an authenticated actor with its permissions resolved for
// this moment: roles come from the membership read model at request time,
// never from the token.
type Principal struct {
	Subject string
	Kind    Kind
	// OrgID is empty for a platform principal.
	OrgID string
	// Roles is the role snapshot of a user; empty for other kinds.
	Roles []Role
	// Permissions is the effective set: the roles' permissions narrowed by
	// the token scope, a service account's explicit list, or a delegation.
	Permissions PermissionSet
	// TokenScope is the scope the token carried (nil: none). It is already
	// folded into Permissions; it is kept so that the record can say what
	// narrowed the principal and so that a process can rebuild the
	// principal later with the same narrowing.
	TokenScope *PermissionSet
	// CreatedBy is the user who created a service account principal, when
	// known.
	CreatedBy string
	// OnBehalfOf is the delegation chain, outermost invoker first.
	OnBehalfOf []string
	// InvokerKind is the kind of OnBehalfOf[0], the user or service
	// account whose authority a delegated principal uses: resource grants
	// naming "user:" or "service:" subjects are matched against it.
	InvokerKind Kind
}

// NewUser returns a member of org with the permissions of roles, narrowed
// by scope when the token carried one.
func NewUser(orgID, subject string, roles []Role, scope *PermissionSet) Principal {
	perms := PermissionsOf(roles)
	if scope != nil {
		perms = perms.Intersect(*scope)
	}
	return Principal{Subject: subject, Kind: KindUser, OrgID: orgID, Roles: roles, Permissions: perms, TokenScope: copyScope(scope)}
}

// NewServiceAccount returns a service account of org holding exactly perms,
// narrowed by scope when the token carried one.
func NewServiceAccount(orgID, id string, perms PermissionSet, scope *PermissionSet) Principal {
	perms &= orgPermissions
	if scope != nil {
		perms = perms.Intersect(*scope)
	}
	return Principal{Subject: id, Kind: KindService, OrgID: orgID, Permissions: perms, TokenScope: copyScope(scope)}
}

// NewPlatform returns the platform operator: it may create organizations
// and nothing else.
func NewPlatform(subject string) Principal {
	return Principal{Subject: subject, Kind: KindPlatform, Permissions: NewPermissionSet(OrgsCreate)}
}

// Delegate returns the principal a bot, workflow or process acts as when
// invoker runs it: grants ∩ invoker's permissions now. It never holds
// anything the invoker lacks. It is the one way to build a principal that
// acts for another (processes, bot turns, workflow steps): the invoker's
// token scope is carried (it already narrowed the invoker's permissions)
// and the invoker joins the on-behalf-of chain, so the record says whose
// authority was used and how it was narrowed.
func Delegate(invoker Principal, kind Kind, subject string, grants PermissionSet) Principal {
	chain := make([]string, 0, len(invoker.OnBehalfOf)+1)
	chain = append(chain, invoker.OnBehalfOf...)
	chain = append(chain, invoker.Subject)
	invokerKind := invoker.Kind
	if len(invoker.OnBehalfOf) > 0 {
		invokerKind = invoker.InvokerKind
	}
	return Principal{
		Subject:     subject,
		Kind:        kind,
		OrgID:       invoker.OrgID,
		Roles:       invoker.Roles,
		Permissions: grants.Intersect(invoker.Permissions),
		TokenScope:  copyScope(invoker.TokenScope),
		OnBehalfOf:  chain,
		InvokerKind: invokerKind,
	}
}

func copyScope(scope *PermissionSet) *PermissionSet {
	if scope == nil {
		return nil
	}
	s := *scope
	return &s
}

// Scope returns the principal's organization scope. A platform principal
// has none: it cannot read organization content.
func (p Principal) Scope() (Scope, error) {
	if p.Kind == KindPlatform || p.OrgID == "" || p.OrgID == PlatformScope {
		return Scope{}, ErrNoScope
	}
	return Scope{orgID: p.OrgID}, nil
}

// Scope is the organization a read is confined to. It can only be made from
// a principal (Principal.Scope) or, inside a projection, from the org of
// the event being applied (EventScope); the zero Scope is invalid and every
// read model refuses it.
type Scope struct{ orgID string }

// EventScope returns the scope of an event's own organization. Only
// projections and processes, which act on behalf of the event, may use it.
func EventScope(orgID string) (Scope, error) {
	if orgID == "" {
		return Scope{}, ErrNoScope
	}
	return Scope{orgID: orgID}, nil
}

// OrgID returns the organization of the scope.
func (s Scope) OrgID() string { return s.orgID }

// Valid reports whether the scope names an organization.
func (s Scope) Valid() bool { return s.orgID != "" }
