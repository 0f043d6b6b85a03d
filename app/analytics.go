package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/ai/sqlgen"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/sqlguard"
)

// AnalyticsConfig tunes the analytics process.
type AnalyticsConfig struct {
	// Workers bounds the analytics jobs run at once
	// (PALISADE_ANALYTICS_WORKERS, --analytics-workers; default 4).
	Workers int
	// Timeout bounds each job's query (PALISADE_ANALYTICS_TIMEOUT,
	// --analytics-timeout; default 30 s).
	Timeout time.Duration
}

// analyticsPart is the analytics process and what it runs queries with.
type analyticsPart struct {
	runner *commands.AnalyticsRunner
}

// openAnalytics builds the analytics process over the application's
// commands: the data sources' executor (behind the network policy and the
// SQLite root), the translator (the configured chat model, or the built-in
// one) and the organizations' data keys.
func (a *App) openAnalytics(model llm.Model, sources dataSources) (*analyticsPart, error) {
	cfg := a.cfg
	var translator sqlgen.Translator = sqlgen.NewBuiltin()
	if cfg.LLM.URL != "" {
		translator = sqlgen.NewModel(model)
	}
	runner := a.Application.Commands.Analytics.NewRunner(a.principals, commands.AnalyticsDeps{
		Executor: executorPort{sources.exec}, Translator: translatorPort{translator}, Keys: sources.keys,
		Workers: cfg.Analytics.Workers, Timeout: cfg.Analytics.Timeout, Logger: cfg.Logger.With("process", "analytics"),
	})
	return &analyticsPart{runner: runner}, nil
}

// groups are the analytics process and the open-jobs tracker it resumes
// from (in memory: rebuilt from the log or restored from the read-model
// snapshot at every start).
func (p *analyticsPart) groups(checkpoints consumer.Checkpoints, inMemory *memory.Checkpoints) (process, open *consumer.Group) {
	process = p.runner.Process()
	process.Checkpoints = checkpoints
	open = p.runner.OpenJobs()
	open.Checkpoints = inMemory
	return process, open
}

// close stops the pool (running jobs stay running in the log, resumed at
// the next start); the executor is the data sources' to close.
func (p *analyticsPart) close() error {
	p.runner.Stop()
	return nil
}

// executorPort is commands.QueryExecutor over package datasource.
type executorPort struct{ exec *datasource.Executor }

func (e executorPort) Query(ctx context.Context, t commands.QueryTarget, sql string, l commands.QueryLimits) (commands.QueryResult, error) {
	cfg := datasource.Config{Kind: datasource.Kind(t.Kind), Host: t.Connection.Host, Port: t.Connection.Port,
		Database: t.Connection.Database, User: t.Connection.User, Password: t.Password, Params: t.Connection.Params,
		Path: t.Connection.Path}
	if t.Kind == datasources.SQLite {
		cfg.Tables = t.Tables
	}
	res, err := e.exec.Query(ctx, cfg, sql, datasource.Limits{Timeout: l.Timeout, MaxRows: l.MaxRows, MaxBytes: l.MaxBytes})
	if errors.Is(err, datasource.ErrTimeout) {
		return commands.QueryResult{}, fmt.Errorf("%w: %w", commands.ErrQueryTimeout, err)
	}
	if err != nil {
		return commands.QueryResult{}, err
	}
	columns := make([]analytics.Column, len(res.Columns))
	for i, c := range res.Columns {
		columns[i] = analytics.Column{Name: c.Name, Type: c.Type}
	}
	return commands.QueryResult{Columns: columns, Rows: res.Rows, RowCount: res.RowCount, Bytes: res.Bytes,
		Truncated: res.Truncated, SHA256: res.SHA256, Duration: res.Duration}, nil
}

// translatorPort is commands.QuestionTranslator over package sqlgen.
type translatorPort struct{ t sqlgen.Translator }

func (p translatorPort) Translate(ctx context.Context, kind datasources.Kind, tables []datasources.Table, question string) (string, string, error) {
	schema := sqlgen.Schema{Dialect: sqlguard.Postgres}
	switch kind {
	case datasources.MySQL:
		schema.Dialect = sqlguard.MySQL
	case datasources.SQLite:
		schema.Dialect = sqlguard.SQLite
	}
	for _, t := range tables {
		cols := make([]sqlgen.Column, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = sqlgen.Column{Name: c.Name, Type: c.Type}
		}
		schema.Tables = append(schema.Tables, sqlgen.Table{Name: t.Name, Columns: cols})
	}
	tr, err := p.t.Translate(ctx, schema, question)
	if err != nil {
		return "", "", err
	}
	return tr.SQL, tr.Translator, nil
}
