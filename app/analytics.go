package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/ai/sqlgen"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/datasources"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
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

// analyticsContext is analytics jobs: questions turned into SQL and run
// against a data source on a fair pool, their results sealed.
type analyticsContext struct{}

func (analyticsContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.AnalyticsProjection(asm.models.Analytics)}
}

func (analyticsContext) assemble(_ context.Context, asm *assembly) error {
	p := asm.Pipeline
	cmds := commands.NewAnalytics(p)
	queries := projections.NewAnalyticsQueries(asm.models.Analytics, asm.models.DataSources, p)
	asm.Application.Commands.Analytics = cmds
	asm.Application.Queries.Analytics = queries
	asm.web.Commands.Analytics = cmds
	asm.web.Queries.Analytics = queries
	asm.routes = append(asm.routes, httpapi.AnalyticsRoutes())
	asm.tools = append(asm.tools, conversation.QueryDataTool(cmds, queries))

	runner := asm.newAnalyticsRunner(cmds)
	asm.side.openJobs = runner
	asm.process(runner, runner.Process(), runner.OpenJobs(), commands.AnalyticsJobKind)
	return nil
}

// newAnalyticsRunner builds the analytics process (stopped) over the
// data sources' executor (behind the network policy and the SQLite root),
// the translator (the configured chat model, or the built-in one) and the
// organizations' data keys.
func (a *App) newAnalyticsRunner(cmds *commands.Analytics) *commands.AnalyticsRunner {
	cfg := a.cfg
	var translator sqlgen.Translator = sqlgen.NewBuiltin()
	if cfg.LLM.URL != "" {
		translator = sqlgen.NewModel(a.model)
	}
	return cmds.NewRunner(a.principals, commands.AnalyticsDeps{
		Executor: executorPort{a.sources.exec}, Translator: translatorPort{translator}, Keys: a.sources.keys,
		Workers: cfg.Analytics.Workers, Timeout: cfg.Analytics.Timeout, Logger: cfg.Logger.With("process", "analytics"),
	})
}

// executorPort is commands.QueryExecutor over package datasource.
type executorPort struct{ exec *datasource.Executor }

func (e executorPort) Query(ctx context.Context, t commands.QueryTarget, sql string, l commands.QueryLimits) (commands.QueryResult, error) {
	cfg := datasource.Config{Kind: datasource.Kind(t.Kind), Host: t.Connection.Host, Port: t.Connection.Port,
		Database: t.Connection.Database, User: t.Connection.User, Password: t.Password, Params: t.Connection.Params,
		Org: t.OrgID, Path: t.Connection.Path}
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
