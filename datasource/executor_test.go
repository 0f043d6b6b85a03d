package datasource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/netguard"
	"github.com/palisadehq/palisade/sealing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	pw := sealing.NewSecret("hunter2-do-not-print")
	pg := datasource.Config{Kind: datasource.Postgres, Host: "db.example", Database: "d", User: "u", Password: pw}
	with := func(f func(*datasource.Config)) datasource.Config {
		c := pg
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  datasource.Config
		want string // "" for valid
	}{
		{"postgres", pg, ""},
		{"postgres sslmode", with(func(c *datasource.Config) { c.Params = map[string]string{"sslmode": "verify-full"} }), ""},
		{"mysql tls", datasource.Config{Kind: datasource.MySQL, Host: "10.1.2.3", Port: 3307, Database: "d", User: "u", Params: map[string]string{"tls": "true"}}, ""},
		{"sqlite", datasource.Config{Kind: datasource.SQLite, Path: "a/b.db"}, ""},
		{"unknown kind", with(func(c *datasource.Config) { c.Kind = "oracle" }), `kind "oracle"`},
		{"param not allowed", with(func(c *datasource.Config) { c.Params = map[string]string{"sslrootcert": "/etc/passwd"} }), `parameter "sslrootcert" is not allowed`},
		{"mysql multiStatements", datasource.Config{Kind: datasource.MySQL, Host: "h", Database: "d", User: "u", Params: map[string]string{"multiStatements": "true"}}, `parameter "multiStatements"`},
		{"mysql allowAllFiles", datasource.Config{Kind: datasource.MySQL, Host: "h", Database: "d", User: "u", Params: map[string]string{"allowAllFiles": "true"}}, `parameter "allowAllFiles"`},
		{"bad sslmode", with(func(c *datasource.Config) { c.Params = map[string]string{"sslmode": "maybe"} }), `value "maybe"`},
		{"sqlite param", datasource.Config{Kind: datasource.SQLite, Path: "a.db", Params: map[string]string{"_pragma": "x"}}, `parameter "_pragma"`},
		{"no host", with(func(c *datasource.Config) { c.Host = "" }), "host is empty"},
		{"unix socket", with(func(c *datasource.Config) { c.Host = "/var/run/postgresql" }), "not a host name"},
		{"host injection", with(func(c *datasource.Config) { c.Host = "h sslmode=disable" }), "not a host name"},
		{"port", with(func(c *datasource.Config) { c.Port = 70000 }), "out of range"},
		{"no database", with(func(c *datasource.Config) { c.Database = "" }), "database is empty"},
		{"no user", with(func(c *datasource.Config) { c.User = "" }), "user is empty"},
		{"control char", with(func(c *datasource.Config) { c.User = "u\x00" }), "control character"},
		{"path on postgres", with(func(c *datasource.Config) { c.Path = "x.db" }), "path is for sqlite"},
		{"sqlite without path", datasource.Config{Kind: datasource.SQLite}, "path is empty"},
		{"sqlite with password", datasource.Config{Kind: datasource.SQLite, Path: "a.db", Password: pw}, "must be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, datasource.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pw.Reveal()) {
				t.Fatalf("error carries the password: %v", err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := datasource.ParseURL("postgres://u:p%40ss@db:6543/sales?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != datasource.Postgres || cfg.Host != "db" || cfg.Port != 6543 || cfg.Database != "sales" ||
		cfg.User != "u" || cfg.Password.Reveal() != "p@ss" || cfg.Params["sslmode"] != "require" {
		t.Fatalf("ParseURL: %+v", cfg)
	}
	_, err = datasource.ParseURL("mysql://u:secretpw@db/sales?allowAllFiles=true")
	if !errors.Is(err, datasource.ErrInvalidConfig) || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("ParseURL with a refused parameter: %v", err)
	}
}

// The executor refuses parameters off the allow-list before connecting.
func TestQueryRefusesParams(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, datasource.Options{})
	for _, tc := range []struct {
		cfg datasource.Config
		key string
	}{
		{with(pgConfig(t), "sslrootcert", "/etc/passwd"), "sslrootcert"},
		{with(pgConfig(t), "options", "-c statement_timeout=0"), "options"},
		{with(mysqlConfig(t), "multiStatements", "true"), "multiStatements"},
		{with(mysqlConfig(t), "allowAllFiles", "true"), "allowAllFiles"},
		{with(mysqlConfig(t), "allowLocalInfile", "true"), "allowLocalInfile"},
	} {
		_, err := e.Query(context.Background(), tc.cfg, "SELECT 1", datasource.Limits{})
		if !errors.Is(err, datasource.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s %s: err = %v, want ErrInvalidConfig naming it", tc.cfg.Kind, tc.key, err)
		}
	}
}

func with(c datasource.Config, k, v string) datasource.Config {
	c.Params = map[string]string{k: v}
	return c
}

func TestTestSnapshotsSchema(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			s, err := tg.exec.Test(context.Background(), tg.cfg)
			if err != nil {
				t.Fatalf("Test: %v", err)
			}
			var names []string
			for _, tb := range s.Tables {
				names = append(names, tb.Name)
			}
			if !slices.IsSorted(names) {
				t.Errorf("tables not sorted: %v", names)
			}
			if !slices.Equal(names, []string{"sales"}) {
				t.Fatalf("tables = %v, want only sales (salaries is not granted)", names)
			}
			var cols []string
			types := map[string]string{}
			for _, c := range s.Tables[0].Columns {
				cols = append(cols, c.Name)
				types[c.Name] = c.Type
			}
			want := []string{"id", "region", "product", "quantity", "amount", "sold_at", "customer"}
			if !slices.Equal(cols, want) {
				t.Fatalf("columns = %v, want %v", cols, want)
			}
			if !strings.Contains(types["amount"], "numeric") && !strings.Contains(types["amount"], "decimal") {
				t.Errorf("amount type = %q", types["amount"])
			}
			t.Logf("%s: %+v", tg.name, s)
		})
	}
}

