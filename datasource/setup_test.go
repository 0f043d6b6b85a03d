package datasource_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/netguard"
)

const canary = "CANARY-7f3a-salaries-must-never-leak"

// envConfig reads a connection URL the provisioning script printed.
func envConfig(t testing.TB, name string) datasource.Config {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		t.Fatalf("%s is not set: run make test or scripts/provision-datasources", name)
	}
	cfg, err := datasource.ParseURL(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func pgConfig(t testing.TB) datasource.Config {
	return envConfig(t, "PALISADE_TEST_DATASOURCE_PG_URL")
}

func mysqlConfig(t testing.TB) datasource.Config {
	return envConfig(t, "PALISADE_TEST_DATASOURCE_MYSQL_DSN")
}

// sqliteFixture writes the sample database (the same sales rows as the
// provisioning script, and the salaries table) under a new root.
// sqliteOrg is the organization of sqliteFixture's source: its file is in
// that organization's directory of the root.
const sqliteOrg = "org-a"

func sqliteFixture(t testing.TB) (root string, cfg datasource.Config) {
	t.Helper()
	root = t.TempDir()
	if err := os.Mkdir(filepath.Join(root, sqliteOrg), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(root, sqliteOrg, "sales.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf(`
CREATE TABLE sales (id integer PRIMARY KEY, region text NOT NULL, product text NOT NULL,
	quantity integer NOT NULL, amount numeric(12,2) NOT NULL, sold_at date NOT NULL, customer text NOT NULL);
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 3000)
INSERT INTO sales SELECT n,
	CASE n %% 4 WHEN 0 THEN 'north' WHEN 1 THEN 'south' WHEN 2 THEN 'east' ELSE 'west' END,
	CASE (n * 7) %% 5 WHEN 0 THEN 'widget' WHEN 1 THEN 'gadget' WHEN 2 THEN 'gizmo' WHEN 3 THEN 'sprocket' ELSE 'doohickey' END,
	1 + (n * 13) %% 20,
	round(((n * 37) %% 10000) / 100.0 + 5, 2),
	date('2024-01-01', '+' || ((n * 3) %% 366) || ' days'),
	'customer-' || substr('00' || ((n * 11) %% 250), -3, 3)
FROM g;
CREATE TABLE salaries (employee text PRIMARY KEY, salary numeric NOT NULL);
INSERT INTO salaries VALUES ('%s', 999999.99), ('ada', 120000);`, canary))
	if err != nil {
		t.Fatal(err)
	}
	return root, datasource.Config{Kind: datasource.SQLite, Org: sqliteOrg, Path: "sales.db", Tables: []string{"sales"}}
}

// loopbackAllowed is the network policy of the tests: loopback, where the
// sample databases run.
var loopbackAllowed = netguard.Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// target is one data source of the sample, with an executor for it.
type target struct {
	name string
	exec *datasource.Executor
	cfg  datasource.Config
}

// newExecutor returns an executor for opts, whose network policy, when
// it has none, allows loopback: the sample databases run on this machine,
// and the zero policy refuses loopback.
func newExecutor(t testing.TB, opts datasource.Options) *datasource.Executor {
	t.Helper()
	if len(opts.Network.Allowed) == 0 {
		opts.Network = loopbackAllowed
	}
	e := datasource.New(opts)
	t.Cleanup(func() { e.Close() })
	return e
}

// targets returns the three sample sources: PostgreSQL, MariaDB, SQLite.
func targets(t testing.TB) []target {
	t.Helper()
	root, scfg := sqliteFixture(t)
	e := newExecutor(t, datasource.Options{SQLiteRoot: root})
	return []target{
		{"postgres", e, pgConfig(t)},
		{"mysql", e, mysqlConfig(t)},
		{"sqlite", e, scfg},
	}
}

// superPG connects to the sample database as the superuser (trust
// authentication on the local server), to check what the reader cannot.
func superPG(t testing.TB) *pgx.Conn {
	t.Helper()
	cfg := pgConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", cfg.Host, cfg.Port, cfg.Database))
	if err != nil {
		t.Fatalf("connecting as postgres: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// rootMySQL connects as root, no password, as the local server allows.
func rootMySQL(t testing.TB) *sql.DB {
	t.Helper()
	cfg := mysqlConfig(t)
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s:%d)/%s", cfg.Host, cfg.Port, cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("connecting to MariaDB as root: %v", err)
	}
	return db
}

func mustQuery(t testing.TB, tg target, q string, l datasource.Limits) datasource.Result {
	t.Helper()
	res, err := tg.exec.Query(context.Background(), tg.cfg, q, l)
	if err != nil {
		t.Fatalf("%s: %q: %v", tg.name, q, err)
	}
	return res
}

func containsCanary(v any) bool {
	return strings.Contains(fmt.Sprint(v), canary) || strings.Contains(fmt.Sprint(v), "999999.99")
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
