package httpapi

import (
	"context"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/projections"
)

// Application is every use case the HTTP surface calls, grouped as the
// write side's commands and the read side's queries. Each field is an
// interface declared here, holding only what the routes call; app fills
// them with the commands handlers and the projections query services.
type Application struct {
	Commands Commands
	Queries  Queries
	// Runner runs bot turns: a use case that reads and writes.
	Runner BotRunner
}

// Commands are the write use cases, one interface per bounded context.
type Commands struct {
	Security SecurityRecorder
	// Idempotency keeps idempotent responses in the log; nil keeps them
	// in memory only.
	Idempotency IdempotencyRecords
	Tenancy     TenancyCommands
	Bots        BotCommands
	Knowledge   KnowledgeCommands
	// Conversations start and archive conversations with bots.
	Conversations ConversationCommands
	// DataSources change and test data sources.
	DataSources DataSourceCommands
	// Analytics submit and cancel analytics jobs.
	Analytics AnalyticsCommands
}

// Queries are the read use cases, one interface per bounded context.
type Queries struct {
	Tenancy   TenancyQueries
	Bots      BotQueries
	Knowledge KnowledgeQueries
	Audit     AuditQueries
	// Stories tell whole requests (narratives) and export the record.
	Stories AuditStoryQueries
	// Conversations read conversations with bots.
	Conversations ConversationQueries
	// DataSources read data sources.
	DataSources DataSourceQueries
	// Analytics read analytics jobs and their results.
	Analytics AnalyticsQueries
	// AuditChain reads checkpoints and verifies the organization's chain.
	AuditChain AuditChainQueries
	// AccessReview answers who could do what at a past moment.
	AccessReview AccessReview
	// Jobs read the processes' jobs.
	Jobs JobQueries
}

// SecurityRecorder records refused authentications in the security stream.
type SecurityRecorder interface {
	RecordAuthenticationDenial(ctx context.Context, orgID string, denied *events.AuthenticationDenied) error
}

// TenancyCommands change organizations, members and service accounts.
type TenancyCommands interface {
	CreateOrg(ctx context.Context, who access.Principal, name, ownerSub string) (commands.OrgCreated, error)
	// CloseOrg closes an organization and destroys its data key.
	CloseOrg(ctx context.Context, who access.Principal, orgID, confirm string) (commands.Result, error)
	AddMember(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role) (commands.MemberChanged, error)
	ChangeMemberRoles(ctx context.Context, who access.Principal, member tenancy.MemberID, roles []access.Role) (commands.MemberChanged, error)
	RemoveMember(ctx context.Context, who access.Principal, member tenancy.MemberID) (commands.Result, error)
	BindIssuer(ctx context.Context, who access.Principal, trust commands.IssuerTrust, issuer string) (commands.Result, error)
	UnbindIssuer(ctx context.Context, who access.Principal, issuer string) (commands.Result, error)
	SetOrganizationQuotas(ctx context.Context, who access.Principal, orgID string, q tenancy.QuotaOverrides) (commands.Result, error)
	CreateServiceAccount(ctx context.Context, who access.Principal, name string, perms access.PermissionSet, ttl time.Duration) (commands.ServiceAccountCreated, error)
	RevokeServiceAccount(ctx context.Context, who access.Principal, id string) (commands.Result, error)
	ReassignServiceAccount(ctx context.Context, who access.Principal, id string, to tenancy.MemberID) (commands.Result, error)
}

// BotCommands change bots.
type BotCommands interface {
	CreateBot(ctx context.Context, who access.Principal, name, instructions string, grants bots.Grants) (commands.BotCreated, error)
	UpdateBot(ctx context.Context, who access.Principal, id string, name, instructions *string, grants *bots.Grants) (commands.Result, error)
	ArchiveBot(ctx context.Context, who access.Principal, id string) (commands.Result, error)
}

