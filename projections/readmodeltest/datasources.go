package readmodeltest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// runDataSources runs the cases of the data source read model: the port's
// own contract, and the projection folding a source's story through it.
func runDataSources(t *testing.T, newModels func(t *testing.T) Models) {
	models := func(t *testing.T) Models {
		t.Helper()
		m := newModels(t)
		if m.DataSources == nil {
			t.Skip("no data source read model in this suite's Models")
		}
		return m
	}

	t.Run("DataSourcesZeroScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		var zero access.Scope
		for name, err := range map[string]error{
			"DataSource":  first(m.DataSources.DataSource(ctx, zero, "ds-1")),
			"DataSources": first(m.DataSources.DataSources(ctx, zero, projections.Page{})),
			"PutDataSource": m.write(ctx, func(ctx context.Context) error {
				return m.DataSources.PutDataSource(ctx, zero, projections.DataSource{ID: "ds-1"})
			}),
			"DeleteDataSource": m.write(ctx, func(ctx context.Context) error {
				return m.DataSources.DeleteDataSource(ctx, zero, "ds-1")
			}),
		} {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}
		if _, _, err := m.DataSources.SourceGrants(ctx, "", "ds-1"); !errors.Is(err, access.ErrNoScope) {
			t.Errorf("SourceGrants without an org: %v, want ErrNoScope", err)
		}
	})

	t.Run("DataSourcesRoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		full := projections.DataSource{
			ID: "ds-1", Name: "Sales", Kind: "postgres",
			Connection: projections.DataSourceConnection{Host: "db.internal", Port: 5432, Database: "sales", User: "reader",
				Params: map[string]string{"sslmode": "require"}, PasswordSet: true},
			AllowedTables: []datasources.AllowedTable{{Name: "orders", Columns: []string{"id", "total"}}, {Name: "regions"}},
			Grants:        []datasources.Grant{{Subject: "role:analyst", Permissions: []string{"datasources:query"}}},
			State:         string(datasources.Failing),
			Schema: &datasources.Schema{Tables: []datasources.Table{{Name: "orders", Columns: []datasources.Column{
				{Name: "id", Type: "bigint"}, {Name: "total", Type: "numeric"}}}}},
			LastTest:  &projections.DataSourceTestView{OK: false, Error: "connection refused \u0000", At: at.Add(time.Second)},
			CreatedBy: "alice", CreatedAt: at, UpdatedAt: at.Add(time.Minute), Version: 4, ConnectionVersion: 2,
		}
		bare := projections.DataSource{ID: "ds-2", Name: "Local", Kind: "sqlite",
			Connection:    projections.DataSourceConnection{Path: "shop/sales.db"},
			AllowedTables: []datasources.AllowedTable{}, Grants: []datasources.Grant{}, State: string(datasources.Untested),
			CreatedBy: "alice", CreatedAt: at, UpdatedAt: at, ConnectionVersion: 1}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return errors.Join(m.DataSources.PutDataSource(ctx, a, full), m.DataSources.PutDataSource(ctx, a, bare))
		}))
		for _, want := range []projections.DataSource{full, bare} {
			got, err := m.DataSources.DataSource(ctx, a, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("DataSource(%s) = %#v, %v\nwant %#v", want.ID, got, err, want)
			}
			if _, err := m.DataSources.DataSource(ctx, b, want.ID); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("org-b reads org-a's source %s: %v", want.ID, err)
			}
		}
		grants, exists, err := m.DataSources.SourceGrants(ctx, "org-a", "ds-1")
		if err != nil || !exists || !reflect.DeepEqual(grants, full.Grants) {
			t.Errorf("SourceGrants(org-a, ds-1) = %v, %v, %v", grants, exists, err)
		}
		if grants, exists, err := m.DataSources.SourceGrants(ctx, "org-b", "ds-1"); err != nil || exists || len(grants) != 0 {
			t.Errorf("SourceGrants(org-b, ds-1) = %v, %v, %v; want nothing", grants, exists, err)
		}
		// Returned records are copies.
		got, _ := m.DataSources.DataSource(ctx, a, "ds-1")
		got.Grants[0].Permissions[0] = "datasources:manage"
		got.AllowedTables[0].Columns[0] = "salary"
		got.Connection.Params["sslmode"] = "disable"
		got.Schema.Tables[0].Columns[0].Name = "x"
		got.LastTest.OK = true
		if again, _ := m.DataSources.DataSource(ctx, a, "ds-1"); !reflect.DeepEqual(again, full) {
			t.Fatal("a returned data source aliases the stored one")
		}
		list, err := m.DataSources.DataSources(ctx, a, projections.Page{})
		if err != nil || !reflect.DeepEqual(list, []projections.DataSource{full, bare}) {
			t.Fatalf("DataSources = %#v, %v", list, err)
		}
		if list, err := m.DataSources.DataSources(ctx, a, projections.Page{After: "ds-1", Limit: 1}); err != nil || len(list) != 1 || list[0].ID != "ds-2" {
			t.Fatalf("DataSources after ds-1 = %#v, %v", list, err)
		}
		if list, err := m.DataSources.DataSources(ctx, b, projections.Page{}); err != nil || list == nil || len(list) != 0 {
			t.Fatalf("org-b lists %#v, %v; want an empty list", list, err)
		}
		// org-b cannot delete org-a's source; org-a can.
		must(t, m.write(ctx, func(ctx context.Context) error { return m.DataSources.DeleteDataSource(ctx, b, "ds-1") }))
		if _, err := m.DataSources.DataSource(ctx, a, "ds-1"); err != nil {
			t.Fatalf("org-b's delete removed org-a's source: %v", err)
		}
		must(t, m.write(ctx, func(ctx context.Context) error { return m.DataSources.DeleteDataSource(ctx, a, "ds-1") }))
		if _, err := m.DataSources.DataSource(ctx, a, "ds-1"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("deleted source: %v", err)
		}
		if _, exists, err := m.DataSources.SourceGrants(ctx, "org-a", "ds-1"); err != nil || exists {
			t.Fatalf("SourceGrants of a deleted source: exists %v, %v", exists, err)
		}
	})

	t.Run("DataSourceProjectionFoldsASource", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		log, want := sourceLog(t)
		foldSources(t, m, log, 0)
		got, err := m.DataSources.DataSource(ctx, scope(t, "org-a"), "ds-1")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("folded source = %#v, %v\nwant %#v", got, err, want)
		}
		if _, err := m.DataSources.DataSource(ctx, scope(t, "org-a"), "ds-gone"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("a deleted source is still read: %v", err)
		}
		if got, err := m.DataSources.DataSource(ctx, scope(t, "org-b"), "ds-1"); err != nil || got.Name != "Mallory's" {
			t.Fatalf("org-b's ds-1 = %#v, %v", got, err)
		}
		// No sealed password reaches the read model.
		raw, _ := json.Marshal(got)
		if strings.Contains(string(raw), "sealed:") {
			t.Fatalf("the read model holds a sealed password: %s", raw)
		}
		for _, after := range []uint64{0, 2, 5, uint64(len(log.envs) - 1)} {
			foldSources(t, m, log, after)
			if got, err := m.DataSources.DataSource(ctx, scope(t, "org-a"), "ds-1"); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("after redelivering the events after %d: %#v, %v", after, got, err)
			}
		}
	})
}

