package datasources_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
)

const org = "org-a"

var (
	pgConn = datasources.Connection{Host: "db.internal", Database: "sales", User: "reader", SealedPassword: "v1.sealed"}
	tables = []datasources.AllowedTable{{Name: "orders", Columns: []string{"total", "id"}}, {Name: "customers"}}
)

// apply folds decided events into s, failing the test on a decision error.
func apply(t *testing.T, s *datasources.DataSource, evs []domain.Event, err error) []domain.Event {
	t.Helper()
	if err != nil {
		t.Fatalf("decision refused: %v", err)
	}
	for _, e := range evs {
		s.Apply(e)
	}
	return evs
}

// created returns a source created with pgConn and tables.
func created(t *testing.T) *datasources.DataSource {
	t.Helper()
	var s datasources.DataSource
	evs, err := datasources.Create("ds-1", "Sales", datasources.Postgres, pgConn, tables)
	apply(t, &s, evs, err)
	return &s
}

func TestCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		id     string
		dsName string
		kind   datasources.Kind
		conn   datasources.Connection
		tables []datasources.AllowedTable
		ok     bool
	}{
		{"postgres", "ds-1", "Sales", datasources.Postgres, pgConn, tables, true},
		{"mysql", "ds-1", "Sales", datasources.MySQL, pgConn, tables, true},
		{"sqlite", "ds-1", "Local", datasources.SQLite, datasources.Connection{Path: "shop/sales.db"}, tables, true},
		{"no id", "", "Sales", datasources.Postgres, pgConn, tables, false},
		{"blank name", "ds-1", "  ", datasources.Postgres, pgConn, tables, false},
		{"unknown kind", "ds-1", "Sales", "oracle", pgConn, tables, false},
		{"no tables", "ds-1", "Sales", datasources.Postgres, pgConn, nil, false},
		{"sqlite with a host", "ds-1", "Local", datasources.SQLite, datasources.Connection{Path: "a.db", Host: "x"}, tables, false},
		{"postgres with a path", "ds-1", "Sales", datasources.Postgres, datasources.Connection{Host: "h", Database: "d", User: "u", Path: "a.db"}, tables, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := datasources.Create(tt.id, tt.dsName, tt.kind, tt.conn, tt.tables)
			if !tt.ok {
				if !errors.Is(err, domain.ErrInvalid) || evs != nil {
					t.Fatalf("got %v, %v; want ErrInvalid and no event", evs, err)
				}
				return
			}
			var s datasources.DataSource
			apply(t, &s, evs, err)
			if !s.Exists() || s.ID() != tt.id || s.Name() != tt.dsName || s.Kind() != tt.kind {
				t.Fatalf("source %+v after %v", s, evs)
			}
			if s.State() != datasources.Untested || s.ConnectionVersion() != 1 || len(s.Grants()) != 0 {
				t.Errorf("new source: state %s, connection version %d, grants %v", s.State(), s.ConnectionVersion(), s.Grants())
			}
			if got := s.AllowedTables(); len(got) != 2 || got[0].Name != "customers" || strings.Join(got[1].Columns, ",") != "id,total" {
				t.Errorf("allowed tables not normalized: %+v", got)
			}
		})
	}
	s := created(t)
	if c := s.Connection(); c.Port != 5432 || c.SealedPassword != pgConn.SealedPassword {
		t.Errorf("connection %+v: want the default port and the sealed password kept", c)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	newConn := pgConn
	newConn.Host = "db2.internal"
	samePort := pgConn
	samePort.Port = 5432 // normalizes to the current connection
	newTables := []datasources.AllowedTable{{Name: "orders"}}
	sameTables := []datasources.AllowedTable{{Name: "customers"}, {Name: "orders", Columns: []string{"id", "total", "id"}}}
	badConn := pgConn
	badConn.Host = "db internal"
	tests := []struct {
		name    string
		dsName  *string
		conn    *datasources.Connection
		tables  *[]datasources.AllowedTable
		err     error
		events  int
		version int
	}{
		{"nothing", nil, nil, nil, nil, 0, 1},
		{"same name", str("Sales"), nil, nil, nil, 0, 1},
		{"rename", str("Revenue"), nil, nil, nil, 1, 1},
		{"bad name", str(""), nil, nil, domain.ErrInvalid, 0, 1},
		{"same connection once normalized", nil, &samePort, nil, nil, 0, 1},
		{"new connection", nil, &newConn, nil, nil, 1, 2},
		{"bad connection", nil, &badConn, nil, domain.ErrInvalid, 0, 1},
		{"same tables in another order", nil, nil, &sameTables, nil, 0, 1},
		{"new tables", nil, nil, &newTables, nil, 1, 1},
		{"empty tables", nil, nil, &[]datasources.AllowedTable{}, domain.ErrInvalid, 0, 1},
		{"all at once", str("Revenue"), &newConn, &newTables, nil, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := created(t)
			// A tested source becomes untested with a new connection.
			applyTo(t, s)(s.RecordTest(1, true, "", datasources.Schema{Tables: []datasources.Table{{Name: "orders"}}}))
			evs, err := s.Update(tt.dsName, tt.conn, tt.tables)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if len(evs) != tt.events {
				t.Fatalf("%d events %v, want %d", len(evs), evs, tt.events)
			}
			apply(t, s, evs, nil)
			if s.ConnectionVersion() != tt.version {
				t.Errorf("connection version %d, want %d", s.ConnectionVersion(), tt.version)
			}
			if tt.version == 2 && (s.State() != datasources.Untested || len(s.Schema().Tables) != 0 || s.Connection().Host != "db2.internal") {
				t.Errorf("after a new connection: state %s, schema %+v, connection %+v", s.State(), s.Schema(), s.Connection())
			}
			if tt.version == 1 && s.State() != datasources.Ready {
				t.Errorf("state %s without a new connection, want ready", s.State())
			}
			if tt.dsName != nil && tt.err == nil && s.Name() != *tt.dsName {
				t.Errorf("name %q, want %q", s.Name(), *tt.dsName)
			}
		})
	}
}

