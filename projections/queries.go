package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// DenialRecorder records refused attempts in the security stream.
type DenialRecorder interface {
	RecordDenial(ctx context.Context, who access.Principal, d access.Decision, resource string)
}

// Queries answers reads. Each method authorizes the principal with
// access.Decide before it touches a read model, and reads only within the
// principal's scope.
type Queries struct {
	tenancy  TenancyModel
	bots     BotModel
	audit    AuditModel
	denials  DenialRecorder
	recorder Recorder
	redact   ContentRedactor
	// digests key the hashes of redacted content (nil: plain SHA-256).
	digests DigestKeys
}

// NewQueries returns the query services over the read models. recorder
// records denials and reads of audit content; redactor takes content out
// of audit events for principals without audit:read-content.
func NewQueries(tenancy TenancyModel, bots BotModel, audit AuditModel, recorder Recorder, redactor ContentRedactor) *Queries {
	return &Queries{tenancy: tenancy, bots: bots, audit: audit, denials: recorder, recorder: recorder, redact: redactor}
}

// authorize returns the principal's scope when it may perform action on
// its organization, and a forbidden error (recorded) when not.
func (q *Queries) authorize(ctx context.Context, who access.Principal, action access.Permission, resource string) (access.Scope, error) {
	return authorizeOrg(ctx, q.denials, who, action, resource)
}

// authorizeOrg is the organization-level check every query service makes
// first: the principal's scope if it may perform action, else a recorded,
// forbidden refusal.
func authorizeOrg(ctx context.Context, denials DenialRecorder, who access.Principal, action access.Permission, resource string) (access.Scope, error) {
	scope, err := who.Scope()
	d := access.Decide(who, action, access.OrgResource(who.OrgID))
	if err == nil && d.Allowed {
		return scope, nil
	}
	denials.RecordDenial(ctx, who, d, resource)
	return access.Scope{}, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
}

// Org returns the caller's organization.
func (q *Queries) Org(ctx context.Context, who access.Principal) (Org, error) {
	scope, err := q.authorize(ctx, who, access.OrgRead, "org")
	if err != nil {
		return Org{}, err
	}
	return q.tenancy.Org(ctx, scope)
}

// Members lists the caller's organization's members.
func (q *Queries) Members(ctx context.Context, who access.Principal, page Page) ([]Member, error) {
	scope, err := q.authorize(ctx, who, access.MembersRead, "members")
	if err != nil {
		return nil, err
	}
	return q.tenancy.Members(ctx, scope, page)
}

// Member returns one member: sub of issuer ("" for the built-in issuer).
func (q *Queries) Member(ctx context.Context, who access.Principal, issuer, sub string) (Member, error) {
	scope, err := q.authorize(ctx, who, access.MembersRead, "members")
	if err != nil {
		return Member{}, err
	}
	return q.tenancy.Member(ctx, scope, issuer, sub)
}

// ServiceAccounts lists the organization's service accounts.
func (q *Queries) ServiceAccounts(ctx context.Context, who access.Principal, page Page) ([]ServiceAccount, error) {
	scope, err := q.authorize(ctx, who, access.ServiceAccountsManage, "service-accounts")
	if err != nil {
		return nil, err
	}
	return q.tenancy.ServiceAccounts(ctx, scope, page)
}

// Bots lists the organization's bots; archived ones only when asked.
func (q *Queries) Bots(ctx context.Context, who access.Principal, page Page, includeArchived bool) ([]Bot, error) {
	scope, err := q.authorize(ctx, who, access.BotsRead, "bots")
	if err != nil {
		return nil, err
	}
	if includeArchived {
		return q.bots.Bots(ctx, scope, page)
	}
	// Skip archived bots while still filling the page.
	limit := PageLimit(page.Limit)
	out := make([]Bot, 0, limit)
	for len(out) < limit {
		batch, err := q.bots.Bots(ctx, scope, Page{After: page.After, Limit: limit})
		if err != nil {
			return nil, err
		}
		for _, b := range batch {
			if !b.Archived && len(out) < limit {
				out = append(out, b)
			}
		}
		if len(batch) < limit {
			break
		}
		page.After = batch[len(batch)-1].ID
	}
	return out, nil
}

