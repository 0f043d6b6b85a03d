package commands

import (
	"context"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
)

func botStream(orgID, botID string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(bots.Category, orgID, botID)
}

func newBot() aggregate { return &bots.Bot{} }

func asBot(a aggregate) *bots.Bot { return a.(*bots.Bot) }

// CreateBot creates a bot in the principal's organization.
func (p *Pipeline) CreateBot(ctx context.Context, who access.Principal, name, instructions string, grants bots.Grants) (Result, error) {
	d, err := p.authorize(ctx, who, access.BotsManage, access.OrgResource(who.OrgID), "bots")
	if err != nil {
		return Result{}, err
	}
	id := newResourceID(ctx, who)
	stream, err := botStream(who.OrgID, id)
	if err != nil {
		return Result{}, err
	}
	return p.create(ctx, who, d, stream, newBot, func(a aggregate) ([]domain.Event, error) {
		if asBot(a).Exists() {
			return p.existing(ctx, "bot")
		}
		if err := p.admitResource(ctx, who.OrgID, ResourceBots); err != nil {
			return nil, err
		}
		return bots.Create(id, name, instructions, grants)
	})
}

// UpdateBot changes the given fields of a bot (nil leaves a field as is).
func (p *Pipeline) UpdateBot(ctx context.Context, who access.Principal, id string, name, instructions *string, grants *bots.Grants) (Result, error) {
	return p.changeBot(ctx, who, id, func(b *bots.Bot) ([]domain.Event, error) {
		return b.Update(name, instructions, grants)
	})
}

// ArchiveBot archives a bot.
func (p *Pipeline) ArchiveBot(ctx context.Context, who access.Principal, id string) (Result, error) {
	return p.changeBot(ctx, who, id, func(b *bots.Bot) ([]domain.Event, error) {
		return b.Archive()
	})
}

func (p *Pipeline) changeBot(ctx context.Context, who access.Principal, id string, change func(*bots.Bot) ([]domain.Event, error)) (Result, error) {
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
