package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
)

// Conversations handles the commands of conversations with bots: starting
// and archiving them, starting a turn, and recording what a turn did. The
// turn itself (the model, the tools) is run by package conversation, which
// records through these handlers.
type Conversations struct {
	p *Pipeline
	// folded keeps conversations as last folded, so that a turn reads
	// only the events since the previous one, not the whole history.
	folded *foldedConversations
}

// NewConversations returns the conversation handlers over p.
func NewConversations(p *Pipeline) *Conversations {
	return &Conversations{p: p, folded: &foldedConversations{entries: map[eventstore.StreamName]*foldedConversation{}}}
}

// maxFoldedConversations bounds the conversations kept folded; past it the
// cache starts over (a conversation is then read whole once).
const maxFoldedConversations = 10_000

type foldedConversations struct {
	mu      sync.Mutex
	entries map[eventstore.StreamName]*foldedConversation
}

// foldedConversation is one conversation folded up to version. Its mutex
// also serializes the turns of the conversation started here.
type foldedConversation struct {
	mu      sync.Mutex
	conv    conversations.Conversation
	version uint64
	exists  bool
}

func (f *foldedConversations) entry(stream eventstore.StreamName) *foldedConversation {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entries[stream]
	if e == nil {
		if len(f.entries) >= maxFoldedConversations {
			f.entries = map[eventstore.StreamName]*foldedConversation{}
		}
		e = &foldedConversation{}
		f.entries[stream] = e
	}
	return e
}

func conversationStream(orgID, id string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(conversations.Category, orgID, id)
}

func newConversation() aggregate { return &conversations.Conversation{} }

func asConversation(a aggregate) *conversations.Conversation { return a.(*conversations.Conversation) }

// BotConfig is a bot's configuration as its stream records it now.
type BotConfig struct {
	ID, Name, Instructions string
	Grants                 bots.Grants
}

// Bot returns the active bot id of org as its stream says now. A missing
// bot (or an id that names no stream) is domain.ErrNotFound; an archived
// one a *domain.ArchivedError.
func (c *Conversations) Bot(ctx context.Context, orgID, id string) (BotConfig, error) {
	return c.p.currentBot(ctx, orgID, id)
}

// currentBot is Conversations.Bot, for every part of the write side that
// re-reads a bot's grants before it acts for the bot.
func (p *Pipeline) currentBot(ctx context.Context, orgID, id string) (BotConfig, error) {
	stream, err := botStream(orgID, id)
	if err != nil {
		return BotConfig{}, fmt.Errorf("%w: bot", domain.ErrNotFound)
	}
	var bot bots.Bot
	if _, _, err := p.load(ctx, stream, &bot); err != nil {
		return BotConfig{}, err
	}
	if !bot.Exists() {
		return BotConfig{}, fmt.Errorf("%w: bot", domain.ErrNotFound)
	}
	if bot.Archived() {
		return BotConfig{}, &domain.ArchivedError{Resource: "bot"}
	}
	return BotConfig{ID: bot.ID(), Name: bot.Name(), Instructions: bot.Instructions(), Grants: bot.Grants()}, nil
}

// ConversationStarted is what starting a conversation returns.
type ConversationStarted struct {
	Result
	Conversation *conversations.ConversationStarted
}

// Start starts a conversation of who with an active bot of its
// organization; who needs bots:run and owns the conversation.
func (c *Conversations) Start(ctx context.Context, who access.Principal, botID, title string) (ConversationStarted, error) {
	p := c.p
	d, err := p.authorize(ctx, who, access.BotsRun, access.OrgResource(who.OrgID), "bots/"+botID)
	if err != nil {
		return ConversationStarted{}, err
	}
	if botID == "" {
		return ConversationStarted{}, fmt.Errorf("%w: bot_id is required", domain.ErrInvalid)
	}
	if _, err := c.Bot(ctx, who.OrgID, botID); err != nil {
		return ConversationStarted{}, err
	}
	id := newResourceID(ctx, who)
	stream, err := conversationStream(who.OrgID, id)
	if err != nil {
		return ConversationStarted{}, err
	}
	res, err := p.create(ctx, who, d, stream, newConversation, func(a aggregate) ([]domain.Event, error) {
		if asConversation(a).Exists() {
			return p.existing(ctx, "conversation")
		}
		return conversations.Start(id, botID, title, who.Subject, string(who.Kind))
	})
	if err != nil {
		return ConversationStarted{}, err
	}
	e, res, err := created[*conversations.ConversationStarted](ctx, p, stream, res)
	if err != nil {
		return ConversationStarted{}, err
	}
	return ConversationStarted{Result: res, Conversation: e}, nil
}

// Archive archives a conversation of who's own.
func (c *Conversations) Archive(ctx context.Context, who access.Principal, id string) (Result, error) {
	p := c.p
	d, err := p.authorize(ctx, who, access.BotsRun, access.OrgResource(who.OrgID), "conversations/"+id)
	if err != nil {
		return Result{}, err
	}
	stream, err := conversationStream(who.OrgID, id)
	if err != nil {
		return Result{}, fmt.Errorf("%w: conversation", domain.ErrNotFound)
	}
	return p.execute(ctx, who, d, stream, newConversation, func(a aggregate) ([]domain.Event, error) {
		conv := asConversation(a)
		if err := ownedBy(conv, who); err != nil {
			return nil, err
		}
		return conv.Archive()
	})
}

