package app_test

import (
	"database/sql"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/sealing"
)

// TestDataSourceWalls runs the real connector (package datasource) behind
// the deployment's walls: a SQLite file under PALISADE_SQLITE_ROOT is
// tested and snapshotted; paths out of the root are refused at creation, a
// symbolic link out of it when tested; the cloud metadata address and an
// address outside PALISADE_DATASOURCE_ALLOWED_NETWORKS fail their tests
// naming the policy, without a connection ever being made.
func TestDataSourceWalls(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	makeDB(t, filepath.Join(outside, "secret.db"))
	// A listener on loopback, which the allow-list below excludes: it
	// must never see a connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) {
		cfg.SQLiteRoot = root
		cfg.DataSourceNetworks = "10.0.0.0/8, 192.168.0.0/16"
	})
	org, owner := h.createOrg("Alpha", "alice")
	// The organization's files are in its own directory of the root.
	makeDB(t, filepath.Join(root, org, "shop", "sales.db"))
	if err := os.Symlink(filepath.Join(outside, "secret.db"), filepath.Join(root, org, "escape.db")); err != nil {
		t.Fatal(err)
	}
	sqlite := func(path string) map[string]any {
		return map[string]any{"name": "Shop", "kind": "sqlite", "connection": map[string]any{"path": path}, "allowed_tables": []string{"sales"}}
	}
	test := func(id string) dsTest {
		t.Helper()
		var res dsTest
		h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+id+"/test", owner, nil).json(t, &res)
		return res
	}

	shop := h.createSource(owner, sqlite("shop/sales.db"))
	res := test(shop.ID)
	if !res.OK || len(res.Schema.Tables) != 2 || res.Schema.Tables[0].Name != "salaries" || res.Schema.Tables[1].Name != "sales" {
		t.Fatalf("test of a SQLite file under the root = %+v", res)
	}
	if got := h.getSource(owner, shop.ID); got.State != "ready" || got.Schema == nil || len(got.Schema.Tables) != 2 {
		t.Fatalf("after the test: %+v", got)
	}

	for _, path := range []string{"../" + filepath.Base(outside) + "/secret.db", "shop/../../x.db", filepath.Join(outside, "secret.db"), "/etc/passwd"} {
		h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/data-sources", owner, sqlite(path))
	}
	escape := h.createSource(owner, sqlite("escape.db"))
	if res := test(escape.ID); res.OK || !strings.Contains(res.Error, "refused") {
		t.Fatalf("test of a symbolic link out of the root = %+v", res)
	}
	missing := h.createSource(owner, sqlite("shop/none.db"))
	if res := test(missing.ID); res.OK {
		t.Fatalf("test of a missing file = %+v", res)
	}

	pg := func(host string, port int) map[string]any {
		return map[string]any{"name": "PG", "kind": "postgres", "allowed_tables": []string{"sales"},
			"connection": map[string]any{"host": host, "port": port, "database": "sales", "user": "reader", "password": "pw"}}
	}
	_, portText, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portText)
	for _, target := range []struct {
		host string
		port int
		want string
	}{
		{"169.254.169.254", 80, "never allowed"},
		{"::ffff:169.254.169.254", 80, "never allowed"},
		{"127.0.0.1", port, "outside the allowed networks"},
		{"localhost", port, "outside the allowed networks"},
	} {
		src := h.createSource(owner, pg(target.host, target.port))
		res := test(src.ID)
		if res.OK || !strings.Contains(res.Error, "policy") || !strings.Contains(res.Error, target.want) {
			t.Errorf("test of %s:%d = %+v, want a refusal by policy (%s)", target.host, target.port, res, target.want)
		}
		if got := h.getSource(owner, src.ID); got.State != "failing" {
			t.Errorf("%s: state %q after a refused test", target.host, got.State)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the loopback listener outside the allowed networks accepted %d connections", n)
	}
}

// TestDataSourceSettingsRefuseToStart: a bad allow-list or master key stops
// the start with a message naming the variable.
func TestDataSourceSettingsRefuseToStart(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		configure func(*app.Config)
		want      string
	}{
		{"allow-list", func(c *app.Config) { c.DataSourceNetworks = "10.1.2.3/8" }, "PALISADE_DATASOURCE_ALLOWED_NETWORKS"},
		{"allow-list", func(c *app.Config) { c.DataSourceNetworks = "10.0.0.0/8,nonsense" }, "PALISADE_DATASOURCE_ALLOWED_NETWORKS"},
		{"master key", func(c *app.Config) { c.MasterKey = sealing.NewSecret("not-a-key") }, "PALISADE_MASTER_KEY"},
	} {
		_, err := openApp(t, t.TempDir(), tt.configure)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: open = %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
}

// makeDB writes a SQLite file with the sales table a source exposes and a
// salaries table it does not.
func makeDB(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE sales (region TEXT, total REAL)`,
		`INSERT INTO sales VALUES ('north', 10), ('south', 20)`,
		`CREATE TABLE salaries (name TEXT, amount REAL)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSQLiteRootMayNotHoldTheDataDirectory: a root that is the data
// directory, or holds it, is refused at start, naming both.
func TestSQLiteRootMayNotHoldTheDataDirectory(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dataDir := filepath.Join(parent, "data")
	for _, root := range []string{dataDir, parent} {
		_, err := openApp(t, dataDir, func(cfg *app.Config) { cfg.SQLiteRoot = root })
		if err == nil || !strings.Contains(err.Error(), "holds the data directory") {
			t.Errorf("SQLite root %s over data directory %s: err = %v, want a refusal", root, dataDir, err)
		}
	}
	// A root beside it is fine.
	a, err := openApp(t, dataDir, func(cfg *app.Config) { cfg.SQLiteRoot = filepath.Join(parent, "sqlite") })
	if err != nil {
		t.Fatalf("a SQLite root beside the data directory: %v", err)
	}
	a.Close()
}

// TestDefaultNetworkPolicyRefusesTheServerItself: with no allow-list, a
// data source on loopback (this machine's PostgreSQL, which trusts local
// connections here) is refused before any connection, naming loopback and
// how to allow it.
func TestDefaultNetworkPolicyRefusesTheServerItself(t *testing.T) {
	t.Parallel()
	pg := sampleSource(t, envDataSourcePG)
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.DataSourceNetworks = "" })
	_, owner := h.createOrg("Alpha", "alice")
	src := h.createSource(owner, map[string]any{"name": "Local", "kind": "postgres",
		"connection":     map[string]any{"host": pg.Host, "port": pg.Port, "database": pg.Database, "user": "postgres"},
		"allowed_tables": []string{"sales"}})
	var res dsTest
	h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+src.ID+"/test", owner, nil).json(t, &res)
	if res.OK || !strings.Contains(res.Error, "loopback") || !strings.Contains(res.Error, "allowed networks") {
		t.Fatalf("a loopback source under the default policy = %+v, want refused as loopback", res)
	}
}
