package projections

import (
	"context"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
)

// ErrNotFound is domain.ErrNotFound: a record missing from the scope's
// organization is the same error as a resource the domain does not know,
// so that every layer answers not-found alike.
//
// Deprecated: use domain.ErrNotFound.
var ErrNotFound = domain.ErrNotFound

// Org is an organization as its members see it.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Closed    bool      `json:"closed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Member is one member of an organization: an issuer and a subject there.
// Issuer is empty for the deployment's built-in issuer.
type Member struct {
	Issuer    string    `json:"issuer,omitempty"`
	Sub       string    `json:"sub"`
	Roles     []string  `json:"roles"`
	AddedAt   time.Time `json:"added_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is the member's principal subject (access.PrincipalSubject): its
// unique key in the organization and its cursor in member lists.
func (m Member) Key() string { return access.PrincipalSubject(m.Issuer, m.Sub) }

// IssuerBinding is an external issuer an organization trusts.
type IssuerBinding struct {
	Issuer  string    `json:"issuer"`
	BoundAt time.Time `json:"bound_at"`
	BoundBy string    `json:"bound_by"`
}

// ServiceAccount is a service account; its token is never stored.
type ServiceAccount struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	Revoked     bool       `json:"revoked"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	TokenID     string     `json:"-"`
}

// Bot is a bot as its organization sees it.
type Bot struct {
	ID           string      `json:"id"`
	Name         string      `json:"name"`
	Instructions string      `json:"instructions"`
	Grants       bots.Grants `json:"grants"`
	Archived     bool        `json:"archived"`
	CreatedBy    string      `json:"created_by"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	// Version is the bot stream's version, usable for optimistic updates.
	Version uint64 `json:"version"`
}

// Page asks for up to Limit records after the cursor After (exclusive).
type Page struct {
	After string
	Limit int
}

// DefaultPageLimit and MaxPageLimit bound every list page of every read
// model and adapter; PageLimit applies them.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// PageLimit returns the number of records a page asking for n returns:
// DefaultPageLimit when n is not positive, at most MaxPageLimit.
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultPageLimit
	case n > MaxPageLimit:
		return MaxPageLimit
	}
	return n
}

// AuditQuery filters an organization's events.
type AuditQuery struct {
	Types         []string
	Stream        string
	Actor         string
	CorrelationID string
	// Since, when set, keeps only events that occurred at or after it.
	Since time.Time
	// After is an AuditEvent.Sequence: only events numbered after it.
	After uint64
	Limit int
}

// TenancyModel is the read model of organizations, members and service
// accounts. Reads take the caller's scope; writes take the event's scope.
type TenancyModel interface {
	Org(ctx context.Context, scope access.Scope) (Org, error)
	// Member returns the member sub of issuer ("" for the built-in one).
	Member(ctx context.Context, scope access.Scope, issuer, sub string) (Member, error)
	// Members lists members in the order of their Key, page.After being a Key.
	Members(ctx context.Context, scope access.Scope, page Page) ([]Member, error)
	ServiceAccount(ctx context.Context, scope access.Scope, id string) (ServiceAccount, error)
	ServiceAccounts(ctx context.Context, scope access.Scope, page Page) ([]ServiceAccount, error)

	// Issuer returns one bound issuer, Issuers all of them (at most
	// tenancy.MaxBoundIssuers) in byte order.
	Issuer(ctx context.Context, scope access.Scope, issuer string) (IssuerBinding, error)
	Issuers(ctx context.Context, scope access.Scope) ([]IssuerBinding, error)

	PutOrg(ctx context.Context, scope access.Scope, org Org) error
	PutMember(ctx context.Context, scope access.Scope, m Member) error
	DeleteMember(ctx context.Context, scope access.Scope, issuer, sub string) error
	PutServiceAccount(ctx context.Context, scope access.Scope, sa ServiceAccount) error
	PutIssuer(ctx context.Context, scope access.Scope, b IssuerBinding) error
	DeleteIssuer(ctx context.Context, scope access.Scope, issuer string) error
	// PurgeOrg drops the organization's members, service accounts and
	// issuers; its own record stays (see closed.go).
	OrgPurger
}

// BotModel is the read model of bots.
type BotModel interface {
	Bot(ctx context.Context, scope access.Scope, id string) (Bot, error)
	Bots(ctx context.Context, scope access.Scope, page Page) ([]Bot, error)
	PutBot(ctx context.Context, scope access.Scope, b Bot) error
	// PurgeOrg drops every bot of the organization.
	OrgPurger
}

// AuditModel is the per-organization index of the log for auditors.
type AuditModel interface {
	// Events returns the organization's events matching q, in log order.
	Events(ctx context.Context, scope access.Scope, q AuditQuery) ([]AuditEvent, error)
	// Add indexes env as the organization's next event, numbered one past
	// the last. An event at or before the last indexed position is already
	// there (a redelivery) and changes nothing, so numbers stay gapless.
	Add(ctx context.Context, scope access.Scope, env eventstore.Envelope) error
	// RedactOrg keeps the organization's events but not their content
	// (see closed.go).
	AuditRedactor
	// Narratives lists the organization's narratives, one per correlation
	// id, newest first (by the sequence of their first event), those
	// matching q: a step by q.Actor, a step of q.Type, a step on q.Stream,
	// the first event in [q.Since, q.Until), the first event's sequence
	// below q.After when it is set.
	Narratives(ctx context.Context, scope access.Scope, q NarrativeQuery) ([]NarrativeRow, error)
}

// ReadModels are the read models of every bounded context on one adapter
// (package memory or package postgres), as the adapter lists them once
// (memory.Models.ReadModels, postgres.Store.ReadModels): what the
// projections write and the queries read. A new context adds its models
// here and to each adapter.
type ReadModels struct {
	Tenancy       TenancyModel
	Bots          BotModel
	Audit         AuditModel
	Knowledge     KnowledgeModel
	Chunks        ChunkModel
	Conversations ConversationModel
	DataSources   DataSourceModel
	Analytics     AnalyticsModel
	Jobs          JobModel
}
