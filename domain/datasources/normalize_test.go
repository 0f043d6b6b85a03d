package datasources_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/datasources"
)

func TestNormalizeConnection(t *testing.T) {
	t.Parallel()
	base := func(edit func(*datasources.Connection)) datasources.Connection {
		c := datasources.Connection{Host: "db.internal", Database: "sales", User: "reader", SealedPassword: "v1.x"}
		edit(&c)
		return c
	}
	sqlite := func(path string) datasources.Connection { return datasources.Connection{Path: path} }
	tests := []struct {
		name     string
		kind     datasources.Kind
		conn     datasources.Connection
		ok       bool
		wantPort int
	}{
		// PostgreSQL and MySQL.
		{"postgres default port", datasources.Postgres, base(func(c *datasources.Connection) {}), true, 5432},
		{"mysql default port", datasources.MySQL, base(func(c *datasources.Connection) {}), true, 3306},
		{"explicit port", datasources.Postgres, base(func(c *datasources.Connection) { c.Port = 6543 }), true, 6543},
		{"ipv4 host", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "10.0.0.7" }), true, 5432},
		{"ipv6 host", datasources.MySQL, base(func(c *datasources.Connection) { c.Host = "fd00::7" }), true, 3306},
		{"user with @", datasources.Postgres, base(func(c *datasources.Connection) { c.User = "reader@server" }), true, 5432},
		{"params", datasources.MySQL, base(func(c *datasources.Connection) {
			c.Params = map[string]string{"tls": "skip-verify", "loc": "Europe/Paris", "collation": "utf8mb4_unicode_ci", "empty": ""}
		}), true, 3306},
		{"no host", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "" }), false, 0},
		{"host with a space", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "db host=evil" }), false, 0},
		{"host with a path", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "evil.example/db?x=1" }), false, 0},
		{"host url", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "http://169.254.169.254" }), false, 0},
		{"host with userinfo", datasources.MySQL, base(func(c *datasources.Connection) { c.Host = "u@evil" }), false, 0},
		{"bracketed ipv6", datasources.MySQL, base(func(c *datasources.Connection) { c.Host = "[::1]" }), false, 0},
		{"ipv6 zone", datasources.MySQL, base(func(c *datasources.Connection) { c.Host = "fe80::1%eth0" }), false, 0},
		{"unix socket", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "/var/run/postgresql" }), false, 0},
		{"host with a NUL", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = "db\x00.evil" }), false, 0},
		{"host too long", datasources.Postgres, base(func(c *datasources.Connection) { c.Host = strings.Repeat("a", 254) }), false, 0},
		{"port too high", datasources.Postgres, base(func(c *datasources.Connection) { c.Port = 65536 }), false, 0},
		{"negative port", datasources.Postgres, base(func(c *datasources.Connection) { c.Port = -1 }), false, 0},
		{"no database", datasources.Postgres, base(func(c *datasources.Connection) { c.Database = "" }), false, 0},
		{"no user", datasources.Postgres, base(func(c *datasources.Connection) { c.User = "" }), false, 0},
		{"database smuggling a parameter", datasources.MySQL, base(func(c *datasources.Connection) { c.Database = "sales?allowAllFiles=true" }), false, 0},
		{"database with a slash", datasources.MySQL, base(func(c *datasources.Connection) { c.Database = "sales/other" }), false, 0},
		{"database keyword pair", datasources.Postgres, base(func(c *datasources.Connection) { c.Database = "sales sslmode=disable" }), false, 0},
		{"database quote", datasources.Postgres, base(func(c *datasources.Connection) { c.Database = "sales'" }), false, 0},
		{"user with a colon", datasources.MySQL, base(func(c *datasources.Connection) { c.User = "root:pw" }), false, 0},
		{"database too long", datasources.Postgres, base(func(c *datasources.Connection) { c.Database = strings.Repeat("d", 129) }), false, 0},
		{"param value with &", datasources.MySQL, base(func(c *datasources.Connection) { c.Params = map[string]string{"tls": "true&allowAllFiles=true"} }), false, 0},
		{"param value with =", datasources.MySQL, base(func(c *datasources.Connection) { c.Params = map[string]string{"tls": "a=b"} }), false, 0},
		{"param value with a space", datasources.Postgres, base(func(c *datasources.Connection) { c.Params = map[string]string{"options": "-c statement_timeout=0"} }), false, 0},
		{"param key with a dash", datasources.Postgres, base(func(c *datasources.Connection) { c.Params = map[string]string{"a-b": "x"} }), false, 0},
		{"empty param key", datasources.Postgres, base(func(c *datasources.Connection) { c.Params = map[string]string{"": "x"} }), false, 0},
		{"too many params", datasources.Postgres, base(func(c *datasources.Connection) { c.Params = manyParams(17) }), false, 0},
		{"path on postgres", datasources.Postgres, base(func(c *datasources.Connection) { c.Path = "a.db" }), false, 0},
		{"unknown kind", "mssql", base(func(c *datasources.Connection) {}), false, 0},
		// SQLite.
		{"sqlite file", datasources.SQLite, sqlite("sales.db"), true, 0},
		{"sqlite nested", datasources.SQLite, sqlite("shop/2024/sales.db"), true, 0},
		{"sqlite dots in a name", datasources.SQLite, sqlite("shop/..sales..db"), true, 0},
		{"sqlite no path", datasources.SQLite, sqlite(""), false, 0},
		{"sqlite absolute", datasources.SQLite, sqlite("/etc/passwd"), false, 0},
		{"sqlite parent", datasources.SQLite, sqlite("../other-org/sales.db"), false, 0},
		{"sqlite inner parent", datasources.SQLite, sqlite("shop/../../x.db"), false, 0},
		{"sqlite trailing parent", datasources.SQLite, sqlite("shop/.."), false, 0},
		{"sqlite backslash parent", datasources.SQLite, sqlite("..\\x.db"), false, 0},
		{"sqlite drive", datasources.SQLite, sqlite("C:x.db"), false, 0},
		{"sqlite uri", datasources.SQLite, sqlite("file:x.db?mode=rwc"), false, 0},
		{"sqlite query", datasources.SQLite, sqlite("x.db?mode=rw"), false, 0},
		{"sqlite fragment", datasources.SQLite, sqlite("x.db#y"), false, 0},
		{"sqlite percent-encoded parent", datasources.SQLite, sqlite("%2e%2e/x.db"), false, 0},
		{"sqlite NUL", datasources.SQLite, sqlite("x.db\x00.txt"), false, 0},
		{"sqlite newline", datasources.SQLite, sqlite("x\n.db"), false, 0},
		{"sqlite invalid utf-8", datasources.SQLite, sqlite("x\xff.db"), false, 0},
		{"sqlite too long", datasources.SQLite, sqlite(strings.Repeat("a", 1025)), false, 0},
		{"sqlite with a host", datasources.SQLite, datasources.Connection{Path: "x.db", Host: "h"}, false, 0},
		{"sqlite with a port", datasources.SQLite, datasources.Connection{Path: "x.db", Port: 1}, false, 0},
		{"sqlite with a password", datasources.SQLite, datasources.Connection{Path: "x.db", SealedPassword: "v1.x"}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := datasources.NormalizeConnection(tt.kind, tt.conn)
			if !tt.ok {
				if !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("accepted %+v (%v), want ErrInvalid", got, err)
				}
				if strings.Contains(err.Error(), "v1.x") {
					t.Errorf("error %q shows the sealed password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.Port != tt.wantPort {
				t.Errorf("port %d, want %d", got.Port, tt.wantPort)
			}
		})
	}
}

