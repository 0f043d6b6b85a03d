package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/eventstore"
)

// Roles of conversation messages.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Statuses of an assistant message: running until its turn ends, then
// how it ended.
const (
	MessageRunning   = "running"
	MessageAnswered  = "answered"
	MessageFailed    = "failed"
	MessageCancelled = "cancelled"
)

// ToolCallRunning is the status of an allowed tool call until its outcome
// is recorded; then it is conversations.StatusOK or StatusError. A refused
// call is conversations.StatusDenied from the start.
const ToolCallRunning = "running"

// Conversation is a conversation with a bot as its owner sees it. Lists
// leave Messages nil; one conversation read alone carries them all, in the
// order of the log.
type Conversation struct {
	ID            string    `json:"id"`
	BotID         string    `json:"bot_id"`
	Title         string    `json:"title"`
	StartedBy     string    `json:"started_by"`
	StartedByKind string    `json:"started_by_kind"`
	Archived      bool      `json:"archived"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Version is the conversation stream's version of the last event
	// folded in.
	Version  uint64                `json:"-"`
	Messages []ConversationMessage `json:"messages,omitzero"`
}

// ConversationMessage is a question (Role RoleUser) or the answer of its
// turn (RoleAssistant). An assistant message exists from the start of its
// turn, with Status MessageRunning and no ID until the answer is recorded;
// its Citations and ToolCalls are never nil, a user message's always are.
type ConversationMessage struct {
	ID        string                   `json:"id"`
	TurnID    string                   `json:"turn_id"`
	Role      string                   `json:"role"`
	Content   string                   `json:"content"`
	Status    string                   `json:"status,omitempty"`
	Reason    string                   `json:"reason,omitempty"`
	Citations []conversations.Citation `json:"citations,omitzero"`
	ToolCalls []ToolCallView           `json:"tool_calls,omitzero"`
	Model     string                   `json:"model,omitempty"`
	Usage     *TokenUsage              `json:"usage,omitempty"`
	CreatedAt time.Time                `json:"created_at"`
}

// TokenUsage is what answering a turn cost in model tokens.
type TokenUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// ToolCallView is one tool call of a turn: what the model asked (the
// recorded, capped arguments), the decision and the outcome. Reason is the
// decision's reason, or the error of a call that failed.
type ToolCallView struct {
	ID        string `json:"id"`
	Tool      string `json:"tool"`
	Arguments string `json:"arguments"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Summary   string `json:"summary"`
	// BotID is the bot whose model asked; Depth is 0 for the
	// conversation's bot and grows by one per ask_bot.
	BotID string `json:"bot_id"`
	Depth int    `json:"depth"`
}

// ConversationQuery filters a list of conversations; an empty filter
// matches every conversation. Conversations are listed by id.
type ConversationQuery struct {
	StartedBy     string
	StartedByKind string
	BotID         string
	Page          Page
}

// ConversationModel is the read model of conversations. Reads take the
// caller's scope; writes take the event's scope.
type ConversationModel interface {
	// Conversation returns one conversation with its messages.
	Conversation(ctx context.Context, scope access.Scope, id string) (Conversation, error)
	// Conversations lists conversations matching q, without messages.
	Conversations(ctx context.Context, scope access.Scope, q ConversationQuery) ([]Conversation, error)
	// PutConversation stores the whole record, messages included.
	PutConversation(ctx context.Context, scope access.Scope, c Conversation) error
	// PurgeOrg drops every conversation of the organization.
	OrgPurger
}

// ConversationProjection builds the conversation read model.
//
// Each event is folded into its conversation's whole record, whose Version
// says which event of the stream was folded last: an event at or below it
// (a redelivery) changes nothing, so a turn's tool calls and messages are
// never doubled.
func ConversationProjection(m ConversationModel) *consumer.Group {
	p := conversationProjection{m: m}
	return &consumer.Group{Name: "conversations", Kind: consumer.ReadModel, Handlers: []consumer.Handler{
		consumer.On(p.started),
		consumer.On(p.archived),
		consumer.On(p.turnStarted),
		consumer.On(p.toolCallDecided),
		consumer.On(p.toolCallCompleted),
		consumer.On(p.answerRecorded),
		consumer.On(p.turnFailed),
		consumer.On(p.turnCancelled),
		purgeOnClose(m),
	}}
}