// Bot returns one bot.
func (q *Queries) Bot(ctx context.Context, who access.Principal, id string) (Bot, error) {
	scope, err := q.authorize(ctx, who, access.BotsRead, "bots/"+id)
	if err != nil {
		return Bot{}, err
	}
	return q.bots.Bot(ctx, scope, id)
}

// ManagedBot returns a bot to a caller who just changed it, which needs
// bots:manage rather than bots:read.
func (q *Queries) ManagedBot(ctx context.Context, who access.Principal, id string) (Bot, error) {
	scope, err := q.authorize(ctx, who, access.BotsManage, "bots/"+id)
	if err != nil {
		return Bot{}, err
	}
	return q.bots.Bot(ctx, scope, id)
}

// AuditEvents returns the caller's organization's events matching q: the
// record to audit:read, content only to audit:read-content, and each read
// of content recorded (see showAuditContent).
func (q *Queries) AuditEvents(ctx context.Context, who access.Principal, aq AuditQuery) ([]AuditEvent, error) {
	scope, err := q.authorize(ctx, who, access.AuditRead, "audit")
	if err != nil {
		return nil, err
	}
	if err := aq.Validate(); err != nil {
		return nil, err
	}
	page, err := q.audit.Events(ctx, scope, aq)
	if err != nil {
		return nil, err
	}
	return q.showAuditContent(ctx, who, aq, page)
}

// ErrUnknownPrincipal: the token is valid but names no current member or
// live service account of an open organization.
var ErrUnknownPrincipal = errors.New("token names no current member or service account")

// ErrUnknownOrganization: the token names an organization that does not
// exist or was closed. It wraps ErrUnknownPrincipal.
var ErrUnknownOrganization = fmt.Errorf("%w: no such organization", ErrUnknownPrincipal)

// ErrOrganizationClosed: the token or the recorded actor names an
// organization that was closed. It wraps ErrUnknownOrganization and
// tenancy.ErrClosed, so that processes can tell it apart and drop the work.
var ErrOrganizationClosed = fmt.Errorf("%w: %w", ErrUnknownOrganization, tenancy.ErrClosed)

// Credentials are the verified facts of a token that principal
// resolution needs.
type Credentials struct {
	// Issuer is the token's issuer when it is external, "" when it is the
	// deployment's built-in issuer.
	Issuer  string
	Kind    string
	OrgID   string
	Subject string
	TokenID string
	// Scope, when non-nil, narrows the principal's permissions.
	Scope *access.PermissionSet
}

// Principals turns verified credentials into a principal, reading roles
// and service accounts from the tenancy read model at request time, so that
// a removed member or a revoked account loses access on its next request.
type Principals struct {
	tenancy TenancyModel
	bots    BotModel // nil: bot actors are not resolved
	now     func() time.Time
}

// WithBots lets Current resolve bot actors (work a bot asked for, such as
// an analytics job a tool call submitted) through the bots read model.
func (r *Principals) WithBots(bots BotModel) *Principals {
	r.bots = bots
	return r
}

// NewPrincipals returns the principal resolver.
func NewPrincipals(tenancy TenancyModel) *Principals {
	return &Principals{tenancy: tenancy, now: time.Now}
}

