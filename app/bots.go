package app

import (
	"context"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
)

// botsContext is bots as records: their instructions, tools and grants.
// What bots do (turns) is the conversations context's.
type botsContext struct{}

func (botsContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.BotProjection(asm.models.Bots)}
}

func (botsContext) assemble(_ context.Context, asm *assembly) error {
	bots := commands.NewBots(asm.Pipeline)
	asm.Application.Commands.Bots = bots
	asm.web.Commands.Bots = bots
	asm.web.Queries.Bots = asm.Application.Queries.Org
	asm.routes = append(asm.routes, httpapi.BotRoutes())
	return nil
}