// ownedBy makes a conversation of someone else look like one that does
// not exist: its id reveals nothing to other members.
func ownedBy(conv *conversations.Conversation, who access.Principal) error {
	subject, kind := conv.StartedBy()
	if !conv.Exists() || subject != who.Subject || kind != string(who.Kind) {
		return fmt.Errorf("%w: conversation", domain.ErrNotFound)
	}
	return nil
}

// Turn is a started turn: the ids it is recorded under, the bot as it is
// now, and the conversation's earlier exchanges.
type Turn struct {
	Result
	ConversationID, TurnID, MessageID string
	Bot                               BotConfig
	History                           []conversations.Exchange
	// Decision is what allowed who to run the bot.
	Decision access.Decision
}

// BeginTurn records the question of a new turn in a conversation of who's
// own with an active bot.
func (c *Conversations) BeginTurn(ctx context.Context, who access.Principal, conversationID, content string) (Turn, error) {
	p := c.p
	d, err := p.authorize(ctx, who, access.BotsRun, access.OrgResource(who.OrgID), "conversations/"+conversationID)
	if err != nil {
		return Turn{}, err
	}
	stream, err := conversationStream(who.OrgID, conversationID)
	if err != nil {
		return Turn{}, fmt.Errorf("%w: conversation", domain.ErrNotFound)
	}
	turn := Turn{ConversationID: conversationID, TurnID: uuid.Must(uuid.NewV7()).String(),
		MessageID: uuid.Must(uuid.NewV7()).String(), Decision: d}
	e := c.folded.entry(stream)
	e.mu.Lock()
	defer e.mu.Unlock()
	for attempt := 1; ; attempt++ {
		res, err := c.beginTurn(ctx, who, d, stream, e, &turn, content)
		if (errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrConditionFailed)) && attempt <= maxConflictRetries {
			if err := retryBackoff(ctx, attempt); err != nil {
				return Turn{}, err
			}
			continue
		}
		if err != nil {
			return Turn{}, err
		}
		turn.Result = res
		return turn, nil
	}
}

// beginTurn is one try of BeginTurn on the folded conversation e (its
// mutex held): catch up with the stream, decide, append at that version.
func (c *Conversations) beginTurn(ctx context.Context, who access.Principal, d access.Decision, stream eventstore.StreamName,
	e *foldedConversation, turn *Turn, content string) (Result, error) {
	p := c.p
	var err error
	if e.version, e.exists, err = p.loadFrom(ctx, stream, &e.conv, e.version, e.exists); err != nil {
		return Result{}, err
	}
	conv := &e.conv
	if err := ownedBy(conv, who); err != nil {
		return Result{}, err
	}
	bot, err := c.Bot(ctx, who.OrgID, conv.BotID())
	if err != nil {
		return Result{}, err
	}
	turn.Bot, turn.History = bot, slices.Clone(conv.History())
	evs, err := conv.Ask(turn.TurnID, turn.MessageID, content)
	if err != nil {
		return Result{}, err
	}
	release := p.hold(who, d, stream)
	res, at, err := p.appendDecided(ctx, who, d, stream, conv, eventstore.Exact(e.version), evs)
	release()
	if err != nil {
		return Result{}, err
	}
	// The events just appended are read back with the next turn's catch-up:
	// folding them here would skip them in the stream's count.
	return Result{ID: turn.ConversationID, Position: res.LastPosition, Version: res.LastVersion, At: at, events: evs}, nil
}

// RecordTurn appends what a turn did (tool calls and their outcomes, the
// answer, a failure or cancellation) to its conversation, as who (the
// effective principal of the step) under the decision d. Steps of one turn
// come from one runner in order, so they append without an expected
// version.
func (c *Conversations) RecordTurn(ctx context.Context, who access.Principal, d access.Decision, conversationID string, evs ...domain.Event) (Result, error) {
	stream, err := conversationStream(who.OrgID, conversationID)
	if err != nil {
		return Result{}, err
	}
	res, at, err := c.p.append(ctx, who, d, stream, eventstore.Any(), evs)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: conversationID, Position: res.LastPosition, Version: res.LastVersion, At: at, events: evs}, nil
}

// RecordDenial records a refused tool call in the organization's security
// stream, like any other refusal.
func (c *Conversations) RecordDenial(ctx context.Context, who access.Principal, d access.Decision, resource string) {
	c.p.RecordDenial(ctx, who, d, resource)
}

// DocumentText returns the text of the current version of a document of
// org, as its stream records it. It does not authorize: callers (a bot's
// read_document tool) decide on the document's base first.
func (c *Conversations) DocumentText(ctx context.Context, orgID, docID string) (title, text string, err error) {
	stream, err := eventstore.NewStreamName(knowledge.DocumentCategory, orgID, docID)
	if err != nil {
		return "", "", fmt.Errorf("%w: document", domain.ErrNotFound)
	}
	var doc documentText
	if _, exists, err := c.p.load(ctx, stream, &doc); err != nil {
		return "", "", err
	} else if !exists || doc.deleted {
		return "", "", fmt.Errorf("%w: document", domain.ErrNotFound)
	}
	return doc.title, doc.text, nil
}

// documentText folds a document's stream into its current title and text.
type documentText struct {
	title, text string
	deleted     bool
}

func (d *documentText) Apply(e domain.Event) {
	switch e := e.(type) {
	case *knowledge.DocumentAdded:
		d.title, d.text = e.Title, e.Content
	case *knowledge.DocumentReplaced:
		d.title, d.text = e.Title, e.Content
	case *knowledge.DocumentDeleted:
		d.deleted = true
	}
}