// conversationProjection holds the handlers of ConversationProjection.
type conversationProjection struct{ m ConversationModel }

func (p conversationProjection) started(ctx context.Context, env eventstore.Envelope, e *conversations.ConversationStarted) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	return p.m.PutConversation(ctx, scope, Conversation{
		ID: e.ID, BotID: e.BotID, Title: e.Title, StartedBy: e.StartedBy, StartedByKind: e.StartedByKind,
		CreatedAt: env.OccurredAt, UpdatedAt: env.OccurredAt, Version: env.StreamVersion,
	})
}

func (p conversationProjection) archived(ctx context.Context, env eventstore.Envelope, _ *conversations.ConversationArchived) error {
	return p.update(ctx, env, func(c *Conversation) error {
		c.Archived = true
		return nil
	})
}

func (p conversationProjection) turnStarted(ctx context.Context, env eventstore.Envelope, e *conversations.TurnStarted) error {
	return p.update(ctx, env, func(c *Conversation) error {
		c.Messages = append(c.Messages,
			ConversationMessage{ID: e.MessageID, TurnID: e.TurnID, Role: RoleUser, Content: e.Content, CreatedAt: env.OccurredAt},
			ConversationMessage{TurnID: e.TurnID, Role: RoleAssistant, Status: MessageRunning,
				Citations: []conversations.Citation{}, ToolCalls: []ToolCallView{}, CreatedAt: env.OccurredAt})
		return nil
	})
}

func (p conversationProjection) toolCallDecided(ctx context.Context, env eventstore.Envelope, e *conversations.ToolCallDecided) error {
	return p.update(ctx, env, func(c *Conversation) error {
		reply, err := c.reply(e.TurnID)
		if err != nil {
			return err
		}
		status := ToolCallRunning
		if !e.Allowed {
			status = conversations.StatusDenied
		}
		reply.ToolCalls = append(reply.ToolCalls, ToolCallView{
			ID: e.CallID, Tool: e.Tool, Arguments: e.Arguments, Status: status, Reason: e.Reason, BotID: e.BotID, Depth: e.Depth,
		})
		return nil
	})
}

func (p conversationProjection) toolCallCompleted(ctx context.Context, env eventstore.Envelope, e *conversations.ToolCallCompleted) error {
	return p.update(ctx, env, func(c *Conversation) error {
		reply, err := c.reply(e.TurnID)
		if err != nil {
			return err
		}
		call := reply.toolCall(e.CallID)
		if call == nil {
			return fmt.Errorf("conversation %s, turn %s: no tool call %s", c.ID, e.TurnID, e.CallID)
		}
		call.Status, call.Summary = e.Status, e.Summary
		if e.Error != "" {
			call.Reason = e.Error
		}
		return nil
	})
}

func (p conversationProjection) answerRecorded(ctx context.Context, env eventstore.Envelope, e *conversations.AnswerRecorded) error {
	return p.update(ctx, env, func(c *Conversation) error {
		reply, err := c.reply(e.TurnID)
		if err != nil {
			return err
		}
		citations := e.Citations
		if citations == nil {
			citations = []conversations.Citation{}
		}
		reply.ID, reply.Content, reply.Citations, reply.Model = e.MessageID, e.Content, citations, e.Model
		reply.Usage = &TokenUsage{PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens}
		reply.Status, reply.CreatedAt = MessageAnswered, env.OccurredAt
		return nil
	})
}

func (p conversationProjection) turnFailed(ctx context.Context, env eventstore.Envelope, e *conversations.TurnFailed) error {
	return p.endTurn(ctx, env, e.TurnID, MessageFailed, e.Reason)
}

func (p conversationProjection) turnCancelled(ctx context.Context, env eventstore.Envelope, e *conversations.TurnCancelled) error {
	return p.endTurn(ctx, env, e.TurnID, MessageCancelled, e.Reason)
}

