package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/sealing"
)

// Keyring hands out an organization's data key, which seals and opens its
// data sources' passwords (sealing/keyring implements it).
type Keyring interface {
	DataKey(ctx context.Context, orgID string) (sealing.DataKey, error)
	// DataKeyVersion returns an older version, to open what it sealed
	// before a rotation.
	DataKeyVersion(ctx context.Context, orgID string, version uint32) (sealing.DataKey, error)
}

// SourceTester reaches tenants' databases for the data source commands:
// it checks a connection's kind-specific driver parameters before they are
// recorded, and tests a connection, returning what the connecting user can
// read. It is given the password opened, as a sealing.Secret, and must
// never put it in an error.
type SourceTester interface {
	// Validate checks what NormalizeConnection cannot: the driver
	// parameters a kind accepts. Its error is the caller's fault (422).
	Validate(kind datasources.Kind, conn datasources.Connection) error
	// Test connects and returns the schema, or why it could not connect.
	// orgID names the organization whose source it is (a SQLite file is
	// looked up in that organization's directory only).
	Test(ctx context.Context, orgID string, kind datasources.Kind, conn datasources.Connection, password sealing.Secret) (datasources.Schema, error)
}

// DataSources handles the commands of data sources: creating, changing,
// granting, testing and deleting them. Passwords arrive in clear as a
// sealing.Secret and leave this type only sealed for the organization and
// the source (datasources.PasswordPurpose).
type DataSources struct {
	p      *Pipeline
	keys   Keyring
	tester SourceTester
}

// NewDataSources returns the data source handlers over p, sealing with
// keys and reaching databases through tester.
func NewDataSources(p *Pipeline, keys Keyring, tester SourceTester) *DataSources {
	return &DataSources{p: p, keys: keys, tester: tester}
}

func sourceStream(orgID, id string) (eventstore.StreamName, error) {
	return eventstore.NewStreamName(datasources.Category, orgID, id)
}

func newSource() aggregate { return &datasources.DataSource{} }

// ConnectionInput is a connection as a caller gives it: the password in
// clear, nil when not given.
type ConnectionInput struct {
	Host     string
	Port     int
	Database string
	User     string
	Password *sealing.Secret
	Params   map[string]string
	Path     string
}

// DataSourceInput is a new data source.
type DataSourceInput struct {
	Name          string
	Kind          string
	Connection    ConnectionInput
	AllowedTables []datasources.AllowedTable
}

// DataSourceCreated is what creating a data source returns: the source as
// recorded (its password sealed).
type DataSourceCreated struct {
	Result
	DataSource *datasources.DataSourceCreated
}

// DataSourceTest is the outcome of a connection test: whether it
// connected, the database's error if not, and the schema it saw.
type DataSourceTest struct {
	Result
	OK     bool
	Error  string
	Schema datasources.Schema
}

// Create records a new data source of the principal's organization, its
// password sealed with the organization's data key.
func (s *DataSources) Create(ctx context.Context, who access.Principal, in DataSourceInput) (DataSourceCreated, error) {
	p := s.p
	d, err := p.authorize(ctx, who, access.DatasourcesManage, access.OrgResource(who.OrgID), "data-sources")
	if err != nil {
		return DataSourceCreated{}, err
	}
	kind, err := datasources.ParseKind(in.Kind)
	if err != nil {
		return DataSourceCreated{}, err
	}
	id := newResourceID(ctx, who)
	stream, err := sourceStream(who.OrgID, id)
	if err != nil {
		return DataSourceCreated{}, err
	}
	conn, err := s.connection(ctx, who.OrgID, id, kind, in.Connection, "")
	if err != nil {
		return DataSourceCreated{}, err
	}
	res, err := p.create(ctx, who, d, stream, newSource, func(a aggregate) ([]domain.Event, error) {
		if a.(*datasources.DataSource).Exists() {
			return p.existing(ctx, "data source")
		}
		return datasources.Create(id, in.Name, kind, conn, in.AllowedTables)
	})
	if err != nil {
		return DataSourceCreated{}, err
	}
	e, res, err := created[*datasources.DataSourceCreated](ctx, p, stream, res)
	if err != nil {
		return DataSourceCreated{}, err
	}
	return DataSourceCreated{Result: res, DataSource: e}, nil
}

