package app

import (
	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/projections"
)

// Application is every use case of Palisade, built once over the write
// core and the read models: the commands handlers of each bounded context
// and the query services. The HTTP routes call them, and so will bot tools
// and workflow steps, so that each path records the same events.
type Application struct {
	Commands commands.Commands
	Queries  Queries
	// Runner runs bot turns over the commands and queries above.
	Runner *conversation.Runner
}

// Queries are the read side's query services.
type Queries struct {
	// Org answers reads of the organization, its members, service
	// accounts, bots and audit trail.
	Org *projections.Queries
	// Stories answers auditors with narratives of requests and exports.
	Stories *projections.AuditStories
	// Knowledge answers knowledge-base reads and runs searches, recording
	// each through the knowledge commands.
	Knowledge *projections.KnowledgeQueries
	// Conversations answers reads of conversations with bots.
	Conversations *projections.ConversationQueries
	// DataSources answers reads of data sources.
	DataSources *projections.DataSourceQueries
	// Analytics answers reads of analytics jobs and their results (set by
	// Open, beside the analytics process).
	Analytics *projections.AnalyticsQueries
	// AuditChain answers the audit chain's checkpoints and verification
	// (set by Open, beside the chainer).
	AuditChain *chain.Service
	// AccessReview answers who could do what at a past moment, from the
	// log (set by Open, which holds the store).
	AccessReview *accessreview.Service
	// Jobs answers reads of the processes' jobs.
	Jobs *projections.JobQueries
}
