package datasources

import "github.com/palisadehq/palisade/domain"

// Category is the stream category of data sources.
const Category = "datasource"

// Kind names the database a source connects to.
type Kind string

// The kinds of data sources.
const (
	Postgres Kind = "postgres"
	MySQL    Kind = "mysql" // MySQL and MariaDB
	SQLite   Kind = "sqlite"
)

// Connection says where a source connects. The password is sealed with the
// organization's data key before it gets here; a connection never holds it
// in clear.
type Connection struct {
	Host     string            `json:"host,omitempty" audit:"record"`
	Port     int               `json:"port,omitempty"`
	Database string            `json:"database,omitempty" audit:"record"`
	User     string            `json:"user,omitempty" audit:"record"`
	Params   map[string]string `json:"params,omitempty" audit:"record"`
	// Path is a SQLite file, relative to the configured SQLite root.
	Path string `json:"path,omitempty" audit:"record"`
	// SealedPassword is the password sealed for the organization and this
	// source (sealing.Sealed in its text form); empty when there is none.
	SealedPassword string `json:"sealed_password,omitempty" audit:"content"`
}

// AllowedTable is one table a source exposes. With no Columns every column
// of the table may be read; with some, only those.
type AllowedTable struct {
	Name    string   `json:"name" audit:"record"`
	Columns []string `json:"columns,omitempty" audit:"record"`
}

// Grant gives a subject ("user:SUB", "role:ROLE" or "service:ID")
// permissions on one source; the only one today is datasources:query.
type Grant struct {
	Subject     string   `json:"subject" audit:"record"`
	Permissions []string `json:"permissions" audit:"record"`
}

// Column is one column of a schema snapshot.
type Column struct {
	Name string `json:"name" audit:"record"`
	Type string `json:"type" audit:"record"`
}

// Table is one table of a schema snapshot.
type Table struct {
	Name    string   `json:"name" audit:"record"`
	Columns []Column `json:"columns" audit:"record"`
}

// Schema is what a connection test saw of the database: the tables the
// connecting user can read, with their columns.
type Schema struct {
	Tables []Table `json:"tables" audit:"record"`
}

// DataSourceCreated starts a source's stream.
type DataSourceCreated struct {
	ID            string         `json:"id" audit:"record"`
	Name          string         `json:"name" audit:"record"`
	Kind          Kind           `json:"kind" audit:"record"`
	Connection    Connection     `json:"connection"`
	AllowedTables []AllowedTable `json:"allowed_tables"`
}

// DataSourceUpdated records changed fields; nil fields did not change. A
// new connection replaces the old one whole (its password included) and
// makes the source untested again.
type DataSourceUpdated struct {
	Name          *string         `json:"name,omitempty" audit:"record"`
	Connection    *Connection     `json:"connection,omitempty"`
	AllowedTables *[]AllowedTable `json:"allowed_tables,omitempty"`
}

// DataSourceGrantsSet replaces the grants; none means only the members who
// manage data sources may query it.
type DataSourceGrantsSet struct {
	Grants []Grant `json:"grants"`
}

// DataSourceTested records a connection test: whether it connected, the
// database's error if not (never the password), and the schema it saw.
type DataSourceTested struct {
	OK     bool   `json:"ok" audit:"record"`
	Error  string `json:"error,omitempty" audit:"record"`
	Schema Schema `json:"schema"`
	// ConnectionVersion is the version of the connection tested, so that
	// a test of a connection since replaced does not mark the new one.
	ConnectionVersion int `json:"connection_version"`
}

// DataSourceDeleted records that a source is gone: no query, test or
// change is accepted afterwards.
type DataSourceDeleted struct{}

func (DataSourceCreated) EventType() string   { return "DataSourceCreated" }
func (DataSourceUpdated) EventType() string   { return "DataSourceUpdated" }
func (DataSourceGrantsSet) EventType() string { return "DataSourceGrantsSet" }
func (DataSourceTested) EventType() string    { return "DataSourceTested" }
func (DataSourceDeleted) EventType() string   { return "DataSourceDeleted" }

// Events returns one value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{&DataSourceCreated{}, &DataSourceUpdated{}, &DataSourceGrantsSet{}, &DataSourceTested{}, &DataSourceDeleted{}}
}

// PasswordPurpose is the purpose a source's password is sealed for: it
// binds the sealed value to this source, so it opens for no other.
func PasswordPurpose(sourceID string) string { return "datasource:" + sourceID + ":password" }
