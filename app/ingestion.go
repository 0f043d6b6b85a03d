package app

import "context"

// IngestionConfig sizes the ingestion process's pool (see
// commands.IngestionRunner).
type IngestionConfig struct {
	// Workers bounds the document ingestions run at once
	// (PALISADE_INGESTION_WORKERS, --ingestion-workers; default 4).
	Workers int
	// PerOrg bounds those of one organization (PALISADE_INGESTION_PER_ORG,
	// --ingestion-per-org; default 2): the pool serves organizations in
	// turn, so one organization's backlog does not hold up another's.
	PerOrg int
}

// pool is a process's worker pool as the application starts and stops it:
// jobs left open are handed to it again when it starts.
type pool interface {
	Start(ctx context.Context)
	Stop()
	Resume(ctx context.Context) (int, error)
	// Queued is how many jobs wait for a worker.
	Queued() int
}

// startPool starts p and hands it every job left open (a stop cut it
// short, or it came while no process ran).
func (a *App) startPool(ctx, runCtx context.Context, name string, p pool) {
	p.Start(runCtx)
	if n, err := p.Resume(ctx); err != nil {
		a.cfg.Logger.Error("resuming open jobs", "process", name, "resumed", n, "err", err)
	} else if n > 0 {
		a.cfg.Logger.Warn("jobs left open by the last stop handed to the pool again", "process", name, "jobs", n)
	}
}

// runPool runs a process with a pool on the replica elected for it: the
// pool for the term, every job left open handed to it (another replica's
// term may have ended with jobs running), then the process itself.
func (a *App) runPool(name string, p pool) func(ctx context.Context, follow func(context.Context) error) error {
	return func(ctx context.Context, follow func(context.Context) error) error {
		p.Start(ctx)
		defer p.Stop()
		if n, err := p.Resume(ctx); err != nil {
			a.cfg.Logger.Error("resuming open jobs", "process", name, "resumed", n, "err", err)
		} else if n > 0 {
			a.cfg.Logger.Warn("open jobs handed to this replica's pool", "process", name, "jobs", n)
		}
		return follow(ctx)
	}
}
