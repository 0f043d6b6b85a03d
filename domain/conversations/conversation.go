package conversations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/palisadehq/palisade/domain"
)

// Limits of a conversation.
const (
	// MaxMessageLen bounds a question, in bytes.
	MaxMessageLen = 16000
	// MaxRecordedArguments bounds the arguments a ToolCallDecided keeps.
	MaxRecordedArguments = 2048
	// MaxRecordedToolName bounds the unregistered tool name a
	// ToolCallDecided keeps (RequestedTool).
	MaxRecordedToolName = 256
	maxTitleLen         = 200
	// MaxHistory is how many earlier exchanges a turn shows the model.
	MaxHistory = 10
)

// Exchange is one earlier question and its answer.
type Exchange struct {
	Question, Answer string
}

// Conversation is the aggregate that guards one conversation. Build it by
// folding its stream with Apply.
type Conversation struct {
	id            string
	botID         string
	startedBy     string
	startedByKind string
	archived      bool
	// pending holds questions of turns not answered yet, by turn id.
	pending map[string]string
	history []Exchange
}

// History returns the last MaxHistory answered exchanges, oldest first.
func (c *Conversation) History() []Exchange { return c.history }

// Exists reports whether the conversation was started.
func (c *Conversation) Exists() bool { return c.id != "" }

// BotID is the bot the conversation talks to.
func (c *Conversation) BotID() string { return c.botID }

// StartedBy is the subject (and its kind) that owns the conversation.
func (c *Conversation) StartedBy() (subject, kind string) { return c.startedBy, c.startedByKind }

// Archived reports whether the conversation was archived.
func (c *Conversation) Archived() bool { return c.archived }

// Apply folds one recorded event into the aggregate.
func (c *Conversation) Apply(e domain.Event) {
	switch e := e.(type) {
	case *ConversationStarted:
		c.id, c.botID, c.startedBy, c.startedByKind = e.ID, e.BotID, e.StartedBy, e.StartedByKind
	case *ConversationArchived:
		c.archived = true
	case *TurnStarted:
		if c.pending == nil {
			c.pending = map[string]string{}
		}
		c.pending[e.TurnID] = e.Content
	case *AnswerRecorded:
		if q, ok := c.pending[e.TurnID]; ok {
			delete(c.pending, e.TurnID)
			c.history = append(c.history, Exchange{Question: q, Answer: e.Content})
			if len(c.history) > MaxHistory {
				c.history = c.history[len(c.history)-MaxHistory:]
			}
		}
	case *TurnFailed:
		delete(c.pending, e.TurnID)
	case *TurnCancelled:
		delete(c.pending, e.TurnID)
	}
}

// Start decides a new conversation of subject (of kind) with a bot.
func Start(id, botID, title, subject, kind string) ([]domain.Event, error) {
	if botID == "" {
		return nil, fmt.Errorf("%w: bot_id is required", domain.ErrInvalid)
	}
	if title != "" {
		if err := domain.CheckText("title", title, maxTitleLen); err != nil {
			return nil, err
		}
	}
	return []domain.Event{&ConversationStarted{ID: id, BotID: botID, Title: title, StartedBy: subject, StartedByKind: kind}}, nil
}

// Ask decides the start of a turn.
func (c *Conversation) Ask(turnID, messageID, content string) ([]domain.Event, error) {
	if err := c.mustBeActive(); err != nil {
		return nil, err
	}
	if content == "" {
		return nil, fmt.Errorf("%w: content is required", domain.ErrInvalid)
	}
	if err := domain.CheckText("content", content, MaxMessageLen); err != nil {
		return nil, err
	}
	return []domain.Event{&TurnStarted{TurnID: turnID, MessageID: messageID, Content: content,
		ContentSHA256: SHA256(content), ContentSize: len(content)}}, nil
}

// Archive decides archiving the conversation.
func (c *Conversation) Archive() ([]domain.Event, error) {
	if err := c.mustBeActive(); err != nil {
		return nil, err
	}
	return []domain.Event{&ConversationArchived{}}, nil
}

func (c *Conversation) mustBeActive() error {
	if !c.Exists() {
		return fmt.Errorf("%w: conversation", domain.ErrNotFound)
	}
	if c.archived {
		return &domain.ArchivedError{Resource: "conversation"}
	}
	return nil
}

// SHA256 returns the hex SHA-256 of s.
func SHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// CapArguments returns arguments cut to MaxRecordedArguments bytes (at a
// rune boundary), with their full hash and size.
func CapArguments(arguments []byte) (capped string, sha string, size int) {
	sum := sha256.Sum256(arguments)
	return capBytes(string(arguments), MaxRecordedArguments), hex.EncodeToString(sum[:]), len(arguments)
}

// CapToolName returns name cut to MaxRecordedToolName bytes (at a rune
// boundary).
func CapToolName(name string) string { return capBytes(name, MaxRecordedToolName) }

// capBytes returns s cut to at most n bytes, at a rune boundary.
func capBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