func TestAggregateOverThousandRows(t *testing.T) {
	t.Parallel()
	const q = `SELECT region, count(*) AS n, sum(amount) AS total, min(sold_at) AS first_sale
FROM sales WHERE id <= 1000 GROUP BY region ORDER BY region`
	results := map[string]datasource.Result{}
	for _, tg := range targets(t) {
		res := mustQuery(t, tg, q, datasource.Limits{})
		results[tg.name] = res
		if res.RowCount != 4 || len(res.Rows) != 4 || res.Truncated {
			t.Fatalf("%s: %d rows, truncated %v: %v", tg.name, res.RowCount, res.Truncated, res.Rows)
		}
		for _, row := range res.Rows {
			if row[1] != int64(250) {
				t.Errorf("%s: count %#v, want int64 250", tg.name, row[1])
			}
		}
		checkHash(t, tg.name, res)
		t.Logf("%s: %v in %s", tg.name, res.Rows, res.Duration)
	}
	// The same data on both servers comes out the same: counts as int64,
	// sums as exact decimal strings, dates as YYYY-MM-DD.
	if !reflect.DeepEqual(results["postgres"].Rows, results["mysql"].Rows) {
		t.Errorf("postgres and mysql differ:\n%v\n%v", results["postgres"].Rows, results["mysql"].Rows)
	}
	if got := results["postgres"].Rows[0][3]; got != "2024-01-01" {
		t.Errorf("date = %#v, want 2024-01-01", got)
	}
}

func checkHash(t *testing.T, name string, res datasource.Result) {
	t.Helper()
	canon, err := datasource.CanonicalJSON(res.Columns, res.Rows)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256hex(canon)
	if h != res.SHA256 {
		t.Errorf("%s: SHA256 %s, want %s over %s", name, res.SHA256, h, canon)
	}
	rows, _ := json.Marshal(res.Rows)
	if int64(len(rows)) != res.Bytes {
		t.Errorf("%s: Bytes %d, want %d", name, res.Bytes, len(rows))
	}
}

func TestCapsTruncate(t *testing.T) {
	t.Parallel()
	const q = "SELECT id, region, amount, customer FROM sales ORDER BY id"
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			res := mustQuery(t, tg, q, datasource.Limits{MaxRows: 1000})
			if res.RowCount != 1000 || !res.Truncated || res.Rows[999][0] != int64(1000) {
				t.Errorf("MaxRows 1000: %d rows, truncated %v", res.RowCount, res.Truncated)
			}
			checkHash(t, tg.name, res)

			res = mustQuery(t, tg, q, datasource.Limits{MaxBytes: 2000})
			if !res.Truncated || res.Bytes > 2000 || res.RowCount == 0 || res.RowCount > 60 {
				t.Errorf("MaxBytes 2000: %d rows, %d bytes, truncated %v", res.RowCount, res.Bytes, res.Truncated)
			}
			checkHash(t, tg.name, res)

			res = mustQuery(t, tg, "SELECT id FROM sales WHERE id <= 5", datasource.Limits{MaxRows: 5})
			if res.RowCount != 5 || res.Truncated {
				t.Errorf("exactly MaxRows: %d rows, truncated %v", res.RowCount, res.Truncated)
			}
			// The pool is fine after a fetch stopped early.
			res = mustQuery(t, tg, "SELECT count(*) AS n FROM sales", datasource.Limits{})
			if res.Rows[0][0] != int64(3000) {
				t.Errorf("count after caps: %v", res.Rows)
			}
		})
	}
}

