package projections

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/eventstore"
)

// DataSource is a data source as its organization sees it. It never holds
// the password, sealed or not: only whether one is set.
type DataSource struct {
	ID            string                     `json:"id"`
	Name          string                     `json:"name"`
	Kind          string                     `json:"kind"`
	Connection    DataSourceConnection       `json:"connection"`
	AllowedTables []datasources.AllowedTable `json:"allowed_tables"`
	// Grants are shown to the members who manage data sources only; the
	// query service leaves them nil for everyone else.
	Grants []datasources.Grant `json:"grants,omitzero"`
	// State is datasources.Untested, Ready or Failing.
	State string `json:"state"`
	// Schema is what the last successful test of the current connection
	// saw; nil before one.
	Schema *datasources.Schema `json:"schema"`
	// LastTest is the last test of the current connection; nil before one.
	LastTest  *DataSourceTestView `json:"last_test"`
	CreatedBy string              `json:"created_by"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
	// Version is the source stream's version of the last event folded in;
	// ConnectionVersion counts its connections, as DataSourceTested does.
	Version           uint64 `json:"-"`
	ConnectionVersion int    `json:"-"`
}

// DataSourceConnection is where a source connects, without its password.
type DataSourceConnection struct {
	Host        string            `json:"host,omitempty"`
	Port        int               `json:"port,omitempty"`
	Database    string            `json:"database,omitempty"`
	User        string            `json:"user,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	Path        string            `json:"path,omitempty"`
	PasswordSet bool              `json:"password_set"`
}

// DataSourceTestView is the outcome of one connection test.
type DataSourceTestView struct {
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// DataSourceModel is the read model of data sources. Reads take the
// caller's scope; writes take the event's scope.
type DataSourceModel interface {
	DataSource(ctx context.Context, scope access.Scope, id string) (DataSource, error)
	// DataSources lists sources by id after page.After.
	DataSources(ctx context.Context, scope access.Scope, page Page) ([]DataSource, error)
	PutDataSource(ctx context.Context, scope access.Scope, s DataSource) error
	DeleteDataSource(ctx context.Context, scope access.Scope, id string) error
	// SourceGrants returns the grants of orgID's source id, and whether it
	// exists (a deleted source does not), for deciding on it without
	// reading the whole record.
	SourceGrants(ctx context.Context, orgID, id string) (grants []datasources.Grant, exists bool, err error)
	// PurgeOrg drops every data source of the organization.
	OrgPurger
}

// viewConnection is conn without its password.
func viewConnection(conn datasources.Connection) DataSourceConnection {
	return DataSourceConnection{
		Host: conn.Host, Port: conn.Port, Database: conn.Database, User: conn.User, Params: conn.Params, Path: conn.Path,
		PasswordSet: conn.SealedPassword != "",
	}
}

// DataSourceProjection builds the data source read model. Each event is
// folded into its source's record, whose Version says which event of the
// stream was folded last, so a redelivery changes nothing.
func DataSourceProjection(m DataSourceModel) *consumer.Group {
	p := dataSourceProjection{m: m}
	return &consumer.Group{Name: "datasources", Kind: consumer.ReadModel, Handlers: []consumer.Handler{
		consumer.On(p.created),
		consumer.On(p.updated),
		consumer.On(p.grantsSet),
		consumer.On(p.tested),
		consumer.On(p.deleted),
		purgeOnClose(m),
	}}
}

type dataSourceProjection struct{ m DataSourceModel }

func (p dataSourceProjection) created(ctx context.Context, env eventstore.Envelope, e *datasources.DataSourceCreated) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	return p.m.PutDataSource(ctx, scope, DataSource{
		ID: e.ID, Name: e.Name, Kind: string(e.Kind), Connection: viewConnection(e.Connection),
		AllowedTables: allowedTables(e.AllowedTables), Grants: []datasources.Grant{}, State: string(datasources.Untested),
		CreatedBy: env.Actor.Subject, CreatedAt: env.OccurredAt, UpdatedAt: env.OccurredAt,
		Version: env.StreamVersion, ConnectionVersion: 1,
	})
}

func (p dataSourceProjection) updated(ctx context.Context, env eventstore.Envelope, e *datasources.DataSourceUpdated) error {
	return p.update(ctx, env, func(s *DataSource) {
		if e.Name != nil {
			s.Name = *e.Name
		}
		if e.Connection != nil {
			s.Connection = viewConnection(*e.Connection)
			s.ConnectionVersion++
			s.State, s.Schema, s.LastTest = string(datasources.Untested), nil, nil
		}
		if e.AllowedTables != nil {
			s.AllowedTables = allowedTables(*e.AllowedTables)
		}
	})
}

func (p dataSourceProjection) grantsSet(ctx context.Context, env eventstore.Envelope, e *datasources.DataSourceGrantsSet) error {
	return p.update(ctx, env, func(s *DataSource) {
		s.Grants = e.Grants
		if s.Grants == nil {
			s.Grants = []datasources.Grant{}
		}
	})
}

func (p dataSourceProjection) tested(ctx context.Context, env eventstore.Envelope, e *datasources.DataSourceTested) error {
	return p.update(ctx, env, func(s *DataSource) {
		if e.ConnectionVersion != s.ConnectionVersion {
			return // a test of a connection since replaced
		}
		s.LastTest = &DataSourceTestView{OK: e.OK, Error: e.Error, At: env.OccurredAt}
		if !e.OK {
			s.State = string(datasources.Failing)
			return
		}
		schema := e.Schema
		if schema.Tables == nil {
			schema.Tables = []datasources.Table{}
		}
		s.State, s.Schema = string(datasources.Ready), &schema
	})
}