// connection turns a caller's connection into the one recorded: shaped by
// the domain, its driver parameters checked by the tester, and its
// password sealed for org and the source. A connection given without a
// password keeps keep, the sealed password it replaces.
func (s *DataSources) connection(ctx context.Context, orgID, id string, kind datasources.Kind, in ConnectionInput, keep string) (datasources.Connection, error) {
	conn := datasources.Connection{Host: in.Host, Port: in.Port, Database: in.Database, User: in.User, Params: in.Params, Path: in.Path}
	if kind == datasources.SQLite && in.Password != nil && !in.Password.IsZero() {
		return datasources.Connection{}, fmt.Errorf("%w: a sqlite connection has no password", domain.ErrInvalid)
	}
	normalized, err := datasources.NormalizeConnection(kind, conn)
	if err != nil {
		return datasources.Connection{}, err
	}
	if err := s.tester.Validate(kind, normalized); err != nil {
		return datasources.Connection{}, fmt.Errorf("%w: connection: %s", domain.ErrInvalid, redact(err.Error(), in.Password))
	}
	switch {
	case in.Password == nil:
		normalized.SealedPassword = keep
	case !in.Password.IsZero():
		if normalized.SealedPassword, err = s.seal(ctx, orgID, id, *in.Password); err != nil {
			return datasources.Connection{}, err
		}
	}
	return normalized, nil
}

func (s *DataSources) seal(ctx context.Context, orgID, id string, password sealing.Secret) (string, error) {
	key, err := s.keys.DataKey(ctx, orgID)
	if err != nil {
		return "", fmt.Errorf("seal the password: %w", err)
	}
	sealed, err := sealing.Seal(key, orgID, []byte(password.Reveal()), datasources.PasswordPurpose(id))
	if err != nil {
		return "", fmt.Errorf("seal the password: %w", err)
	}
	text, err := sealed.MarshalText()
	if err != nil {
		return "", fmt.Errorf("seal the password: %w", err)
	}
	return string(text), nil
}

// open returns the password a connection holds sealed (zero if none).
func (s *DataSources) open(ctx context.Context, orgID, id string, conn datasources.Connection) (sealing.Secret, error) {
	if conn.SealedPassword == "" {
		return sealing.Secret{}, nil
	}
	var sealed sealing.Sealed
	if err := sealed.UnmarshalText([]byte(conn.SealedPassword)); err != nil {
		return sealing.Secret{}, err
	}
	key, err := s.keys.DataKeyVersion(ctx, orgID, sealed.KeyVersion)
	if err != nil {
		return sealing.Secret{}, err
	}
	plain, err := sealing.Open(key, orgID, sealed, datasources.PasswordPurpose(id))
	if err != nil {
		return sealing.Secret{}, err
	}
	return sealing.NewSecret(string(plain)), nil
}

// load loads a data source of the principal's organization and checks
// action on it. A source the principal may not even see (it neither
// manages data sources nor may query this one) answers exactly like one
// that does not exist; a visible source whose action is refused answers
// forbidden. Both refusals are recorded.
func (s *DataSources) load(ctx context.Context, who access.Principal, id string, action access.Permission) (*datasources.DataSource, access.Decision, error) {
	p := s.p
	stream, err := sourceStream(who.OrgID, id)
	if err != nil {
		return nil, access.Decision{}, fmt.Errorf("%w: data source", domain.ErrNotFound)
	}
	src := &datasources.DataSource{}
	if _, _, err := p.load(ctx, stream, src); err != nil {
		return nil, access.Decision{}, err
	}
	if !src.Exists() {
		return nil, access.Decision{}, fmt.Errorf("%w: data source", domain.ErrNotFound)
	}
	res := datasources.Resource(who.OrgID, src.Grants())
	d := access.Decide(who, action, res)
	if d.Allowed {
		return src, d, nil
	}
	p.RecordDenial(ctx, who, d, "data-sources/"+id)
	if !sourceVisible(who, res) {
		return nil, d, fmt.Errorf("%w: data source", domain.ErrNotFound)
	}
	return nil, d, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
}

// sourceVisible reports whether who may know that a source of res exists:
// it reads data sources and either manages them or may query this one.
func sourceVisible(who access.Principal, res access.Resource) bool {
	if !access.Decide(who, access.DatasourcesRead, access.OrgResource(res.OrgID)).Allowed {
		return false
	}
	return access.Decide(who, access.DatasourcesManage, res).Allowed || datasources.DecideQuery(who, res).Allowed
}