// endTurn ends a turn without an answer.
func (p conversationProjection) endTurn(ctx context.Context, env eventstore.Envelope, turnID, status, reason string) error {
	return p.update(ctx, env, func(c *Conversation) error {
		reply, err := c.reply(turnID)
		if err != nil {
			return err
		}
		reply.Status, reply.Reason = status, reason
		// A call the turn ended under has no outcome on record; it is
		// not running any more either.
		for i := range reply.ToolCalls {
			if reply.ToolCalls[i].Status == ToolCallRunning {
				reply.ToolCalls[i].Status = conversations.StatusError
				reply.ToolCalls[i].Reason = "the turn ended before the call completed"
			}
		}
		return nil
	})
}

// update folds one event into the conversation of its stream, unless the
// record already holds it.
func (p conversationProjection) update(ctx context.Context, env eventstore.Envelope, change func(*Conversation) error) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	c, err := p.m.Conversation(ctx, scope, env.Stream.EntityID)
	if err != nil {
		return err
	}
	if env.StreamVersion <= c.Version {
		return nil // redelivered: already folded
	}
	if err := change(&c); err != nil {
		return err
	}
	c.UpdatedAt, c.Version = env.OccurredAt, env.StreamVersion
	return p.m.PutConversation(ctx, scope, c)
}

// reply returns the assistant message of a turn. The log cannot record a
// turn's steps before its start, so a missing turn is a broken log.
func (c *Conversation) reply(turnID string) (*ConversationMessage, error) {
	for i := len(c.Messages) - 1; i >= 0; i-- {
		if m := &c.Messages[i]; m.TurnID == turnID && m.Role == RoleAssistant {
			return m, nil
		}
	}
	return nil, fmt.Errorf("conversation %s: no turn %s", c.ID, turnID)
}

// toolCall returns the call whose outcome is pending under id, or failing
// that the last call of that id (ids are the model's, so a nested bot's
// model may reuse one).
func (m *ConversationMessage) toolCall(id string) *ToolCallView {
	var last *ToolCallView
	for i := len(m.ToolCalls) - 1; i >= 0; i-- {
		call := &m.ToolCalls[i]
		if call.ID != id {
			continue
		}
		if call.Status == ToolCallRunning {
			return call
		}
		if last == nil {
			last = call
		}
	}
	return last
}

// ConversationQueries answers reads of conversations. Everyone sees their
// own conversations; another member's only with conversations:read, and
// one the caller may not see answers exactly like one that does not exist.
type ConversationQueries struct {
	conversations ConversationModel
	denials       DenialRecorder
}

// NewConversationQueries returns the conversation query service; denials
// records refused reads.
func NewConversationQueries(m ConversationModel, denials DenialRecorder) *ConversationQueries {
	return &ConversationQueries{conversations: m, denials: denials}
}

// Conversations lists the caller's own conversations (without messages),
// of one bot when botID is set, by id after page.After.
func (q *ConversationQueries) Conversations(ctx context.Context, who access.Principal, botID string, page Page) ([]Conversation, error) {
	scope, err := authorizeOrg(ctx, q.denials, who, access.BotsRead, "conversations")
	if err != nil {
		return nil, err
	}
	return q.conversations.Conversations(ctx, scope, ConversationQuery{
		StartedBy: who.Subject, StartedByKind: string(who.Kind), BotID: botID, Page: page,
	})
}

// Conversation returns one conversation with its messages: to its owner,
// or to a caller holding conversations:read. Anyone else gets the
// not-found of a conversation that does not exist.
func (q *ConversationQueries) Conversation(ctx context.Context, who access.Principal, id string) (Conversation, error) {
	resource := "conversations/" + id
	scope, err := authorizeOrg(ctx, q.denials, who, access.BotsRead, resource)
	if err != nil {
		return Conversation{}, err
	}
	c, err := q.conversations.Conversation(ctx, scope, id)
	if err != nil {
		return Conversation{}, err
	}
	if c.StartedBy != who.Subject || c.StartedByKind != string(who.Kind) {
		d := access.Decide(who, access.ConversationsRead, access.OrgResource(who.OrgID))
		if !d.Allowed {
			q.denials.RecordDenial(ctx, who, d, resource)
			return Conversation{}, fmt.Errorf("conversation: %w", domain.ErrNotFound)
		}
	}
	if c.Messages == nil {
		c.Messages = []ConversationMessage{} // a conversation read alone always lists its messages
	}
	return c, nil
}