// Resolve returns the principal for c, or ErrUnknownPrincipal.
func (r *Principals) Resolve(ctx context.Context, c Credentials) (access.Principal, error) {
	switch access.Kind(c.Kind) {
	case access.KindPlatform:
		if c.Issuer != "" {
			return access.Principal{}, fmt.Errorf("%w: only the built-in issuer speaks for the platform", ErrUnknownPrincipal)
		}
		p := access.NewPlatform(c.Subject)
		if c.Scope != nil {
			// A scope can only narrow; it cannot name orgs:create, so a
			// scoped platform token may do nothing.
			p.Permissions = p.Permissions.Intersect(*c.Scope)
		}
		return p, nil
	case access.KindUser, access.KindService:
	default:
		return access.Principal{}, fmt.Errorf("%w: kind %q", ErrUnknownPrincipal, c.Kind)
	}
	// The token's own org is the only scope a resolution may read.
	scope, err := access.EventScope(c.OrgID)
	if err != nil || c.OrgID == access.PlatformScope {
		return access.Principal{}, ErrUnknownOrganization
	}
	org, err := r.tenancy.Org(ctx, scope)
	if err != nil {
		return access.Principal{}, ErrUnknownOrganization
	}
	if org.Closed {
		return access.Principal{}, ErrOrganizationClosed
	}
	if access.Kind(c.Kind) == access.KindService {
		if c.Issuer != "" {
			return access.Principal{}, fmt.Errorf("%w: service accounts come only from the built-in issuer", ErrUnknownPrincipal)
		}
		sa, err := r.tenancy.ServiceAccount(ctx, scope, c.Subject)
		switch {
		case err != nil:
			return access.Principal{}, fmt.Errorf("%w: service account", ErrUnknownPrincipal)
		case sa.Revoked, sa.TokenID != c.TokenID, !r.now().Before(sa.ExpiresAt):
			return access.Principal{}, fmt.Errorf("%w: service account revoked, expired or token replaced", ErrUnknownPrincipal)
		}
		return r.serviceAccount(ctx, scope, sa, c.Scope)
	}
	roles, err := r.memberRoles(ctx, scope, c.Issuer, c.Subject)
	if err != nil {
		return access.Principal{}, err
	}
	return access.NewUser(c.OrgID, access.PrincipalSubject(c.Issuer, c.Subject), roles, c.Scope), nil
}

// Current returns the principal an event's actor is now, for processes that
// re-authorize at execution time: a user's current roles, or a service
// account that is still live narrowed by what its creator holds now, both
// narrowed by the token scope recorded on the event (a process never holds
// more than the request that triggered it) and carrying the recorded
// on-behalf-of chain.
// Anything else is ErrUnknownPrincipal.
func (r *Principals) Current(ctx context.Context, orgID string, actor eventstore.Actor) (access.Principal, error) {
	var tokenScope *access.PermissionSet
	if actor.Scope != nil {
		// Unknown names fail closed: the scope cannot be rebuilt.
		s, err := access.ParsePermissions(actor.Scope)
		if err != nil {
			return access.Principal{}, fmt.Errorf("%w: recorded scope: %v", ErrUnknownPrincipal, err)
		}
		tokenScope = &s
	}
	scope, err := access.EventScope(orgID)
	if err != nil {
		return access.Principal{}, ErrUnknownOrganization
	}
	org, err := r.tenancy.Org(ctx, scope)
	if err != nil {
		return access.Principal{}, ErrUnknownOrganization
	}
	if org.Closed {
		return access.Principal{}, ErrOrganizationClosed
	}
	switch access.Kind(actor.Kind) {
	case access.KindUser:
		issuer, sub := access.SplitPrincipalSubject(actor.Subject)
		roles, err := r.memberRoles(ctx, scope, issuer, sub)
		if err != nil {
			return access.Principal{}, err
		}
		p := access.NewUser(orgID, actor.Subject, roles, tokenScope)
		p.OnBehalfOf = slices.Clone(actor.OnBehalfOf)
		return p, nil
	case access.KindService:
		sa, err := r.tenancy.ServiceAccount(ctx, scope, actor.Subject)
		if err != nil || sa.Revoked || !r.now().Before(sa.ExpiresAt) {
			return access.Principal{}, fmt.Errorf("%w: service account", ErrUnknownPrincipal)
		}
		p, err := r.serviceAccount(ctx, scope, sa, tokenScope)
		if err != nil {
			return access.Principal{}, err
		}
		p.OnBehalfOf = slices.Clone(actor.OnBehalfOf)
		return p, nil
	case access.KindBot:
		return r.currentBot(ctx, scope, orgID, actor)
	}
	return access.Principal{}, fmt.Errorf("%w: kind %q", ErrUnknownPrincipal, actor.Kind)
}