func manyParams(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["p"+strings.Repeat("x", i)] = "v"
	}
	return m
}

func TestNormalizeAllowedTables(t *testing.T) {
	t.Parallel()
	many := make([]datasources.AllowedTable, 201)
	for i := range many {
		many[i] = datasources.AllowedTable{Name: "t" + strings.Repeat("x", i%100) + string(rune('a'+i/100))}
	}
	tests := []struct {
		name   string
		tables []datasources.AllowedTable
		want   string // "name:col,col name" when accepted
	}{
		{"sorted and deduplicated columns", []datasources.AllowedTable{{Name: "orders", Columns: []string{"total", "id", "total"}}, {Name: "customers"}}, "customers: orders:id,total"},
		{"qualified", []datasources.AllowedTable{{Name: "reporting.sales"}}, "reporting.sales:"},
		{"underscore and dollar", []datasources.AllowedTable{{Name: "_t$1", Columns: []string{"c$"}}}, "_t$1:c$"},
		{"none", nil, ""},
		{"too many", many, ""},
		{"twice", []datasources.AllowedTable{{Name: "a"}, {Name: "a"}}, ""},
		{"three parts", []datasources.AllowedTable{{Name: "db.schema.t"}}, ""},
		{"empty part", []datasources.AllowedTable{{Name: "schema."}}, ""},
		{"leading digit", []datasources.AllowedTable{{Name: "1t"}}, ""},
		{"leading dollar", []datasources.AllowedTable{{Name: "$t"}}, ""},
		{"quoted", []datasources.AllowedTable{{Name: `"orders"`}}, ""},
		{"catalog injection", []datasources.AllowedTable{{Name: "orders;drop"}}, ""},
		{"comment", []datasources.AllowedTable{{Name: "orders--"}}, ""},
		{"space", []datasources.AllowedTable{{Name: "or ders"}}, ""},
		{"unicode look-alike", []datasources.AllowedTable{{Name: "оrders"}}, ""}, // Cyrillic o
		{"qualified column", []datasources.AllowedTable{{Name: "orders", Columns: []string{"o.id"}}}, ""},
		{"star column", []datasources.AllowedTable{{Name: "orders", Columns: []string{"*"}}}, ""},
		{"long name", []datasources.AllowedTable{{Name: strings.Repeat("t", 129)}}, ""},
		{"too many columns", []datasources.AllowedTable{{Name: "t", Columns: make([]string, 501)}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := datasources.NormalizeAllowedTables(tt.tables)
			if tt.want == "" {
				if !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("accepted %+v (%v), want ErrInvalid", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var parts []string
			for _, tb := range got {
				parts = append(parts, tb.Name+":"+strings.Join(tb.Columns, ","))
			}
			if s := strings.Join(parts, " "); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}

func TestNormalizeGrantsLimit(t *testing.T) {
	t.Parallel()
	grants := make([]datasources.Grant, 101)
	for i := range grants {
		grants[i] = datasources.Grant{Subject: "user:u" + strings.Repeat("x", i), Permissions: []string{"datasources:query"}}
	}
	if _, err := datasources.NormalizeGrants(grants); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("101 grants: %v, want ErrInvalid", err)
	}
	got, err := datasources.NormalizeGrants(grants[:100])
	if err != nil || len(got) != 100 {
		t.Fatalf("100 grants: %d, %v", len(got), err)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Subject >= got[i].Subject {
			t.Fatalf("grants not sorted by subject at %d: %q, %q", i, got[i-1].Subject, got[i].Subject)
		}
	}
}

func TestParseKindAndDefaultPort(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		port int
		ok   bool
	}{{"postgres", 5432, true}, {"mysql", 3306, true}, {"sqlite", 0, true}, {"Postgres", 0, false}, {"", 0, false}, {"mariadb", 0, false}} {
		k, err := datasources.ParseKind(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseKind(%q): %v", tt.in, err)
			continue
		}
		if tt.ok && datasources.DefaultPort(k) != tt.port {
			t.Errorf("DefaultPort(%s) = %d, want %d", k, datasources.DefaultPort(k), tt.port)
		}
	}
}
