package projections

import (
	"fmt"
	"strings"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// stepFormat tells one event of a known type. It gets the payload with its
// content fields empty (Narrator.recordOnly), so it can only say what the
// record says.
type stepFormat func(env eventstore.Envelope, e domain.Event, s *Story)

// on adapts a formatter of one event type.
func on[E any](f func(env eventstore.Envelope, e *E, s *Story)) stepFormat {
	return func(env eventstore.Envelope, ev domain.Event, s *Story) {
		if e, ok := any(ev).(*E); ok {
			f(env, e, s)
		}
	}
}

// stepFormats is the one table of summaries, by event type. Every type the
// registry knows has an entry (TestEveryEventTypeHasANarrativeFormat).
func stepFormats() map[string]stepFormat {
	by := func(env eventstore.Envelope) string { return actorName(env.Actor) }
	entity := func(env eventstore.Envelope) string { return env.Stream.EntityID }
	return map[string]stepFormat{
		// Organizations, members, service accounts, issuers.
		"OrganizationCreated": on(func(env eventstore.Envelope, e *tenancy.OrganizationCreated, s *Story) {
			s.Touch(ResourceMember, e.OwnerSub)
			s.Summary = fmt.Sprintf("%s created organization %q with owner %s", by(env), e.Name, e.OwnerSub)
		}),
		"OrganizationRenamed": on(func(env eventstore.Envelope, e *tenancy.OrganizationRenamed, s *Story) {
			s.Summary = fmt.Sprintf("%s renamed the organization to %q", by(env), e.Name)
		}),
		"OrganizationClosed": on(func(env eventstore.Envelope, _ *tenancy.OrganizationClosed, s *Story) {
			s.Summary = fmt.Sprintf("%s closed the organization", by(env))
		}),
		"MemberAdded": on(func(env eventstore.Envelope, e *tenancy.MemberAdded, s *Story) {
			s.Touch(ResourceMember, memberName(e.Issuer, e.Sub))
			s.Detail("roles", e.Roles)
			s.Summary = fmt.Sprintf("%s added member %s as %s", by(env), memberName(e.Issuer, e.Sub), strings.Join(e.Roles, ", "))
		}),
		"MemberRolesChanged": on(func(env eventstore.Envelope, e *tenancy.MemberRolesChanged, s *Story) {
			s.Touch(ResourceMember, memberName(e.Issuer, e.Sub))
			s.Detail("roles", e.Roles)
			s.Summary = fmt.Sprintf("%s changed the roles of %s to %s", by(env), memberName(e.Issuer, e.Sub), strings.Join(e.Roles, ", "))
		}),
		"MemberRemoved": on(func(env eventstore.Envelope, e *tenancy.MemberRemoved, s *Story) {
			s.Touch(ResourceMember, memberName(e.Issuer, e.Sub))
			s.Summary = fmt.Sprintf("%s removed member %s", by(env), memberName(e.Issuer, e.Sub))
		}),
		"ServiceAccountCreated": on(func(env eventstore.Envelope, e *tenancy.ServiceAccountCreated, s *Story) {
			s.Touch(ResourceServiceAcct, e.ID)
			s.Detail("permissions", e.Permissions)
			s.Summary = fmt.Sprintf("%s created service account %s (%q) with %s", by(env), e.ID, e.Name, strings.Join(e.Permissions, ", "))
		}),
		"ServiceAccountRevoked": on(func(env eventstore.Envelope, e *tenancy.ServiceAccountRevoked, s *Story) {
			s.Touch(ResourceServiceAcct, e.ID)
			s.Summary = fmt.Sprintf("%s revoked service account %s", by(env), e.ID)
		}),
		"ServiceAccountReassigned": on(func(env eventstore.Envelope, e *tenancy.ServiceAccountReassigned, s *Story) {
			s.Touch(ResourceServiceAcct, e.ID)
			s.Summary = fmt.Sprintf("%s made %s answer to %s instead of %s", by(env), e.ID, e.CreatedBy, e.PreviousCreatedBy)
		}),
		"IssuerBound": on(func(env eventstore.Envelope, e *tenancy.IssuerBound, s *Story) {
			s.Summary = fmt.Sprintf("%s bound issuer %s", by(env), e.Issuer)
		}),
		"IssuerUnbound": on(func(env eventstore.Envelope, e *tenancy.IssuerUnbound, s *Story) {
			s.Summary = fmt.Sprintf("%s unbound issuer %s", by(env), e.Issuer)
		}),
		"OrganizationQuotasSet": on(func(env eventstore.Envelope, _ *tenancy.OrganizationQuotasSet, s *Story) {
			s.Summary = fmt.Sprintf("%s set the organization's quotas", by(env))
		}),

		// Bots.
		"BotCreated": on(func(env eventstore.Envelope, e *bots.BotCreated, s *Story) {
			touchGrants(s, e.Grants)
			s.Summary = fmt.Sprintf("%s created bot %s (%q) with tools %s", by(env), e.ID, e.Name, list(e.Grants.Tools))
		}),
		"BotUpdated": on(func(env eventstore.Envelope, e *bots.BotUpdated, s *Story) {
			changed := []string{}
			if e.Name != nil {
				changed = append(changed, "name")
			}
			if e.Instructions != nil {
				changed = append(changed, "instructions")
			}
			if e.Grants != nil {
				changed = append(changed, "grants")
				touchGrants(s, *e.Grants)
			}
			s.Summary = fmt.Sprintf("%s changed the %s of bot %s", by(env), list(changed), entity(env))
		}),
		"BotArchived": on(func(env eventstore.Envelope, _ *bots.BotArchived, s *Story) {
			s.Summary = fmt.Sprintf("%s archived bot %s", by(env), entity(env))
		}),

		// Knowledge bases, documents, searches.
		"KnowledgeBaseCreated": on(func(env eventstore.Envelope, e *knowledge.KnowledgeBaseCreated, s *Story) {
			s.Detail("embedding_model", e.EmbeddingModel)
			s.Summary = fmt.Sprintf("%s created knowledge base %s (%q)", by(env), e.ID, e.Name)
		}),
		"KnowledgeBaseUpdated": on(func(env eventstore.Envelope, _ *knowledge.KnowledgeBaseUpdated, s *Story) {
			s.Summary = fmt.Sprintf("%s updated knowledge base %s", by(env), entity(env))
		}),
		"KnowledgeBaseGrantsSet": on(func(env eventstore.Envelope, e *knowledge.KnowledgeBaseGrantsSet, s *Story) {
			s.Summary = fmt.Sprintf("%s set %d grants on knowledge base %s", by(env), len(e.Grants), entity(env))
		}),
		"KnowledgeBaseArchived": on(func(env eventstore.Envelope, _ *knowledge.KnowledgeBaseArchived, s *Story) {
			s.Summary = fmt.Sprintf("%s archived knowledge base %s", by(env), entity(env))
		}),
		"DocumentAdded": on(func(env eventstore.Envelope, e *knowledge.DocumentAdded, s *Story) {
			s.Touch(ResourceKnowledgeBase, e.KnowledgeBaseID)
			s.Detail("content_sha256", e.ContentHash)
			s.Detail("content_type", e.ContentType)
			s.Summary = fmt.Sprintf("%s added document %s (%s) to knowledge base %s", by(env), e.ID, e.ContentType, e.KnowledgeBaseID)
		}),
		"DocumentReplaced": on(func(env eventstore.Envelope, e *knowledge.DocumentReplaced, s *Story) {
			s.Detail("content_sha256", e.ContentHash)
			s.Summary = fmt.Sprintf("%s replaced document %s with version %d", by(env), entity(env), e.Version)
		}),
		"DocumentChunked": on(func(env eventstore.Envelope, e *knowledge.DocumentChunked, s *Story) {
			s.Touch(ResourceKnowledgeBase, e.KnowledgeBaseID)
			ids := make([]string, 0, len(e.Chunks))
			for _, c := range e.Chunks {
				ids = append(ids, c.ID)
			}
			s.Touch(ResourceChunk, ids...)
			s.Detail("chunk_ids", ids)
			s.Summary = fmt.Sprintf("%s cut version %d of document %s into %d chunks", by(env), e.Version, entity(env), len(e.Chunks))
		}),
		"DocumentIngestionFailed": on(func(env eventstore.Envelope, e *knowledge.DocumentIngestionFailed, s *Story) {
			s.Detail("reason", e.Reason)
			s.Summary = fmt.Sprintf("ingestion of version %d of document %s failed: %s", e.Version, entity(env), e.Reason)
		}),
		"DocumentDeleted": on(func(env eventstore.Envelope, _ *knowledge.DocumentDeleted, s *Story) {
			s.Summary = fmt.Sprintf("%s deleted document %s", by(env), entity(env))
		}),
		"KnowledgeSearched": on(func(env eventstore.Envelope, e *knowledge.KnowledgeSearched, s *Story) {
			s.Touch(ResourceKnowledgeBase, e.KnowledgeBaseIDs...)
			chunks := make([]string, 0, len(e.Hits))
			for _, h := range e.Hits {
				s.Touch(ResourceDocument, h.DocumentID)
				chunks = append(chunks, h.ChunkID)
			}
			s.Touch(ResourceChunk, chunks...)
			s.Detail("chunk_ids", chunks)
			if e.Refused != "" {
				s.Detail("refused", e.Refused)
				s.Summary = fmt.Sprintf("%s searched; refused: %s", by(env), e.Refused)
				return
			}
			s.Summary = fmt.Sprintf("%s searched %d knowledge bases; %d chunks came back", by(env), len(e.KnowledgeBaseIDs), len(e.Hits))
		}),

		// Jobs.
		"JobSubmitted": on(func(env eventstore.Envelope, e *jobs.JobSubmitted, s *Story) {
			if sub, err := eventstore.ParseStreamName(e.Subject); err == nil {
				if kind, ok := streamResources()[sub.Category]; ok {
					s.Touch(kind, sub.EntityID)
				}
			}
			s.Detail("kind", e.Kind)
			s.Detail("trigger_id", e.TriggerID)
			s.Summary = fmt.Sprintf("%s submitted job %s (%s) on %s", by(env), e.ID, e.Kind, e.Subject)
		}),
		"JobStarted": on(func(env eventstore.Envelope, e *jobs.JobStarted, s *Story) {
			s.Summary = fmt.Sprintf("job %s started (attempt %d)", entity(env), e.Attempt)
		}),
		"JobSucceeded": on(func(env eventstore.Envelope, e *jobs.JobSucceeded, s *Story) {
			s.Detail("items", e.Items)
			s.Summary = fmt.Sprintf("job %s succeeded: %s", entity(env), e.Result)
		}),
		"JobFailed": on(func(env eventstore.Envelope, e *jobs.JobFailed, s *Story) {
			s.Summary = fmt.Sprintf("job %s failed: %s", entity(env), e.Reason)
		}),
		"JobCancelled": on(func(env eventstore.Envelope, e *jobs.JobCancelled, s *Story) {
			s.Summary = fmt.Sprintf("job %s cancelled: %s", entity(env), e.Reason)
		}),

		// Conversations and bot turns.
		"ConversationStarted": on(func(env eventstore.Envelope, e *conversations.ConversationStarted, s *Story) {
			s.Touch(ResourceBot, e.BotID)
			s.Summary = fmt.Sprintf("%s started conversation %s with bot %s", by(env), e.ID, e.BotID)
		}),
		"ConversationArchived": on(func(env eventstore.Envelope, _ *conversations.ConversationArchived, s *Story) {
			s.Summary = fmt.Sprintf("%s archived conversation %s", by(env), entity(env))
		}),
		"TurnStarted": on(func(env eventstore.Envelope, e *conversations.TurnStarted, s *Story) {
			s.Detail("turn_id", e.TurnID)
			s.Detail("question_sha256", e.ContentSHA256)
			s.Summary = fmt.Sprintf("%s asked a question (%d bytes) in conversation %s", by(env), e.ContentSize, entity(env))
		}),
		"ToolCallDecided": on(func(env eventstore.Envelope, e *conversations.ToolCallDecided, s *Story) {
			s.Touch(ResourceBot, e.BotID)
			s.Detail("turn_id", e.TurnID)
			s.Detail("call_id", e.CallID)
			s.Detail("tool", e.Tool)
			s.Detail("arguments_sha256", e.ArgumentsSHA256)
			s.Detail("effective_permissions", e.EffectivePermissions)
			s.Detail("allowed", e.Allowed)
			verdict := "allowed"
			if !e.Allowed {
				verdict = "denied"
			}
			s.Summary = fmt.Sprintf("bot %s asked for tool %s: %s (%s)", e.BotID, e.Tool, verdict, e.Reason)
		}),
		"ToolCallCompleted": on(func(env eventstore.Envelope, e *conversations.ToolCallCompleted, s *Story) {
			s.Touch(ResourceKnowledgeBase, e.KnowledgeBaseIDs...)
			s.Touch(ResourceDocument, e.DocumentIDs...)
			s.Touch(ResourceChunk, e.ChunkIDs...)
			s.Touch(ResourceBot, e.BotIDs...)
			s.Touch(ResourceDataSource, e.DataSourceIDs...)
			s.Touch(ResourceAnalyticsJob, e.AnalyticsJobIDs...)
			s.Detail("turn_id", e.TurnID)
			s.Detail("call_id", e.CallID)
			s.Detail("tool", e.Tool)
			s.Detail("status", e.Status)
			s.Detail("chunk_ids", e.ChunkIDs)
			s.Detail("row_count", e.RowCount)
			s.Detail("result_size", e.ResultSize)
			s.Detail("result_sha256", e.ResultSHA256)
			s.Detail("error", e.Error)
			s.Summary = fmt.Sprintf("tool %s %s: %s", e.Tool, e.Status, e.Summary)
		}),
		"AnswerRecorded": on(func(env eventstore.Envelope, e *conversations.AnswerRecorded, s *Story) {
			chunks := make([]string, 0, len(e.Citations))
			for _, c := range e.Citations {
				s.Touch(ResourceDocument, c.DocumentID)
				chunks = append(chunks, c.ChunkID)
			}
			s.Touch(ResourceChunk, chunks...)
			s.Detail("turn_id", e.TurnID)
			s.Detail("model", e.Model)
			s.Detail("answer_sha256", e.ContentSHA256)
			s.Detail("chunk_ids", chunks)
			s.Detail("prompt_tokens", e.PromptTokens)
			s.Detail("completion_tokens", e.CompletionTokens)
			s.Summary = fmt.Sprintf("%s answered with %d citations (model %s)", by(env), len(e.Citations), e.Model)
		}),
		"TurnFailed": on(func(env eventstore.Envelope, e *conversations.TurnFailed, s *Story) {
			s.Detail("turn_id", e.TurnID)
			s.Summary = fmt.Sprintf("turn %s failed: %s", e.TurnID, e.Reason)
		}),
		"TurnCancelled": on(func(env eventstore.Envelope, e *conversations.TurnCancelled, s *Story) {
			s.Detail("turn_id", e.TurnID)
			s.Summary = fmt.Sprintf("turn %s cancelled: %s", e.TurnID, e.Reason)
		}),

		// Data sources.
		"DataSourceCreated": on(func(env eventstore.Envelope, e *datasources.DataSourceCreated, s *Story) {
			s.Summary = fmt.Sprintf("%s created %s data source %s (%q) with %d allowed tables", by(env), e.Kind, e.ID, e.Name, len(e.AllowedTables))
		}),
		"DataSourceUpdated": on(func(env eventstore.Envelope, _ *datasources.DataSourceUpdated, s *Story) {
			s.Summary = fmt.Sprintf("%s updated data source %s", by(env), entity(env))
		}),
		"DataSourceGrantsSet": on(func(env eventstore.Envelope, e *datasources.DataSourceGrantsSet, s *Story) {
			s.Summary = fmt.Sprintf("%s set %d grants on data source %s", by(env), len(e.Grants), entity(env))
		}),
		"DataSourceTested": on(func(env eventstore.Envelope, e *datasources.DataSourceTested, s *Story) {
			s.Detail("ok", e.OK)
			s.Detail("error", e.Error)
			if e.OK {
				s.Summary = fmt.Sprintf("%s tested data source %s: connected, %d tables", by(env), entity(env), len(e.Schema.Tables))
				return
			}
			s.Summary = fmt.Sprintf("%s tested data source %s: %s", by(env), entity(env), e.Error)
		}),
		"DataSourceDeleted": on(func(env eventstore.Envelope, _ *datasources.DataSourceDeleted, s *Story) {
			s.Summary = fmt.Sprintf("%s deleted data source %s", by(env), entity(env))
		}),

		// Analytics jobs.
		"AnalyticsJobSubmitted": on(func(env eventstore.Envelope, e *analytics.AnalyticsJobSubmitted, s *Story) {
			s.Touch(ResourceDataSource, e.DataSourceID)
			s.Touch(ResourceBot, e.BotID)
			s.Detail("sql", e.SQL)
			s.Detail("requested_by", e.RequestedBy)
			what := "a question"
			if e.SQL != "" {
				what = "SQL"
			}
			s.Summary = fmt.Sprintf("%s submitted analytics job %s: %s on data source %s", by(env), e.ID, what, e.DataSourceID)
		}),
		"AnalyticsJobStarted": on(func(env eventstore.Envelope, e *analytics.AnalyticsJobStarted, s *Story) {
			s.Summary = fmt.Sprintf("analytics job %s started (attempt %d)", entity(env), e.Attempt)
		}),
		"AnalyticsQueryPlanned": on(func(env eventstore.Envelope, e *analytics.AnalyticsQueryPlanned, s *Story) {
			s.Detail("sql", e.SQL)
			s.Detail("translator", e.Translator)
			s.Detail("tables", e.Tables)
			s.Summary = fmt.Sprintf("analytics job %s planned SQL over %s (%s)", entity(env), list(e.Tables), e.Translator)
		}),
		"AnalyticsResultPage": on(func(env eventstore.Envelope, e *analytics.AnalyticsResultPage, s *Story) {
			s.Detail("page", e.Page)
			s.Summary = fmt.Sprintf("analytics job %s recorded result page %d", entity(env), e.Page)
		}),
		"AnalyticsJobSucceeded": on(func(env eventstore.Envelope, e *analytics.AnalyticsJobSucceeded, s *Story) {
			s.Detail("row_count", e.RowCount)
			s.Detail("bytes", e.Bytes)
			s.Detail("result_sha256", e.SHA256)
			s.Detail("truncated", e.Truncated)
			s.Summary = fmt.Sprintf("analytics job %s returned %d rows (%d bytes)", entity(env), e.RowCount, e.Bytes)
		}),
		"AnalyticsJobFailed": on(func(env eventstore.Envelope, e *analytics.AnalyticsJobFailed, s *Story) {
			s.Detail("stage", e.Stage)
			s.Detail("sql", e.SQL)
			s.Summary = fmt.Sprintf("analytics job %s failed at %s: %s", entity(env), e.Stage, e.Reason)
		}),
		"AnalyticsJobCancelRequested": on(func(env eventstore.Envelope, e *analytics.AnalyticsJobCancelRequested, s *Story) {
			s.Summary = fmt.Sprintf("%s asked to cancel analytics job %s", e.By, entity(env))
		}),
		"AnalyticsJobCancelled": on(func(env eventstore.Envelope, e *analytics.AnalyticsJobCancelled, s *Story) {
			s.Summary = fmt.Sprintf("analytics job %s cancelled: %s", entity(env), e.Reason)
		}),

		// The security record and idempotency.
		"AccessDenied": on(func(env eventstore.Envelope, e *events.AccessDenied, s *Story) {
			s.Detail("permission", e.Permission)
			s.Detail("resource", e.Resource)
			s.Detail("path", e.Path)
			// The resource and path are details: they say what the caller
			// asked for, which may name anything, and stay out of the line.
			s.Summary = fmt.Sprintf("%s was denied %s: %s", by(env), e.Action, e.Reason)
		}),
		"AccessDenialsCoalesced": on(func(env eventstore.Envelope, e *events.AccessDenialsCoalesced, s *Story) {
			s.Detail("count", e.Count)
			s.Summary = fmt.Sprintf("%s was denied %s %d more times: %s", by(env), e.Action, e.Count, e.Reason)
		}),
		"AuthenticationDenied": on(func(env eventstore.Envelope, e *events.AuthenticationDenied, s *Story) {
			s.Detail("path", e.Path)
			s.Summary = fmt.Sprintf("authentication refused for a %s request: %s", e.Method, e.Reason)
		}),
		"AuditContentRead": on(func(env eventstore.Envelope, e *events.AuditContentRead, s *Story) {
			s.Summary = fmt.Sprintf("%s read %d content fields of %d audit events", by(env), e.ContentFields, e.Events)
		}),
		"IdempotentResponseRecorded": on(func(env eventstore.Envelope, e *events.IdempotentResponseRecorded, s *Story) {
			s.Detail("path", e.Path)
			s.Summary = fmt.Sprintf("the response %d to a %s was kept for its Idempotency-Key", e.Status, e.Method)
		}),
	}
}

func touchGrants(s *Story, g bots.Grants) {
	s.Touch(ResourceKnowledgeBase, g.KnowledgeBases...)
	s.Touch(ResourceDataSource, g.DataSources...)
	s.Detail("tools", g.Tools)
}

func memberName(issuer, sub string) string {
	if issuer == "" {
		return sub
	}
	return issuer + "|" + sub
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
