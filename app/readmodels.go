package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/knowledge/embeddings"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/projections/postgres"
)

// readModels are the read models on the configured adapter and their
// checkpoints.
type readModels struct {
	projections.ReadModels
	checkpoints consumer.Checkpoints
	// memory and memoryCheckpoints are set with memory read models: what
	// a snapshot saves, and the positions of every in-memory group.
	memory            *memory.Models
	memoryCheckpoints *memory.Checkpoints
}

func newMemoryReadModels(m memory.Models) readModels {
	checkpoints := memory.NewCheckpoints()
	return readModels{ReadModels: m.ReadModels(), checkpoints: checkpoints, memory: &m, memoryCheckpoints: checkpoints}
}

// memoryCheckpoints returns the checkpoints of a group kept in memory
// whatever the read models (quota book, open turns, open jobs): with
// memory read models, the ones they share, which a snapshot saves;
// otherwise fresh ones, so the group is rebuilt from the whole log.
func (a *App) memoryCheckpoints(models readModels) *memory.Checkpoints {
	if models.memoryCheckpoints != nil {
		return models.memoryCheckpoints
	}
	return memory.NewCheckpoints()
}

// openReadModels opens the configured read models: PostgreSQL (migrated
// by Open when an owner URL is given) or memory, with the durable embedding
// store beside them (a SQLite file of the data directory with memory read
// models, a table of the read-model database with PostgreSQL).
func (a *App) openReadModels(ctx context.Context) (readModels, error) {
	if a.cfg.PostgresURL == "" {
		vectors, err := embeddings.OpenSQLite(ctx, filepath.Join(a.cfg.DataDir, embeddingsFile))
		if err != nil {
			return readModels{}, err
		}
		a.closers = append(a.closers, vectors.Close)
		a.vectors = vectors
		mem, restored, err := a.openMemorySnapshot(ctx)
		if err != nil {
			return readModels{}, err
		}
		a.restored = restored
		return newMemoryReadModels(mem), nil
	}
	pg, err := postgres.Open(ctx, a.cfg.PostgresURL, a.cfg.PostgresSchema)
	if err != nil {
		return readModels{}, fmt.Errorf("open read models: %w", err)
	}
	a.postgres = pg
	if !pg.Chunks().KeywordIndex() {
		a.cfg.Logger.Warn("tsvector @@ tsquery is not leakproof in the read-model database, so keyword search reads every chunk of an organization that holds a word of the query; " +
			"as a superuser: ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF (see deploy/postgres/init.sql)")
	}
	if err := a.claimReadModels(ctx, pg); err != nil {
		return readModels{}, err
	}
	a.vectors = pg.Embeddings()
	return readModels{ReadModels: pg.ReadModels(), checkpoints: pg.Checkpoints()}, nil
}

// identifiedLog is an event log that knows its identity (both adapters do).
type identifiedLog interface {
	LogID(ctx context.Context) (string, error)
}

// claimReadModels makes sure the PostgreSQL read models are this log's:
// built from it (or empty, and then bound to it) and not ahead of it.
// Otherwise it refuses to start, or, when the operator asked for it,
// empties them so that the rebuild that follows starts from nothing.
func (a *App) claimReadModels(ctx context.Context, pg *postgres.Store) error {
	log, ok := a.Log.(identifiedLog)
	if !ok {
		return fmt.Errorf("read models: the event log %T has no identity to check them against", a.Log)
	}
	logID, err := log.LogID(ctx)
	if err != nil {
		return fmt.Errorf("read models: identity of the event log: %w", err)
	}
	head, err := a.Log.Head(ctx)
	if err != nil {
		return fmt.Errorf("read models: end of the event log: %w", err)
	}
	a.logID = logID
	origin, err := pg.Claim(ctx, logID, head)
	if err == nil {
		a.cfg.Logger.Info("read models belong to this event log", "log_id", logID, "read_models_at", origin.Position, "log_head", head)
		return nil
	}
	schema := a.cfg.PostgresSchema
	if schema == "" {
		schema = "public"
	}
	if !errors.Is(err, postgres.ErrNotThisLog) {
		return fmt.Errorf("read models in PostgreSQL schema %s: %w", schema, err)
	}
	if !a.cfg.RebuildReadModels {
		return fmt.Errorf("refusing to serve the read models in PostgreSQL schema %s: %w; "+
			"serving them would answer from another log's members and resources, or from events this log no longer holds. "+
			"To rebuild them from this log, stop every server that uses them, then run `palisade migrate --rebuild` "+
			"(owner role) and start again, or start once with `palisade serve --rebuild-read-models` "+
			"(needs PALISADE_POSTGRES_OWNER_URL)", schema, err)
	}
	if a.cfg.PostgresOwnerURL == "" {
		return fmt.Errorf("read models in PostgreSQL schema %s: %w; rebuilding them needs the owner role's URL (PALISADE_POSTGRES_OWNER_URL)", schema, err)
	}
	a.cfg.Logger.Warn("read models do not belong to this event log: emptying them to rebuild from it",
		"schema", schema, "reason", err.Error(), "log_id", logID, "log_head", head)
	if err := postgres.Reset(ctx, a.cfg.PostgresOwnerURL, a.cfg.PostgresSchema); err != nil {
		return fmt.Errorf("rebuild read models: %w", err)
	}
	if _, err := pg.Claim(ctx, logID, head); err != nil {
		return fmt.Errorf("rebuild read models: after emptying them: %w", err)
	}
	return nil
}
