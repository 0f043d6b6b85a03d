package app

import (
	"context"

	"github.com/palisadehq/palisade/consumer"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
)

// jobsContext is the record of the processes' jobs (a document's
// ingestion, an analytics query): their state, attempts and outcome. The
// jobs themselves are the processes' (knowledge, analytics); this context
// only reads their streams.
type jobsContext struct{}

func (jobsContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.JobProjection(asm.models.Jobs)}
}

func (jobsContext) assemble(_ context.Context, asm *assembly) error {
	queries := projections.NewJobQueries(asm.models.Jobs, asm.Pipeline)
	asm.Application.Queries.Jobs = queries
	asm.web.Queries.Jobs = queries
	asm.routes = append(asm.routes, httpapi.JobRoutes())
	return nil
}