// change runs decide on a source the principal manages.
func (s *DataSources) change(ctx context.Context, who access.Principal, id string, decide func(*datasources.DataSource) ([]domain.Event, error)) (Result, error) {
	p := s.p
	if _, err := p.authorize(ctx, who, access.DatasourcesManage, access.OrgResource(who.OrgID), "data-sources/"+id); err != nil {
		return Result{}, err
	}
	_, d, err := s.load(ctx, who, id, access.DatasourcesManage)
	if err != nil {
		return Result{}, err
	}
	stream, _ := sourceStream(who.OrgID, id)
	return p.execute(ctx, who, d, stream, newSource, func(a aggregate) ([]domain.Event, error) {
		return decide(a.(*datasources.DataSource))
	})
}

// Update changes a source's name, connection or allowed tables (nil leaves
// a field as is). A connection replaces the current one whole, except that
// one given without a password keeps the current sealed password.
func (s *DataSources) Update(ctx context.Context, who access.Principal, id string, name *string, conn *ConnectionInput, tables *[]datasources.AllowedTable) (Result, error) {
	return s.change(ctx, who, id, func(src *datasources.DataSource) ([]domain.Event, error) {
		if err := src.MustExist(); err != nil {
			return nil, err
		}
		var next *datasources.Connection
		if conn != nil {
			c, err := s.connection(ctx, who.OrgID, id, src.Kind(), *conn, src.Connection().SealedPassword)
			if err != nil {
				return nil, err
			}
			next = &c
		}
		return src.Update(name, next, tables)
	})
}

// SetGrants replaces a source's grants.
func (s *DataSources) SetGrants(ctx context.Context, who access.Principal, id string, grants []datasources.Grant) (Result, error) {
	return s.change(ctx, who, id, func(src *datasources.DataSource) ([]domain.Event, error) {
		return src.SetGrants(grants)
	})
}

// Delete deletes a source: nothing may test, query or change it afterwards.
func (s *DataSources) Delete(ctx context.Context, who access.Principal, id string) (Result, error) {
	return s.change(ctx, who, id, func(src *datasources.DataSource) ([]domain.Event, error) {
		return src.Delete()
	})
}

// Test connects to a source with its current connection and records the
// outcome (DataSourceTested): whether it connected, the error without the
// password, and the schema it saw. A refused connection is an outcome, not
// an error of the command.
func (s *DataSources) Test(ctx context.Context, who access.Principal, id string) (DataSourceTest, error) {
	p := s.p
	if _, err := p.authorize(ctx, who, access.DatasourcesManage, access.OrgResource(who.OrgID), "data-sources/"+id+"/test"); err != nil {
		return DataSourceTest{}, err
	}
	src, d, err := s.load(ctx, who, id, access.DatasourcesManage)
	if err != nil {
		return DataSourceTest{}, err
	}
	out := DataSourceTest{}
	conn, version := src.Connection(), src.ConnectionVersion()
	password, err := s.open(ctx, who.OrgID, id, conn)
	if err != nil {
		// Never the sealed value or the key: the operator's cue only.
		out.Error = "the stored password cannot be opened (was the master key changed?)"
	} else {
		schema, err := s.tester.Test(ctx, who.OrgID, src.Kind(), conn, password)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return DataSourceTest{}, err // the caller went away: nothing to record
			}
			out.Error = redact(err.Error(), &password)
		} else {
			out.OK, out.Schema = true, schema
		}
	}
	if out.Schema.Tables == nil {
		out.Schema.Tables = []datasources.Table{}
	}
	stream, _ := sourceStream(who.OrgID, id)
	res, err := p.execute(ctx, who, d, stream, newSource, func(a aggregate) ([]domain.Event, error) {
		return a.(*datasources.DataSource).RecordTest(version, out.OK, out.Error, out.Schema)
	})
	if err != nil {
		return DataSourceTest{}, err
	}
	out.Result = res
	return out, nil
}

// redact removes the password from text, should a driver ever quote it.
func redact(text string, password *sealing.Secret) string {
	if password == nil || password.IsZero() {
		return text
	}
	return strings.ReplaceAll(text, password.Reveal(), sealing.Redacted)
}
