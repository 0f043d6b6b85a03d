package app

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain/events"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

// boundedContext is one bounded context of Palisade as Open assembles it
// into the running server: the projections of its read models, the groups
// it keeps in memory, the processes it runs (each with its pool), its use
// cases (in the Application, and as the HTTP surface sees them), its bot
// tools and its routes.
//
// Adding a context is writing its domain package, its use cases (package
// commands), its read models and queries (package projections and its
// adapters), its routes (package http) and one file here whose assemble
// registers them, then adding it to [App.contexts]: one line.
type boundedContext interface {
	// projections are the groups that build the context's read models
	// (asm.models): their positions are kept with the read models, and
	// the consistency wait covers them.
	projections(asm *assembly) []*consumer.Group
	// assemble registers everything else.
	assemble(ctx context.Context, asm *assembly) error
}

// contexts are Palisade's bounded contexts, in the order Open assembles
// them: a context may use the use cases of one listed before it (the
// knowledge context's tools record through the conversations' commands,
// analytics reads the data sources' connector).
func (a *App) contexts() []boundedContext {
	return []boundedContext{
		tenancyContext{},
		botsContext{},
		auditContext{},
		conversationsContext{},
		knowledgeContext{},
		dataSourcesContext{},
		analyticsContext{},
		jobsContext{},
	}
}

// assembly is what the contexts register into while Open builds the
// server, and what they may use: the App's shared parts (the pipeline,
// the log, the keys, the principals, the chat model) and the read models
// on the configured adapter.
type assembly struct {
	*App
	models   projections.ReadModels
	registry *events.Registry
	// inMemory keeps the positions of groups held in memory whatever the
	// read models (see App.memoryCheckpoints).
	inMemory *memory.Checkpoints
	// model is the chat model bots and the analytics translator use.
	model llm.Model
	// web is the application as the HTTP surface sees it, routes its
	// routes.
	web    httpapi.Application
	routes []httpapi.Routes
	// groups are the consumer groups of the engine: projections of read
	// models, groups in memory and, on one replica, processes.
	groups    []*consumer.Group
	processes []process
	tools     []conversation.Tool
	// side is what the memory snapshot keeps beside the read models.
	side snapshotSides
	// assembled runs once every context is assembled; rebuilt after the
	// rebuild (before the bus); started once the bus runs.
	assembled []func() error
	rebuilt   []func(ctx, runCtx context.Context) error
	started   []func(ctx, runCtx context.Context) error
}

// snapshotSides are the in-memory states the memory snapshot saves beside
// the read models (sideState).
type snapshotSides struct {
	turns     *conversation.OpenTurns
	openJobs  *commands.AnalyticsRunner
	ingestion *commands.IngestionRunner
}

// process is a process with a pool: a group that hands jobs to the pool
// (its checkpoint durable beside the log), run on every start, or on the
// replica elected for it.
type process struct {
	group *consumer.Group
	pool  pool
	// jobs names the pool's jobs in palisade_jobs_queued.
	jobs string
}

// projections are every context's projections.
func (asm *assembly) projections() []*consumer.Group {
	var groups []*consumer.Group
	for _, c := range asm.contexts() {
		groups = append(groups, c.projections(asm)...)
	}
	return groups
}

// keptInMemory registers a group whose state lives in memory whatever the
// read models: rebuilt from the log at every start, or restored from the
// memory snapshot.
func (asm *assembly) keptInMemory(g *consumer.Group) {
	g.Checkpoints = asm.inMemory
	asm.groups = append(asm.groups, g)
}

// process registers a process and its pool. open is the group that
// follows which of its jobs are not settled (kept in memory), so that a
// start hands them to the pool again.
func (asm *assembly) process(p pool, group, open *consumer.Group, jobs string) {
	group.Checkpoints = consumer.NewProcessCheckpoints(asm.checkpoint, 500)
	asm.keptInMemory(open)
	asm.processes = append(asm.processes, process{group: group, pool: p, jobs: jobs})
	asm.closers = append(asm.closers, func() error { p.Stop(); return nil })
}

// assemble assembles every context, then lets them finish (the bot runner
// needs every context's tools). The processes join the engine's groups on
// one replica; with replicas they are elected (startWorkers).
func (a *App) assemble(ctx context.Context, asm *assembly) error {
	for _, c := range a.contexts() {
		asm.groups = append(asm.groups, c.projections(asm)...)
		if err := c.assemble(ctx, asm); err != nil {
			return fmt.Errorf("assemble %T: %w", c, err)
		}
	}
	for _, f := range asm.assembled {
		if err := f(); err != nil {
			return err
		}
	}
	a.processes = asm.processes
	for _, p := range asm.processes {
		if a.replicated() {
			a.workers = append(a.workers, worker{group: p.group, around: a.runPool(p.group.Name, p.pool)})
		} else {
			asm.groups = append(asm.groups, p.group)
		}
	}
	return nil
}