// applyTo returns apply for s, to take a decision's results whole.
func applyTo(t *testing.T, s *datasources.DataSource) func([]domain.Event, error) []domain.Event {
	return func(evs []domain.Event, err error) []domain.Event {
		t.Helper()
		return apply(t, s, evs, err)
	}
}

func TestSetGrants(t *testing.T) {
	t.Parallel()
	q := []string{"datasources:query"}
	tests := []struct {
		name   string
		grants []datasources.Grant
		err    error
		want   []string // subjects after, sorted
	}{
		{"none on none changes nothing", nil, nil, nil},
		{"user, role and service", []datasources.Grant{{"user:ann", q}, {"service:sa-1", q}, {"role:analyst", q}}, nil, []string{"role:analyst", "service:sa-1", "user:ann"}},
		{"duplicates merged", []datasources.Grant{{"user:ann", q}, {"user:ann", q}}, nil, []string{"user:ann"}},
		{"unknown role", []datasources.Grant{{"role:wizard", q}}, domain.ErrInvalid, nil},
		{"other permission", []datasources.Grant{{"user:ann", []string{"datasources:manage"}}}, domain.ErrInvalid, nil},
		{"no permission", []datasources.Grant{{"user:ann", nil}}, domain.ErrInvalid, nil},
		{"bot subject", []datasources.Grant{{"bot:b-1", q}}, domain.ErrInvalid, nil},
		{"bad user", []datasources.Grant{{"user:ann smith", q}}, domain.ErrInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := created(t)
			evs, err := s.SetGrants(tt.grants)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			apply(t, s, evs, nil)
			var got []string
			for _, g := range s.Grants() {
				got = append(got, g.Subject)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("grants %v, want %v", got, tt.want)
			}
			if again, err := s.SetGrants(tt.grants); err == nil && len(again) != 0 {
				t.Errorf("setting the same grants again decided %v", again)
			}
		})
	}
}

