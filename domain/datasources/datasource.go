package datasources

import (
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// Limits of a source's configuration.
const (
	MaxGrants        = 100
	MaxAllowedTables = 200
	MaxColumns       = 500
	MaxParams        = 16
	MaxIdentifierLen = 128
	MaxPathLen       = 1024
	// MaxSnapshotTables bounds the tables a connection test records.
	MaxSnapshotTables = 1000
)

// State is what the last connection test of a source's current connection
// said.
type State string

// The states of a source.
const (
	Untested State = "untested" // no test since the connection was set
	Ready    State = "ready"    // the last test connected
	Failing  State = "failing"  // the last test could not connect
)

// DataSource is the aggregate that guards one data source.
type DataSource struct {
	id          string
	name        string
	kind        Kind
	conn        Connection
	connVersion int
	tables      []AllowedTable
	grants      []Grant
	state       State
	schema      Schema
	deleted     bool
}

// Exists reports whether the source was created and not deleted.
func (s *DataSource) Exists() bool { return s.id != "" && !s.deleted }

// ID returns the source's id.
func (s *DataSource) ID() string { return s.id }

// Name returns the source's name.
func (s *DataSource) Name() string { return s.name }

// Kind returns the kind of database the source connects to.
func (s *DataSource) Kind() Kind { return s.kind }

// Connection returns where the source connects, its password sealed.
func (s *DataSource) Connection() Connection { return s.conn }

// ConnectionVersion counts the connections the source has had; a test
// records the version it tested.
func (s *DataSource) ConnectionVersion() int { return s.connVersion }

// AllowedTables returns the tables the source exposes.
func (s *DataSource) AllowedTables() []AllowedTable { return s.tables }

// Grants returns the source's grants.
func (s *DataSource) Grants() []Grant { return s.grants }

// State returns what the last test of the current connection said.
func (s *DataSource) State() State { return s.state }

// Schema returns the schema the last successful test of the current
// connection saw (empty before one).
func (s *DataSource) Schema() Schema { return s.schema }

// Apply folds one recorded event into the aggregate.
func (s *DataSource) Apply(e domain.Event) {
	switch e := e.(type) {
	case *DataSourceCreated:
		s.id, s.name, s.kind, s.conn, s.tables = e.ID, e.Name, e.Kind, e.Connection, e.AllowedTables
		s.connVersion, s.state = 1, Untested
	case *DataSourceUpdated:
		if e.Name != nil {
			s.name = *e.Name
		}
		if e.Connection != nil {
			s.conn = *e.Connection
			s.connVersion++
			s.state, s.schema = Untested, Schema{}
		}
		if e.AllowedTables != nil {
			s.tables = *e.AllowedTables
		}
	case *DataSourceGrantsSet:
		s.grants = e.Grants
	case *DataSourceTested:
		if e.ConnectionVersion != s.connVersion {
			return // a test of a connection since replaced
		}
		if e.OK {
			s.state, s.schema = Ready, e.Schema
		} else {
			s.state = Failing
		}
	case *DataSourceDeleted:
		s.deleted = true
	}
}

// Create decides a new source. conn must already hold the password sealed.
func Create(id, name string, kind Kind, conn Connection, tables []AllowedTable) ([]domain.Event, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: a data source needs an id", domain.ErrInvalid)
	}
	if err := domain.CheckName("name", name); err != nil {
		return nil, err
	}
	conn, err := NormalizeConnection(kind, conn)
	if err != nil {
		return nil, err
	}
	tables, err = NormalizeAllowedTables(tables)
	if err != nil {
		return nil, err
	}
	return []domain.Event{&DataSourceCreated{ID: id, Name: name, Kind: kind, Connection: conn, AllowedTables: tables}}, nil
}

// Update decides changing the given fields (nil leaves a field as is). A
// connection given replaces the current one whole.
func (s *DataSource) Update(name *string, conn *Connection, tables *[]AllowedTable) ([]domain.Event, error) {
	if err := s.mustExist(); err != nil {
		return nil, err
	}
	var e DataSourceUpdated
	if name != nil && *name != s.name {
		if err := domain.CheckName("name", *name); err != nil {
			return nil, err
		}
		e.Name = name
	}
	if conn != nil {
		c, err := NormalizeConnection(s.kind, *conn)
		if err != nil {
			return nil, err
		}
		if !sameConnection(c, s.conn) {
			e.Connection = &c
		}
	}
	if tables != nil {
		t, err := NormalizeAllowedTables(*tables)
		if err != nil {
			return nil, err
		}
		if !slices.EqualFunc(t, s.tables, sameTable) {
			e.AllowedTables = &t
		}
	}
	if e.Name == nil && e.Connection == nil && e.AllowedTables == nil {
		return nil, nil
	}
	return []domain.Event{&e}, nil
}

