package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/projections"
)

// DataSources is the PostgreSQL adapter of projections.DataSourceModel.
type DataSources struct{ db *db }

var _ projections.DataSourceModel = (*DataSources)(nil)

const (
	sourceColumns = `id, name, kind, connection, allowed_tables, grants, state, schema_snapshot, last_test,
		created_by, created_at, updated_at, version, connection_version`
	sourceSQL       = `SELECT ` + sourceColumns + ` FROM data_sources WHERE org_id = $1 AND id = $2`
	sourcesSQL      = `SELECT ` + sourceColumns + ` FROM data_sources WHERE org_id = $1 ORDER BY id LIMIT $2`
	sourcesAfter    = `SELECT ` + sourceColumns + ` FROM data_sources WHERE org_id = $1 AND id > $3 ORDER BY id LIMIT $2`
	sourceGrantsSQL = `SELECT grants FROM data_sources WHERE org_id = $1 AND id = $2`
	putSourceSQL    = `INSERT INTO data_sources (org_id, ` + sourceColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (org_id, id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
			connection = EXCLUDED.connection, allowed_tables = EXCLUDED.allowed_tables, grants = EXCLUDED.grants,
			state = EXCLUDED.state, schema_snapshot = EXCLUDED.schema_snapshot, last_test = EXCLUDED.last_test,
			created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
			version = EXCLUDED.version, connection_version = EXCLUDED.connection_version`
	deleteSourceSQL = `DELETE FROM data_sources WHERE org_id = $1 AND id = $2`
)

func (d *DataSources) DataSource(ctx context.Context, scope access.Scope, id string) (projections.DataSource, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.DataSource{}, err
	}
	return getOne(ctx, d.db, org, "data source", sourceSQL, []any{org, id}, scanSource)
}

func (d *DataSources) DataSources(ctx context.Context, scope access.Scope, page projections.Page) ([]projections.DataSource, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return listPage(ctx, d.db, org, "data sources", sourcesSQL, sourcesAfter, page, scanSource)
}

func (d *DataSources) SourceGrants(ctx context.Context, orgID, id string) ([]datasources.Grant, bool, error) {
	scope, err := access.EventScope(orgID)
	if err != nil {
		return nil, false, err
	}
	org := scope.OrgID()
	var (
		grants []datasources.Grant
		found  bool
	)
	err = d.db.query(ctx, org, sourceGrantsSQL, []any{org, id}, func(rows pgx.Rows) error {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		found = true
		return json.Unmarshal(raw, &grants)
	})
	if err != nil {
		return nil, false, fmt.Errorf("grants of data source %s: %w", id, err)
	}
	return grants, found, nil
}

func (d *DataSources) PutDataSource(ctx context.Context, scope access.Scope, s projections.DataSource) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	var encoded [5]string
	for i, v := range []any{s.Connection, s.AllowedTables, s.Grants, s.Schema, s.LastTest} {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("put data source %s: %w", s.ID, err)
		}
		encoded[i] = string(b)
	}
	return put(ctx, d.db, org, "put data source", putSourceSQL, org, s.ID, s.Name, s.Kind,
		encoded[0], encoded[1], encoded[2], s.State, nullJSON(encoded[3]), nullJSON(encoded[4]),
		s.CreatedBy, s.CreatedAt, s.UpdatedAt, int64(s.Version), s.ConnectionVersion)
}

// nullJSON is SQL NULL for a JSON null, so that the column says "none".
func nullJSON(s string) *string {
	if s == "null" {
		return nil
	}
	return &s
}

func (d *DataSources) DeleteDataSource(ctx context.Context, scope access.Scope, id string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, d.db, org, "delete data source", deleteSourceSQL, org, id)
}

func scanSource(rows pgx.Rows) (projections.DataSource, error) {
	var (
		s                                      projections.DataSource
		conn, tables, grants, schema, lastTest []byte
		version                                int64
	)
	err := rows.Scan(&s.ID, &s.Name, &s.Kind, &conn, &tables, &grants, &s.State, &schema, &lastTest,
		&s.CreatedBy, &s.CreatedAt, &s.UpdatedAt, &version, &s.ConnectionVersion)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt, s.Version = s.CreatedAt.UTC(), s.UpdatedAt.UTC(), uint64(version)
	for _, f := range []struct {
		raw []byte
		v   any
	}{{conn, &s.Connection}, {tables, &s.AllowedTables}, {grants, &s.Grants}, {schema, &s.Schema}, {lastTest, &s.LastTest}} {
		if f.raw == nil {
			continue
		}
		if err := json.Unmarshal(f.raw, f.v); err != nil {
			return s, fmt.Errorf("data source %s: %w", s.ID, err)
		}
	}
	if s.LastTest != nil {
		s.LastTest.At = s.LastTest.At.UTC()
	}
	return s, nil
}