func TestRecordTest(t *testing.T) {
	t.Parallel()
	schema := datasources.Schema{Tables: []datasources.Table{{Name: "orders", Columns: []datasources.Column{{Name: "id", Type: "integer"}}}}}
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name    string
		version int
		ok      bool
		err     string
		state   datasources.State
		wantErr string
		tables  int
	}{
		{"connected", 1, true, "", datasources.Ready, "", 1},
		{"connected, error dropped", 1, true, "noise", datasources.Ready, "", 1},
		{"failed", 1, false, "connection refused", datasources.Failing, "connection refused", 0},
		{"failed without a reason", 1, false, "", datasources.Failing, "the connection failed", 0},
		{"older connection", 0, true, "", datasources.Untested, "", 0},
		{"future connection", 2, false, "x", datasources.Untested, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := created(t)
			evs, err := s.RecordTest(tt.version, tt.ok, tt.err, schema)
			apply(t, s, evs, err)
			if s.State() != tt.state || len(s.Schema().Tables) != tt.tables {
				t.Fatalf("state %s with %d tables, want %s with %d", s.State(), len(s.Schema().Tables), tt.state, tt.tables)
			}
			if tt.version != 1 {
				if len(evs) != 0 {
					t.Fatalf("a test of another connection version decided %v", evs)
				}
				return
			}
			if got := evs[0].(*datasources.DataSourceTested).Error; got != tt.wantErr {
				t.Errorf("error %q, want %q", got, tt.wantErr)
			}
		})
	}

	t.Run("a snapshot too large to record fails the test", func(t *testing.T) {
		t.Parallel()
		wide := datasources.Schema{Tables: make([]datasources.Table, datasources.MaxSnapshotTables+1)}
		for i := range wide.Tables {
			wide.Tables[i].Name = fmt.Sprintf("t%d", i)
		}
		tall := datasources.Schema{Tables: []datasources.Table{{Name: "t", Columns: make([]datasources.Column, datasources.MaxColumns+1)}}}
		for _, big := range []datasources.Schema{wide, tall} {
			s := created(t)
			evs, err := s.RecordTest(1, true, "", big)
			apply(t, s, evs, err)
			tested := evs[0].(*datasources.DataSourceTested)
			if s.State() != datasources.Failing || tested.OK || len(tested.Schema.Tables) != 0 || !strings.Contains(tested.Error, "more than") {
				t.Fatalf("recorded %+v, state %s", tested, s.State())
			}
		}
	})

	t.Run("stale test event does not change state", func(t *testing.T) {
		t.Parallel()
		s := created(t)
		applyTo(t, s)(s.RecordTest(1, true, "", schema))
		newConn := pgConn
		newConn.Host = "db2.internal"
		applyTo(t, s)(s.Update(nil, &newConn, nil))
		// A test of version 1 that finished after the change was recorded.
		s.Apply(&datasources.DataSourceTested{OK: true, Schema: schema, ConnectionVersion: 1})
		if s.State() != datasources.Untested || len(s.Schema().Tables) != 0 {
			t.Errorf("a test of the replaced connection set state %s, schema %+v", s.State(), s.Schema())
		}
	})

	t.Run("long error clipped on a rune boundary", func(t *testing.T) {
		t.Parallel()
		s := created(t)
		evs, err := s.RecordTest(1, false, long, schema)
		if err != nil {
			t.Fatal(err)
		}
		got := evs[0].(*datasources.DataSourceTested).Error
		if len(got) > 500 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
			t.Errorf("clipped to %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got)
		}
	})
}

func TestDeleteAndMissing(t *testing.T) {
	t.Parallel()
	s := created(t)
	applyTo(t, s)(s.Delete())
	if s.Exists() {
		t.Fatal("deleted source still exists")
	}
	var never datasources.DataSource
	for _, src := range []*datasources.DataSource{s, &never} {
		name := "Other"
		decisions := map[string]func() ([]domain.Event, error){
			"update":     func() ([]domain.Event, error) { return src.Update(&name, nil, nil) },
			"grants":     func() ([]domain.Event, error) { return src.SetGrants(nil) },
			"test":       func() ([]domain.Event, error) { return src.RecordTest(1, true, "", datasources.Schema{}) },
			"delete":     src.Delete,
			"must exist": func() ([]domain.Event, error) { return nil, src.MustExist() },
		}
		for what, decide := range decisions {
			if evs, err := decide(); !errors.Is(err, domain.ErrNotFound) || evs != nil {
				t.Errorf("%s of a missing source: %v, %v; want ErrNotFound", what, evs, err)
			}
		}
	}
}

