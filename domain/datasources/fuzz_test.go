package datasources_test

import (
	"path"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain/datasources"
)

// FuzzNormalizeConnection: no input panics; an accepted SQLite path is
// relative and never climbs out of the root; an accepted server connection
// has a port in range and names that cannot split a connection string.
func FuzzNormalizeConnection(f *testing.F) {
	for _, s := range []struct{ kind, host, db, user, path, pk, pv string }{
		{"postgres", "db.internal", "sales", "reader", "", "sslmode", "verify-full"},
		{"mysql", "10.0.0.1", "sales?allowAllFiles=true", "root", "", "tls", "true&x=y"},
		{"sqlite", "", "", "", "shop/sales.db", "", ""},
		{"sqlite", "", "", "", "../x.db", "", ""},
		{"sqlite", "", "", "", "a/%2e%2e/b", "", ""},
		{"sqlite", "", "", "", "/etc/passwd", "", ""},
		{"sqlite", "", "", "", "a/./../b", "", ""},
		{"postgres", "fe80::1%eth0", "d b", "u'", "", "", ""},
	} {
		f.Add(s.kind, s.host, s.db, s.user, s.path, s.pk, s.pv, 0)
	}
	f.Fuzz(func(t *testing.T, kind, host, db, user, p, pk, pv string, port int) {
		conn := datasources.Connection{Host: host, Port: port, Database: db, User: user, Path: p}
		if pk != "" || pv != "" {
			conn.Params = map[string]string{pk: pv}
		}
		got, err := datasources.NormalizeConnection(datasources.Kind(kind), conn)
		if err != nil {
			return
		}
		if datasources.Kind(kind) == datasources.SQLite {
			if got.Path == "" || strings.HasPrefix(got.Path, "/") || path.IsAbs(got.Path) {
				t.Fatalf("accepted non-relative path %q", got.Path)
			}
			if c := path.Clean(got.Path); c == ".." || strings.HasPrefix(c, "../") {
				t.Fatalf("accepted path %q that leaves the root", got.Path)
			}
			for _, seg := range strings.Split(got.Path, "/") {
				if seg == ".." {
					t.Fatalf("accepted path %q with a .. segment", got.Path)
				}
			}
			if strings.ContainsAny(got.Path, "\\%?#:\x00") {
				t.Fatalf("accepted path %q with a character a URI or another system would read", got.Path)
			}
			return
		}
		if got.Port < 1 || got.Port > 65535 {
			t.Fatalf("accepted port %d", got.Port)
		}
		for _, v := range []string{got.Host, got.Database, got.User, pv} {
			if strings.ContainsAny(v, " '\"`\\?&=;#%\x00\n") {
				t.Fatalf("accepted %q, which can split a connection string", v)
			}
		}
		for _, v := range []string{got.Host, got.Database, got.User} {
			if strings.Contains(v, "/") {
				t.Fatalf("accepted %q with a /", v)
			}
		}
	})
}

// FuzzCheckIdentifier: no input panics, and an accepted identifier holds
// only what the documentation promises: parts of a letter or _, then
// letters, digits, _ or $, at most one "." when qualified.
func FuzzCheckIdentifier(f *testing.F) {
	for _, s := range []string{"orders", "reporting.sales", "_t$1", "a.b.c", "1t", `"x"`, "оrders", "x;drop", "a..b", ".a", ""} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, name string, qualified bool) {
		if datasources.CheckIdentifier("table", name, qualified) != nil {
			return
		}
		if name == "" || len(name) > datasources.MaxIdentifierLen {
			t.Fatalf("accepted %q of length %d", name, len(name))
		}
		parts := []string{name}
		if qualified {
			parts = strings.Split(name, ".")
		}
		if len(parts) > 2 {
			t.Fatalf("accepted %q with %d parts", name, len(parts))
		}
		for _, part := range parts {
			for i, c := range []byte(part) {
				letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
				if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '$')) {
					t.Fatalf("accepted %q: byte %q at %d of %q", name, c, i, part)
				}
			}
			if part == "" {
				t.Fatalf("accepted %q with an empty part", name)
			}
		}
	})
}