func (p dataSourceProjection) deleted(ctx context.Context, env eventstore.Envelope, _ *datasources.DataSourceDeleted) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	return p.m.DeleteDataSource(ctx, scope, env.Stream.EntityID)
}

// update folds one event into the source of its stream, unless the record
// already holds it or the source is gone.
func (p dataSourceProjection) update(ctx context.Context, env eventstore.Envelope, change func(*DataSource)) error {
	scope, err := eventScope(env)
	if err != nil {
		return err
	}
	s, err := p.m.DataSource(ctx, scope, env.Stream.EntityID)
	if err != nil {
		return err
	}
	if env.StreamVersion <= s.Version {
		return nil // redelivered: already folded
	}
	change(&s)
	s.UpdatedAt, s.Version = env.OccurredAt, env.StreamVersion
	return p.m.PutDataSource(ctx, scope, s)
}

func allowedTables(t []datasources.AllowedTable) []datasources.AllowedTable {
	if t == nil {
		return []datasources.AllowedTable{}
	}
	return t
}

// DataSourceQueries answers reads of data sources. A caller sees a source
// when it holds datasources:read and either manages data sources (owners
// and admins) or may query this source (a grant names it); any other
// source, like another organization's, answers exactly like one that does
// not exist. Grants, the part of the schema snapshot outside the allowed
// tables and columns, and why the last test failed are shown to managers
// only.
type DataSourceQueries struct {
	sources DataSourceModel
	denials DenialRecorder
}

// NewDataSourceQueries returns the data source query service; denials
// records refused reads.
func NewDataSourceQueries(m DataSourceModel, denials DenialRecorder) *DataSourceQueries {
	return &DataSourceQueries{sources: m, denials: denials}
}

// sourceView returns s as who may see it, and whether who may see it.
func sourceView(who access.Principal, s DataSource) (DataSource, bool) {
	res := datasources.Resource(who.OrgID, s.Grants)
	if access.Decide(who, access.DatasourcesManage, res).Allowed {
		return s, true
	}
	if !datasources.DecideQuery(who, res).Allowed {
		return DataSource{}, false
	}
	s.Grants = nil
	s.Schema = allowedSchema(s.Schema, s.AllowedTables)
	if s.LastTest != nil && s.LastTest.Error != "" {
		// Why a connection failed is the driver's text: addresses, the
		// server's banner, names the connection tried. It is for those
		// who manage the source.
		t := *s.LastTest
		t.Error = ""
		s.LastTest = &t
	}
	return s, true
}

// allowedSchema is the part of schema a source exposes: its allowed tables,
// and of those only the allowed columns, so that a member who may query a
// source does not learn the rest of the database from its snapshot.
func allowedSchema(schema *datasources.Schema, allowed []datasources.AllowedTable) *datasources.Schema {
	if schema == nil {
		return nil
	}
	out := &datasources.Schema{Tables: []datasources.Table{}}
	for _, t := range schema.Tables {
		i := slices.IndexFunc(allowed, func(a datasources.AllowedTable) bool { return a.Name == t.Name })
		if i < 0 {
			continue
		}
		if len(allowed[i].Columns) == 0 {
			out.Tables = append(out.Tables, t)
			continue
		}
		cols := []datasources.Column{}
		for _, c := range t.Columns {
			if slices.Contains(allowed[i].Columns, c.Name) {
				cols = append(cols, c)
			}
		}
		out.Tables = append(out.Tables, datasources.Table{Name: t.Name, Columns: cols})
	}
	return out
}

// List lists the sources the caller may see, by id after page.After.
func (q *DataSourceQueries) List(ctx context.Context, who access.Principal, page Page) ([]DataSource, error) {
	scope, err := authorizeOrg(ctx, q.denials, who, access.DatasourcesRead, "data-sources")
	if err != nil {
		return nil, err
	}
	limit := PageLimit(page.Limit)
	out := make([]DataSource, 0, limit)
	for len(out) < limit {
		batch, err := q.sources.DataSources(ctx, scope, Page{After: page.After, Limit: limit})
		if err != nil {
			return nil, err
		}
		for _, s := range batch {
			if v, ok := sourceView(who, s); ok && len(out) < limit {
				out = append(out, v)
			}
		}
		if len(batch) < limit {
			break
		}
		page.After = batch[len(batch)-1].ID
	}
	return out, nil
}

// Get returns one source the caller may see.
func (q *DataSourceQueries) Get(ctx context.Context, who access.Principal, id string) (DataSource, error) {
	resource := "data-sources/" + id
	scope, err := authorizeOrg(ctx, q.denials, who, access.DatasourcesRead, resource)
	if err != nil {
		return DataSource{}, err
	}
	s, err := q.sources.DataSource(ctx, scope, id)
	if err != nil {
		return DataSource{}, err
	}
	v, ok := sourceView(who, s)
	if !ok {
		q.denials.RecordDenial(ctx, who, datasources.DecideQuery(who, datasources.Resource(who.OrgID, s.Grants)), resource)
		return DataSource{}, fmt.Errorf("data source: %w", domain.ErrNotFound)
	}
	return v, nil
}
