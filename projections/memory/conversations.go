package memory

import (
	"context"
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Conversations is the memory adapter of projections.ConversationModel.
//
// Its table copies records by assignment: lists drop the messages, so they
// never pay for copying them, and Conversation and PutConversation copy
// the messages themselves (cloneMessages), so no caller shares them with
// what is stored.
type Conversations struct {
	conversations *orgTable[projections.Conversation]
}

var _ projections.ConversationModel = (*Conversations)(nil)

// NewConversations returns an empty conversation read model.
func NewConversations() *Conversations {
	return &Conversations{conversations: newOrgTable[projections.Conversation](nil)}
}

func (c *Conversations) Conversation(_ context.Context, scope access.Scope, id string) (projections.Conversation, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Conversation{}, err
	}
	if conv, ok := c.conversations.get(org, id); ok {
		conv.Messages = cloneMessages(conv.Messages)
		return conv, nil
	}
	return projections.Conversation{}, fmt.Errorf("conversation: %w", domain.ErrNotFound)
}

func (c *Conversations) Conversations(_ context.Context, scope access.Scope, q projections.ConversationQuery) ([]projections.Conversation, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	list := c.conversations.page(org, q.Page, func(conv projections.Conversation) bool {
		return (q.StartedBy == "" || conv.StartedBy == q.StartedBy) &&
			(q.StartedByKind == "" || conv.StartedByKind == q.StartedByKind) &&
			(q.BotID == "" || conv.BotID == q.BotID)
	})
	for i := range list {
		list[i].Messages = nil
	}
	return list, nil
}

func (c *Conversations) PutConversation(_ context.Context, scope access.Scope, conv projections.Conversation) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	conv.Messages = cloneMessages(conv.Messages)
	c.conversations.put(org, conv.ID, conv)
	return nil
}

// cloneMessages copies messages down to their lists, keeping nil and empty
// lists apart.
func cloneMessages(messages []projections.ConversationMessage) []projections.ConversationMessage {
	if messages == nil {
		return nil
	}
	out := make([]projections.ConversationMessage, len(messages))
	for i, m := range messages {
		m.Citations = slices.Clone(m.Citations)
		m.ToolCalls = slices.Clone(m.ToolCalls)
		if m.Usage != nil {
			usage := *m.Usage
			m.Usage = &usage
		}
		out[i] = m
	}
	return out
}