// SetGrants decides replacing the grants.
func (s *DataSource) SetGrants(grants []Grant) ([]domain.Event, error) {
	if err := s.mustExist(); err != nil {
		return nil, err
	}
	normalized, err := NormalizeGrants(grants)
	if err != nil {
		return nil, err
	}
	if slices.EqualFunc(normalized, s.grants, func(a, b Grant) bool {
		return a.Subject == b.Subject && slices.Equal(a.Permissions, b.Permissions)
	}) {
		return nil, nil
	}
	return []domain.Event{&DataSourceGrantsSet{Grants: normalized}}, nil
}

// RecordTest decides recording a connection test of connection version
// version. A test of a connection since replaced records nothing.
func (s *DataSource) RecordTest(version int, ok bool, testErr string, schema Schema) ([]domain.Event, error) {
	if err := s.mustExist(); err != nil {
		return nil, err
	}
	if version != s.connVersion {
		return nil, nil
	}
	if ok {
		testErr = ""
		if reason := snapshotTooLarge(schema); reason != "" {
			ok, testErr = false, reason
		}
	}
	if !ok {
		if testErr == "" {
			testErr = "the connection failed"
		}
		schema = Schema{}
	}
	return []domain.Event{&DataSourceTested{OK: ok, Error: domain.Clip(testErr, 500), Schema: schema, ConnectionVersion: version}}, nil
}

// snapshotTooLarge says why a schema snapshot is too large to record, or
// "". A connection that shows that much of a database is a role with too
// much reach: the test fails and asks for a narrower one.
func snapshotTooLarge(schema Schema) string {
	if len(schema.Tables) > MaxSnapshotTables {
		return fmt.Sprintf("the connecting user can read %d tables, more than %d: give Palisade a role that sees only what the source should expose", len(schema.Tables), MaxSnapshotTables)
	}
	for _, t := range schema.Tables {
		if len(t.Columns) > MaxColumns {
			return fmt.Sprintf("table %.80q has %d columns, more than %d", t.Name, len(t.Columns), MaxColumns)
		}
	}
	return ""
}

// Delete decides deleting the source.
func (s *DataSource) Delete() ([]domain.Event, error) {
	if err := s.mustExist(); err != nil {
		return nil, err
	}
	return []domain.Event{&DataSourceDeleted{}}, nil
}

// MustExist refuses a source that was never created or is deleted.
func (s *DataSource) MustExist() error { return s.mustExist() }

func (s *DataSource) mustExist() error {
	if !s.Exists() {
		return fmt.Errorf("%w: data source", domain.ErrNotFound)
	}
	return nil
}

func sameConnection(a, b Connection) bool {
	if a.Host != b.Host || a.Port != b.Port || a.Database != b.Database || a.User != b.User ||
		a.Path != b.Path || a.SealedPassword != b.SealedPassword || len(a.Params) != len(b.Params) {
		return false
	}
	for k, v := range a.Params {
		if w, ok := b.Params[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameTable(a, b AllowedTable) bool {
	return a.Name == b.Name && slices.Equal(a.Columns, b.Columns)
}

// Resource returns what access.Decide needs to judge an action on a source
// of org with grants. A source is always restricted: with no grants only
// its managers may act on it.
func Resource(orgID string, grants []Grant) access.Resource {
	res := access.Resource{OrgID: orgID, Restricted: true}
	for _, g := range grants {
		if grant, ok := access.ParseGrant(g.Subject, g.Permissions); ok {
			res.Grants = append(res.Grants, grant)
		}
	}
	return res
}

// DecideQuery says whether p may query a source of res: p holds
// datasources:query (its roles or service account list, narrowed by its
// token's scope) and either a grant giving datasources:query names p (for
// a bot or a process, its invoker), or p manages data sources itself (an
// owner or admin acting directly; a delegated principal never queries as a
// manager, and a token scoped without datasources:query never queries).
func DecideQuery(p access.Principal, res access.Resource) access.Decision {
	d := access.Decide(p, access.DatasourcesQuery, res)
	if d.Allowed || d.Code != access.ReasonNoGrant || len(p.OnBehalfOf) > 0 {
		return d
	}
	if m := access.Decide(p, access.DatasourcesManage, res); m.Allowed {
		return m
	}
	return d
}
