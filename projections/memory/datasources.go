package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/projections"
)

// DataSources is the memory adapter of projections.DataSourceModel.
type DataSources struct {
	sources *orgTable[projections.DataSource]
}

var _ projections.DataSourceModel = (*DataSources)(nil)

// NewDataSources returns an empty data source read model.
func NewDataSources() *DataSources {
	return &DataSources{sources: newOrgTable(cloneDataSource)}
}

func (d *DataSources) DataSource(_ context.Context, scope access.Scope, id string) (projections.DataSource, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.DataSource{}, err
	}
	if s, ok := d.sources.get(org, id); ok {
		return s, nil
	}
	return projections.DataSource{}, fmt.Errorf("data source: %w", domain.ErrNotFound)
}

func (d *DataSources) DataSources(_ context.Context, scope access.Scope, page projections.Page) ([]projections.DataSource, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return d.sources.page(org, page, nil), nil
}

func (d *DataSources) PutDataSource(_ context.Context, scope access.Scope, s projections.DataSource) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	d.sources.put(org, s.ID, s)
	return nil
}

func (d *DataSources) DeleteDataSource(_ context.Context, scope access.Scope, id string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	d.sources.delete(org, id)
	return nil
}

func (d *DataSources) SourceGrants(ctx context.Context, orgID, id string) ([]datasources.Grant, bool, error) {
	scope, err := access.EventScope(orgID)
	if err != nil {
		return nil, false, err
	}
	s, ok := d.sources.get(scope.OrgID(), id)
	if !ok {
		return nil, false, nil
	}
	return s.Grants, true, nil
}

// cloneDataSource copies a record down to its lists and maps, keeping nil
// and empty apart.
func cloneDataSource(s projections.DataSource) projections.DataSource {
	s.Connection.Params = maps.Clone(s.Connection.Params)
	if s.AllowedTables != nil {
		tables := make([]datasources.AllowedTable, len(s.AllowedTables))
		for i, t := range s.AllowedTables {
			t.Columns = slices.Clone(t.Columns)
			tables[i] = t
		}
		s.AllowedTables = tables
	}
	if s.Grants != nil {
		grants := make([]datasources.Grant, len(s.Grants))
		for i, g := range s.Grants {
			g.Permissions = slices.Clone(g.Permissions)
			grants[i] = g
		}
		s.Grants = grants
	}
	if s.Schema != nil {
		schema := datasources.Schema{Tables: make([]datasources.Table, len(s.Schema.Tables))}
		for i, t := range s.Schema.Tables {
			t.Columns = slices.Clone(t.Columns)
			schema.Tables[i] = t
		}
		if s.Schema.Tables == nil {
			schema.Tables = nil
		}
		s.Schema = &schema
	}
	if s.LastTest != nil {
		last := *s.LastTest
		s.LastTest = &last
	}
	return s
}
