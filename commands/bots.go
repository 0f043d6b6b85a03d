package commands

import (
	"context"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
)

// Bots handles the commands of bots.
type Bots struct {
	p *Pipeline
}

// NewBots returns the bot handlers over p.
func NewBots(p *Pipeline) *Bots { return &Bots{p: p} }

func botStream(orgID, botID string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(bots.Category, orgID, botID)
}

func newBot() aggregate { return &bots.Bot{} }

func asBot(a aggregate) *bots.Bot { return a.(*bots.Bot) }

// BotCreated is what creating a bot returns: the bot as recorded, its
// grants normalized by the domain.
type BotCreated struct {
	Result
	Bot *bots.BotCreated
}

// CreateBot creates a bot in the principal's organization.
func (b *Bots) CreateBot(ctx context.Context, who access.Principal, name, instructions string, grants bots.Grants) (BotCreated, error) {
	p := b.p
	d, err := p.authorize(ctx, who, access.BotsManage, access.OrgResource(who.OrgID), "bots")
	if err != nil {
		return BotCreated{}, err
	}
	id := newResourceID(ctx, who)
	stream, err := botStream(who.OrgID, id)
	if err != nil {
		return BotCreated{}, err
	}
	res, err := p.create(ctx, who, d, stream, newBot, func(a aggregate) ([]domain.Event, error) {
		if asBot(a).Exists() {
			return p.existing(ctx, "bot")
		}
		if err := p.admitResource(ctx, who.OrgID, ResourceBots); err != nil {
			return nil, err
		}
		return bots.Create(id, name, instructions, grants)
	})
	if err != nil {
		return BotCreated{}, err
	}
	e, res, err := created[*bots.BotCreated](ctx, p, stream, res)
	if err != nil {
		return BotCreated{}, err
	}
	return BotCreated{Result: res, Bot: e}, nil
}

// UpdateBot changes the given fields of a bot (nil leaves a field as is).
func (b *Bots) UpdateBot(ctx context.Context, who access.Principal, id string, name, instructions *string, grants *bots.Grants) (Result, error) {
	return b.change(ctx, who, id, func(bot *bots.Bot) ([]domain.Event, error) {
		return bot.Update(name, instructions, grants)
	})
}

// ArchiveBot archives a bot.
func (b *Bots) ArchiveBot(ctx context.Context, who access.Principal, id string) (Result, error) {
	return b.change(ctx, who, id, func(bot *bots.Bot) ([]domain.Event, error) {
		return bot.Archive()
	})
}

func (b *Bots) change(ctx context.Context, who access.Principal, id string, change func(*bots.Bot) ([]domain.Event, error)) (Result, error) {
	p := b.p
	d, err := p.authorize(ctx, who, access.BotsManage, access.OrgResource(who.OrgID), "bots/"+id)
	if err != nil {
		return Result{}, err
	}
	// An id that cannot name a stream names no bot of this organization.
	stream, err := botStream(who.OrgID, id)
	if err != nil {
		return Result{}, domain.ErrNotFound
	}
	return p.execute(ctx, who, d, stream, newBot, func(a aggregate) ([]domain.Event, error) {
		return change(asBot(a))
	})
}