// sourceLog is the story of org-a's ds-1 (created, tested, renamed, its
// connection replaced, a stale test of the old connection, a good test,
// granted), with org-b's own ds-1 and a deleted ds-gone interleaved; and
// what folding it makes of ds-1.
func sourceLog(t *testing.T) (*sliceLog, projections.DataSource) {
	t.Helper()
	log := &sliceLog{}
	add := func(org, id string, e domain.Event) {
		log.add(t, eventstore.MustStreamName(datasources.Category, org, id), alice, e)
	}
	sealed := "sealed:v1:1:bm9uY2U=:Y2lwaGVy"
	pg := datasources.Connection{Host: "db1", Port: 5432, Database: "sales", User: "reader", SealedPassword: sealed}
	tables := []datasources.AllowedTable{{Name: "orders"}}
	schema := datasources.Schema{Tables: []datasources.Table{{Name: "orders", Columns: []datasources.Column{{Name: "id", Type: "integer"}}}}}
	add("org-a", "ds-1", &datasources.DataSourceCreated{ID: "ds-1", Name: "Sales", Kind: datasources.Postgres, Connection: pg, AllowedTables: tables})
	add("org-b", "ds-1", &datasources.DataSourceCreated{ID: "ds-1", Name: "Mallory's", Kind: datasources.SQLite,
		Connection: datasources.Connection{Path: "m.db"}, AllowedTables: tables})
	add("org-a", "ds-1", &datasources.DataSourceTested{OK: true, Schema: schema, ConnectionVersion: 1})
	name := "Sales (EU)"
	next := datasources.Connection{Host: "db2", Port: 5433, Database: "sales", User: "reader"}
	add("org-a", "ds-1", &datasources.DataSourceUpdated{Name: &name, Connection: &next})
	add("org-a", "ds-gone", &datasources.DataSourceCreated{ID: "ds-gone", Name: "Gone", Kind: datasources.SQLite,
		Connection: datasources.Connection{Path: "g.db"}, AllowedTables: tables})
	add("org-a", "ds-1", &datasources.DataSourceTested{OK: true, Schema: schema, ConnectionVersion: 1}) // stale
	add("org-a", "ds-1", &datasources.DataSourceTested{OK: false, Error: "no route to host", ConnectionVersion: 2})
	add("org-a", "ds-gone", &datasources.DataSourceDeleted{})
	grants := []datasources.Grant{{Subject: "user:bob", Permissions: []string{"datasources:query"}}}
	add("org-a", "ds-1", &datasources.DataSourceGrantsSet{Grants: grants})
	sec := func(n int) time.Time { return at.Add(time.Duration(n) * time.Second) }
	return log, projections.DataSource{
		ID: "ds-1", Name: name, Kind: "postgres",
		Connection:    projections.DataSourceConnection{Host: "db2", Port: 5433, Database: "sales", User: "reader"},
		AllowedTables: tables, Grants: grants, State: string(datasources.Failing),
		LastTest:  &projections.DataSourceTestView{Error: "no route to host", At: sec(7)},
		CreatedBy: "alice", CreatedAt: sec(1), UpdatedAt: sec(9), Version: 5, ConnectionVersion: 2,
	}
}

// foldSources applies the events of log after position after to m through
// a fresh DataSourceProjection, one unit of work per batch.
func foldSources(t *testing.T, m Models, log *sliceLog, after uint64) {
	t.Helper()
	checkpoints := &unitCheckpoints{m: m, position: after}
	engine := consumer.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), checkpoints,
		projections.DataSourceProjection(m.DataSources))
	if _, err := engine.Rebuild(context.Background(), log); err != nil {
		t.Fatalf("fold after %d: %v", after, err)
	}
}
