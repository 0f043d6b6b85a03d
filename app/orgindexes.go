package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/projections/postgres"
)

// DefaultOrganizationIndexInterval is how often the organization indexes
// are brought up to date (Config.OrganizationIndexInterval).
const DefaultOrganizationIndexInterval = 10 * time.Minute

// orgIndexMetrics count the maintenance of the organization indexes, by
// what a pass did: no organization id is a label.
type orgIndexMetrics struct {
	passes  *prometheus.CounterVec
	changes *prometheus.CounterVec
}

func newOrgIndexMetrics(reg prometheus.Registerer) *orgIndexMetrics {
	m := &orgIndexMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_organization_index_passes_total",
			Help: "Passes over the per-organization indexes (HNSW and keyword levels) by outcome (ok, skipped: another replica held them, error).",
		}, []string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palisade_organization_index_changes_total",
			Help: "Per-organization indexes (HNSW and keyword levels) built (created), built anew with the current parameters (rebuilt) and dropped (dropped).",
		}, []string{"change"}),
	}
	reg.MustRegister(m.passes, m.changes)
	return m
}

// startOrganizationIndexes keeps the per-organization indexes of the
// PostgreSQL read models up to date (postgres.IndexOrganizations): a
// first pass at start, then one every interval, until runCtx ends. Only a
// server given the owner role's URL can, and of several replicas only one
// works at a time (the others' passes are skipped). A pass that fails is
// logged and tried again at the next interval: searches are served by the
// index over the whole table meanwhile.
func (a *App) startOrganizationIndexes(runCtx context.Context) {
	cfg := a.cfg
	interval := cfg.OrganizationIndexInterval
	if interval == 0 {
		interval = DefaultOrganizationIndexInterval
	}
	if cfg.PostgresURL == "" || cfg.PostgresOwnerURL == "" || interval < 0 {
		return
	}
	minChunks := cfg.OrganizationIndexMin
	if minChunks == 0 {
		minChunks = postgres.DefaultOrganizationIndexMin
	}
	m := newOrgIndexMetrics(a.Registry)
	a.maintenance.Add(1)
	go func() {
		defer a.maintenance.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			a.indexOrganizations(runCtx, m, minChunks)
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// indexOrganizations runs one pass and reports it.
func (a *App) indexOrganizations(ctx context.Context, m *orgIndexMetrics, minChunks int) {
	start := time.Now()
	report, err := postgres.IndexOrganizations(ctx, a.cfg.PostgresOwnerURL, a.cfg.PostgresSchema, minChunks)
	m.changes.WithLabelValues("created").Add(float64(len(report.Created)))
	m.changes.WithLabelValues("dropped").Add(float64(len(report.Dropped)))
	m.changes.WithLabelValues("rebuilt").Add(float64(len(report.Rebuilt)))
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping: an index cut short is invalid, and the next pass of
		// any replica drops and builds it again.
	case err != nil:
		m.passes.WithLabelValues("error").Inc()
		a.cfg.Logger.Warn("organization indexes: pass failed; searches use the index over every organization meanwhile",
			"err", err, "created", len(report.Created), "rebuilt", len(report.Rebuilt), "dropped", len(report.Dropped))
	case report.Skipped:
		m.passes.WithLabelValues("skipped").Inc()
	default:
		m.passes.WithLabelValues("ok").Inc()
		if len(report.Created)+len(report.Rebuilt)+len(report.Dropped) > 0 {
			a.cfg.Logger.Info("organization indexes brought up to date", "created", len(report.Created),
				"rebuilt", len(report.Rebuilt), "dropped", len(report.Dropped), "kept", report.Kept, "took", time.Since(start).Round(time.Millisecond).String())
		}
	}
}