func TestNetworkPolicyRefuses(t *testing.T) {
	t.Parallel()
	only10 := netguard.Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	strict := newExecutor(t, datasource.Options{Network: only10})
	open := newExecutor(t, datasource.Options{})
	link := func(c datasource.Config) datasource.Config {
		c.Host = "169.254.169.254"
		return c
	}
	cases := []struct {
		name string
		exec *datasource.Executor
		cfg  datasource.Config
		want error
	}{
		{"postgres outside 10/8", strict, pgConfig(t), netguard.ErrNotAllowed},
		{"mysql outside 10/8", strict, mysqlConfig(t), netguard.ErrNotAllowed},
		{"postgres link-local", open, link(pgConfig(t)), netguard.ErrAlwaysRefused},
		{"mysql link-local", open, link(mysqlConfig(t)), netguard.ErrAlwaysRefused},
		{"postgres link-local IPv6", open, func() datasource.Config { c := pgConfig(t); c.Host = "fe80::1"; return c }(), netguard.ErrAlwaysRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.exec.Query(context.Background(), tc.cfg, "SELECT 1", datasource.Limits{Timeout: 5 * time.Second})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Query = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "palisade_reader:") {
				t.Fatalf("error carries credentials: %v", err)
			}
			_, err = tc.exec.Test(context.Background(), tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Test = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSQLitePathEscapesRefused(t *testing.T) {
	t.Parallel()
	root, _ := sqliteFixture(t)
	outside := filepath.Join(t.TempDir(), "outside.db")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, sqliteOrg, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(root, sqliteOrg, "dir")); err != nil {
		t.Fatal(err)
	}
	// Another organization's file, in its own directory of the root.
	if err := os.Mkdir(filepath.Join(root, "org-b"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "org-b", "theirs.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newExecutor(t, datasource.Options{SQLiteRoot: root})
	for _, p := range []string{"../outside.db", outside, "link.db", "dir/outside.db", "sub/../../x.db", "missing.db",
		"../org-b/theirs.db", "org-b/theirs.db", "../../org-b/theirs.db"} {
		_, err := e.Query(context.Background(), datasource.Config{Kind: datasource.SQLite, Org: sqliteOrg, Path: p}, "SELECT 1", datasource.Limits{})
		if !errors.Is(err, netguard.ErrPathRefused) {
			t.Errorf("path %q: err = %v, want ErrPathRefused", p, err)
		}
	}
	// A source names the directory of its organization, and only one.
	for _, org := range []string{"", ".", "..", "org-a/../org-b", "org-b/..", `..\org-b`} {
		_, err := e.Query(context.Background(), datasource.Config{Kind: datasource.SQLite, Org: org, Path: "sales.db"}, "SELECT 1", datasource.Limits{})
		if !errors.Is(err, netguard.ErrPathRefused) {
			t.Errorf("org %q: err = %v, want ErrPathRefused", org, err)
		}
	}
	none := newExecutor(t, datasource.Options{})
	if _, err := none.Test(context.Background(), datasource.Config{Kind: datasource.SQLite, Path: "sales.db"}); !errors.Is(err, netguard.ErrPathRefused) {
		t.Errorf("no root: err = %v, want ErrPathRefused", err)
	}
}

func TestWrongPasswordIsADatabaseErrorWithoutThePassword(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, datasource.Options{})
	// The local PostgreSQL trusts 127.0.0.1 whatever the password: a
	// role that does not exist fails there instead.
	pg := pgConfig(t)
	pg.User = "no_such_role_zq8"
	for _, cfg := range []datasource.Config{pg, mysqlConfig(t)} {
		cfg.Password = sealing.NewSecret("wrong-pw-zq8")
		_, err := e.Query(context.Background(), cfg, "SELECT 1", datasource.Limits{})
		var dbErr *datasource.DatabaseError
		if !errors.As(err, &dbErr) {
			t.Errorf("%s: err = %v, want a DatabaseError", cfg.Kind, err)
			continue
		}
		if strings.Contains(err.Error(), "wrong-pw-zq8") {
			t.Errorf("%s: error carries the password: %v", cfg.Kind, err)
		}
		t.Logf("%s: %v", cfg.Kind, err)
	}
}

func TestDatabaseErrorCarriesMessage(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		_, err := tg.exec.Query(context.Background(), tg.cfg, "SELECT no_such_column FROM sales", datasource.Limits{})
		var dbErr *datasource.DatabaseError
		if !errors.As(err, &dbErr) || !strings.Contains(dbErr.Message, "no_such_column") {
			t.Errorf("%s: err = %v, want a DatabaseError naming the column", tg.name, err)
		}
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	e := datasource.New(datasource.Options{Network: loopbackAllowed})
	cfg := pgConfig(t)
	if _, err := e.Query(context.Background(), cfg, "SELECT 1 AS one", datasource.Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Query(context.Background(), cfg, "SELECT 1 AS one", datasource.Limits{}); !errors.Is(err, datasource.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