// KnowledgeCommands change knowledge bases and their documents.
type KnowledgeCommands interface {
	CreateKnowledgeBase(ctx context.Context, who access.Principal, name, description string) (commands.KnowledgeBaseCreated, error)
	UpdateKnowledgeBase(ctx context.Context, who access.Principal, kbID string, name, description *string) (commands.Result, error)
	SetKnowledgeBaseGrants(ctx context.Context, who access.Principal, kbID string, grants []knowledge.Grant) (commands.Result, error)
	ArchiveKnowledgeBase(ctx context.Context, who access.Principal, kbID string) (commands.Result, error)
	AddDocument(ctx context.Context, who access.Principal, kbID string, in commands.DocumentInput) (commands.DocumentAdded, error)
	ReplaceDocument(ctx context.Context, who access.Principal, kbID, docID string, in commands.DocumentInput) (commands.Result, error)
	DeleteDocument(ctx context.Context, who access.Principal, kbID, docID string) (commands.Result, error)
}

// TenancyQueries read the caller's organization, members and service
// accounts.
type TenancyQueries interface {
	Org(ctx context.Context, who access.Principal) (projections.Org, error)
	Members(ctx context.Context, who access.Principal, page projections.Page) ([]projections.Member, error)
	Member(ctx context.Context, who access.Principal, issuer, sub string) (projections.Member, error)
	Issuers(ctx context.Context, who access.Principal) ([]projections.IssuerBinding, error)
	ServiceAccounts(ctx context.Context, who access.Principal, page projections.Page) ([]projections.ServiceAccount, error)
}

// BotQueries read bots.
type BotQueries interface {
	Bots(ctx context.Context, who access.Principal, page projections.Page, includeArchived bool) ([]projections.Bot, error)
	Bot(ctx context.Context, who access.Principal, id string) (projections.Bot, error)
	ManagedBot(ctx context.Context, who access.Principal, id string) (projections.Bot, error)
}

// KnowledgeQueries read knowledge bases and documents, and search them.
type KnowledgeQueries interface {
	KnowledgeBases(ctx context.Context, who access.Principal, page projections.Page, includeArchived bool) ([]projections.KnowledgeBase, error)
	KnowledgeBase(ctx context.Context, who access.Principal, id string) (projections.KnowledgeBase, error)
	ManagedKnowledgeBase(ctx context.Context, who access.Principal, id string) (projections.KnowledgeBase, error)
	Documents(ctx context.Context, who access.Principal, kbID string, page projections.Page) ([]projections.Document, error)
	Document(ctx context.Context, who access.Principal, kbID, docID string) (projections.Document, error)
	WrittenDocument(ctx context.Context, who access.Principal, kbID, docID string) (projections.Document, error)
	Search(ctx context.Context, who access.Principal, req projections.SearchRequest) (projections.SearchAnswer, error)
}

// AuditQueries read the caller's organization's events.
type AuditQueries interface {
	AuditEvents(ctx context.Context, who access.Principal, q projections.AuditQuery) ([]projections.AuditEvent, error)
}

// AuditStoryQueries read the caller's organization's record as stories:
// one request's narrative, the list of recent ones, and the export.
type AuditStoryQueries interface {
	Narrative(ctx context.Context, who access.Principal, correlationID string) (projections.Narrative, error)
	Narratives(ctx context.Context, who access.Principal, q projections.NarrativeQuery) ([]projections.NarrativeSummary, error)
	Export(ctx context.Context, who access.Principal, since time.Time, each func([]projections.AuditEvent) error) error
	Narrator() *projections.Narrator
}

// DataSourceCommands change and test data sources.
type DataSourceCommands interface {
	Create(ctx context.Context, who access.Principal, in commands.DataSourceInput) (commands.DataSourceCreated, error)
	Update(ctx context.Context, who access.Principal, id string, name *string, conn *commands.ConnectionInput, tables *[]datasources.AllowedTable) (commands.Result, error)
	SetGrants(ctx context.Context, who access.Principal, id string, grants []datasources.Grant) (commands.Result, error)
	Delete(ctx context.Context, who access.Principal, id string) (commands.Result, error)
	Test(ctx context.Context, who access.Principal, id string) (commands.DataSourceTest, error)
}

// JobQueries read the processes' jobs (projections.JobQueries).
type JobQueries interface {
	List(ctx context.Context, who access.Principal, filter projections.JobFilter, page projections.Page) ([]projections.Job, error)
	Get(ctx context.Context, who access.Principal, id string) (projections.Job, error)
}

// DataSourceQueries read the data sources the caller may see.
type DataSourceQueries interface {
	List(ctx context.Context, who access.Principal, page projections.Page) ([]projections.DataSource, error)
	Get(ctx context.Context, who access.Principal, id string) (projections.DataSource, error)
}