// currentBot returns a bot actor as it is now: its invoker (the first of the
// recorded chain) resolved as Current resolves a user or service account,
// then narrowed by each bot of the chain, in order, to that bot's current
// permission grants (access.Delegate). An archived or unknown bot, or an
// invoker that is no longer a member or live account, resolves to nothing.
func (r *Principals) currentBot(ctx context.Context, scope access.Scope, orgID string, actor eventstore.Actor) (access.Principal, error) {
	if r.bots == nil || len(actor.OnBehalfOf) == 0 {
		return access.Principal{}, fmt.Errorf("%w: bot actor without an invoker", ErrUnknownPrincipal)
	}
	switch access.Kind(actor.InvokerKind) {
	case access.KindUser, access.KindService:
	default:
		return access.Principal{}, fmt.Errorf("%w: bot actor's invoker kind %q", ErrUnknownPrincipal, actor.InvokerKind)
	}
	p, err := r.Current(ctx, orgID, eventstore.Actor{Subject: actor.OnBehalfOf[0], Kind: actor.InvokerKind, Scope: actor.Scope})
	if err != nil {
		return access.Principal{}, err
	}
	chain := append(slices.Clone(actor.OnBehalfOf[1:]), actor.Subject)
	for _, id := range chain {
		b, err := r.bots.Bot(ctx, scope, id)
		if err != nil || b.Archived {
			return access.Principal{}, fmt.Errorf("%w: bot %s", ErrUnknownPrincipal, id)
		}
		perms, err := access.ParsePermissions(b.Grants.Permissions)
		if err != nil {
			return access.Principal{}, fmt.Errorf("%w: bot %s grants: %v", ErrUnknownPrincipal, id, err)
		}
		p = access.Delegate(p, access.KindBot, id, perms)
	}
	return p, nil
}

// ErrCreatorNotMember: the token names a live service account whose creator
// is no longer a member of the organization (or whose external issuer the
// organization no longer binds). The account cannot act until an admin
// re-assigns or revokes it. It wraps ErrUnknownPrincipal.
var ErrCreatorNotMember = fmt.Errorf("%w: the service account's creator is not a member", ErrUnknownPrincipal)

// serviceAccount returns the principal of live service account sa, narrowed
// by the token scope and by what its creator holds now: a service account
// never does more than the member answerable for it can do at this moment.
func (r *Principals) serviceAccount(ctx context.Context, scope access.Scope, sa ServiceAccount, tokenScope *access.PermissionSet) (access.Principal, error) {
	perms, err := access.ParsePermissions(sa.Permissions)
	if err != nil {
		return access.Principal{}, fmt.Errorf("%w: %v", ErrUnknownPrincipal, err)
	}
	issuer, sub := access.SplitPrincipalSubject(sa.CreatedBy)
	if sub == "" {
		return access.Principal{}, ErrCreatorNotMember
	}
	roles, err := r.memberRoles(ctx, scope, issuer, sub)
	if err != nil {
		return access.Principal{}, fmt.Errorf("%w: %s: %v", ErrCreatorNotMember, sa.CreatedBy, err)
	}
	p := access.NewServiceAccount(scope.OrgID(), sa.ID, perms.Intersect(access.PermissionsOf(roles)), tokenScope)
	p.CreatedBy = sa.CreatedBy
	return p, nil
}