func TestDecideQuery(t *testing.T) {
	t.Parallel()
	q := []string{"datasources:query"}
	grants := []datasources.Grant{{"user:ann", q}, {"role:viewer", q}, {"service:sa-1", q}}
	owner := access.NewUser(org, "olga", []access.Role{access.RoleOwner}, nil)
	admin := access.NewUser(org, "adam", []access.Role{access.RoleAdmin}, nil)
	ann := access.NewUser(org, "ann", []access.Role{access.RoleAnalyst}, nil)
	bob := access.NewUser(org, "bob", []access.Role{access.RoleAnalyst}, nil)
	viewer := access.NewUser(org, "vic", []access.Role{access.RoleViewer}, nil)
	sa := access.NewServiceAccount(org, "sa-1", access.NewPermissionSet(access.DatasourcesQuery), nil)
	sa2 := access.NewServiceAccount(org, "sa-2", access.NewPermissionSet(access.DatasourcesQuery), nil)
	saManager := access.NewServiceAccount(org, "sa-1", access.NewPermissionSet(access.DatasourcesManage), nil)
	botPerms := access.NewPermissionSet(access.DatasourcesQuery, access.AnalyticsRun)
	botForAnn := access.Delegate(ann, access.KindBot, "bot-1", botPerms)
	botForBob := access.Delegate(bob, access.KindBot, "bot-1", botPerms)
	botForOwner := access.Delegate(owner, access.KindBot, "bot-1", botPerms)
	botNamedByGrant := access.Delegate(bob, access.KindBot, "ann", botPerms) // a bot whose id looks like a granted user
	manageOnly := access.NewPermissionSet(access.DatasourcesManage)
	scopedOwner := access.NewUser(org, "olga", []access.Role{access.RoleOwner}, &manageOnly)
	otherOrgAnn := access.NewUser("org-b", "ann", []access.Role{access.RoleOwner}, nil)

	tests := []struct {
		name   string
		p      access.Principal
		grants []datasources.Grant
		allow  bool
	}{
		{"no grants: analyst denied", ann, nil, false},
		{"no grants: service account denied", sa, nil, false},
		{"no grants: owner manages", owner, nil, true},
		{"no grants: admin manages", admin, nil, true},
		{"no grants: bot for the owner denied", botForOwner, nil, false},
		{"no grants: owner token scoped without query denied", scopedOwner, nil, false},
		{"no grants: service account that manages denied", saManager, nil, false},
		{"user grant allows", ann, grants, true},
		{"user grant names someone else", bob, grants, false},
		{"role grant cannot give what the role lacks", viewer, []datasources.Grant{{"role:viewer", q}}, false},
		{"role grant to the member's role", bob, []datasources.Grant{{"role:analyst", q}}, true},
		{"service grant allows", sa, grants, true},
		{"service grant names another", sa2, grants, false},
		{"bot for a granted user", botForAnn, grants, true},
		{"bot for a user without grant", botForBob, grants, false},
		{"bot named like a granted user", botNamedByGrant, grants, false},
		{"bot for the owner, owner granted", botForOwner, []datasources.Grant{{"user:olga", q}}, true},
		{"other organization", otherOrgAnn, grants, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := datasources.DecideQuery(tt.p, datasources.Resource(org, tt.grants))
			if d.Allowed != tt.allow {
				t.Errorf("allowed %v (%s), want %v", d.Allowed, d.Reason(), tt.allow)
			}
		})
	}
}

func TestResource(t *testing.T) {
	t.Parallel()
	res := datasources.Resource(org, []datasources.Grant{
		{"user:ann", []string{"datasources:query", "no:such"}},
		{"group:x", []string{"datasources:query"}},
		{"role:analyst", []string{"datasources:query"}},
		{"service:sa-1", []string{"datasources:query"}},
	})
	if !res.Restricted || res.OrgID != org {
		t.Fatalf("resource %+v: want restricted to %s", res, org)
	}
	want := []struct {
		kind  access.GrantSubjectKind
		value string
	}{{access.GrantUser, "ann"}, {access.GrantRole, "analyst"}, {access.GrantService, "sa-1"}}
	if len(res.Grants) != len(want) {
		t.Fatalf("grants %+v, want %d (the unknown subject kind dropped)", res.Grants, len(want))
	}
	for i, w := range want {
		g := res.Grants[i]
		if g.Kind != w.kind || g.Value != w.value || !g.Permissions.Has(access.DatasourcesQuery) || g.Permissions.Len() != 1 {
			t.Errorf("grant %d: %+v, want %v %s with datasources:query only", i, g, w.kind, w.value)
		}
	}
}
