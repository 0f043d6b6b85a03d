package sqlgen_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/sqlgen"
	"github.com/palisadehq/palisade/sqlguard"
)

var dialects = []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite}

// testSchema is a data source whose allow-list holds sales, customers and
// shipments; salaries exists in the database but is not allow-listed, so
// it is not in the schema.
func testSchema(d sqlguard.Dialect) sqlgen.Schema {
	return sqlgen.Schema{Dialect: d, Tables: []sqlgen.Table{
		{Name: "sales", Columns: []sqlgen.Column{
			{Name: "id", Type: "integer"}, {Name: "region", Type: "text"}, {Name: "product", Type: "varchar(64)"},
			{Name: "amount", Type: "numeric(10,2)"}, {Name: "quantity", Type: "integer"}, {Name: "sold_at", Type: "date"},
		}},
		{Name: "customers", Columns: []sqlgen.Column{
			{Name: "id", Type: "bigint"}, {Name: "name", Type: "text"}, {Name: "country", Type: "text"},
			{Name: "created_at", Type: "timestamp with time zone"},
		}},
		{Name: "shipments", Columns: []sqlgen.Column{
			{Name: "id", Type: "integer"}, {Name: "carrier", Type: "text"}, {Name: "weight", Type: "real"},
			{Name: "shipped_at", Type: "timestamp"}, {Name: "delivered_at", Type: "datetime"},
		}},
	}}
}

// clock is the day the tests ask on: 2024-03-31.
func clock() time.Time { return time.Date(2024, 3, 31, 15, 4, 5, 0, time.UTC) }

func newBuiltin() *sqlgen.Builtin { return sqlgen.NewBuiltin().WithClock(clock) }

// newGuards builds one guard per dialect from the same schema the
// translators get.
func newGuards(t testing.TB) map[sqlguard.Dialect]*sqlguard.Guard {
	t.Helper()
	guards := map[sqlguard.Dialect]*sqlguard.Guard{}
	for _, d := range dialects {
		g, err := sqlguard.New(testSchema(d).Policy())
		if err != nil {
			t.Fatalf("sqlguard.New(%s): %v", d, err)
		}
		t.Cleanup(func() { g.Close() })
		guards[d] = g
	}
	return guards
}

// mustPassGuard fails the test unless the guard accepts sql, reading only
// tables of the schema.
func mustPassGuard(t testing.TB, g *sqlguard.Guard, d sqlguard.Dialect, sql string) {
	t.Helper()
	v, err := g.Check(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: the guard refused the translation %q: %v", d, sql, err)
	}
	names := []string{"sales", "customers", "shipments"}
	for _, tab := range v.Tables {
		if !slices.Contains(names, tab) {
			t.Fatalf("%s: %q reads %q, not in the schema", d, sql, tab)
		}
	}
}

// inDialect turns a PostgreSQL-quoted expectation into the dialect's: only
// MySQL differs, with backquotes. Expectations holding a double quote
// inside a literal are written per dialect instead.
func inDialect(d sqlguard.Dialect, want string) string {
	if d == sqlguard.MySQL {
		return strings.ReplaceAll(want, `"`, "`")
	}
	return want
}

// builtinShape is everything the built-in translator may write outside
// literals and quoted identifiers: its own keywords, numbers and
// punctuation.
var builtinShape = regexp.MustCompile(`^(?:\s+|SELECT|COUNT|SUM|AVG|MIN|MAX|DISTINCT|AS|FROM|WHERE|AND|GROUP|BY|ORDER|DESC|LIMIT|[0-9]+(?:\.[0-9]+)?|[(),*=<>]|>=|\?|#ident)+$`)

// checkShape fails unless sql is, outside string literals, nothing but the
// built-in's keywords and identifiers of the schema (or its aliases): the
// question's text may reach the SQL only inside a literal. It returns the
// decoded literals.
func checkShape(t testing.TB, d sqlguard.Dialect, schema sqlgen.Schema, sql string) []string {
	t.Helper()
	rest, literals, err := splitSQL(d, sql)
	if err != nil {
		t.Fatalf("%s: %q: %v", d, sql, err)
	}
	idents := identifiers(schema)
	outside, names, err := splitIdents(d, rest)
	if err != nil {
		t.Fatalf("%s: %q: %v", d, sql, err)
	}
	for _, n := range names {
		if !idents[n] {
			t.Fatalf("%s: %q quotes the identifier %q, which is neither in the schema nor an alias", d, sql, n)
		}
	}
	if !builtinShape.MatchString(outside) {
		t.Fatalf("%s: %q has text outside literals and identifiers that the built-in never writes: %q", d, sql, outside)
	}
	return literals
}

func identifiers(s sqlgen.Schema) map[string]bool {
	ids := map[string]bool{"count": true}
	for _, tab := range s.Tables {
		ids[tab.Name] = true
		for _, c := range tab.Columns {
			for _, stem := range []string{"", "total_", "average_", "min_", "max_"} {
				ids[stem+c.Name] = true
			}
			ids[c.Name+"_count"] = true
		}
	}
	return ids
}

// splitSQL replaces each string literal by "?" and returns the literals'
// values, reading quotes as the dialect does: ” is a quote everywhere,
// and a backslash escapes the next character in MySQL and in PostgreSQL's
// E” strings.
func splitSQL(d sqlguard.Dialect, sql string) (string, []string, error) {
	var out strings.Builder
	var lits []string
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		escapes := d == sqlguard.MySQL
		if d == sqlguard.Postgres && c == 'E' && i+1 < len(sql) && sql[i+1] == '\'' && (i == 0 || sql[i-1] == ' ') {
			escapes = true
			i++
			c = sql[i]
		}
		if c != '\'' {
			out.WriteByte(c)
			continue
		}
		var lit strings.Builder
		closed := false
		for i++; i < len(sql); i++ {
			switch {
			case escapes && sql[i] == '\\' && i+1 < len(sql):
				i++
				lit.WriteByte(sql[i])
			case sql[i] == '\'' && i+1 < len(sql) && sql[i+1] == '\'':
				i++
				lit.WriteByte('\'')
			case sql[i] == '\'':
				closed = true
			default:
				lit.WriteByte(sql[i])
			}
			if closed {
				break
			}
		}
		if !closed {
			return "", nil, errors.New("a string literal is not closed")
		}
		lits = append(lits, lit.String())
		out.WriteString("?")
	}
	return out.String(), lits, nil
}

// splitIdents replaces each quoted identifier by "#ident" and returns the
// names.
func splitIdents(d sqlguard.Dialect, s string) (string, []string, error) {
	q := byte('"')
	if d == sqlguard.MySQL {
		q = '`'
	}
	var out strings.Builder
	var names []string
	for i := 0; i < len(s); i++ {
		if s[i] != q {
			out.WriteByte(s[i])
			continue
		}
		var name strings.Builder
		closed := false
		for i++; i < len(s) && !closed; i++ {
			switch {
			case s[i] == q && i+1 < len(s) && s[i+1] == q:
				i++
				name.WriteByte(q)
			case s[i] == q:
				closed = true
				i--
			default:
				name.WriteByte(s[i])
			}
		}
		if !closed {
			return "", nil, errors.New("a quoted identifier is not closed")
		}
		names = append(names, name.String())
		out.WriteString("#ident")
	}
	return out.String(), names, nil
}
