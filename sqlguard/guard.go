// Package sqlguard decides whether a query written by a model or a user may
// run against a tenant's data source: it accepts exactly one read-only
// SELECT over the source's allow-listed tables, using only allow-listed
// functions, and rejects everything else with a one-line reason.
//
// Each dialect is parsed by a real parser for it (libpg_query for
// PostgreSQL, TiDB's parser for MySQL, the SQLite engine itself with an
// authorizer for SQLite); the guard never tokenizes SQL by hand to decide.
// Every check is an allow-list: a syntax node, function, type or table the
// guard does not know is rejected.
//
// Columns: a table may be restricted (Table.Restricted) to some of its
// columns. SQLite's authorizer names the table of every column read, so
// there the guard knows exactly; a * over a restricted table is caught by
// a sentinel column in the scratch copy. PostgreSQL and MySQL are checked
// without a schema, by a stricter rule that applies only to queries that
// read a restricted table (other queries are unaffected):
//
//   - no * or t.* (count(*) is fine), no NATURAL join, no column alias
//     list on a table (t AS x(a, b)) and no alias on a join;
//   - a column qualified by a restricted table or its alias must be one
//     of that table's Columns; one qualified by an unrestricted table may
//     be any column; one qualified by a subquery or CTE must be a name the
//     query defines (a select-list name or a column list);
//   - an unqualified column must be among the Columns of every restricted
//     table the query reads (so that it is exposed whichever table it
//     resolves to); columns of unrestricted tables, subqueries and CTEs
//     must then be qualified. JOIN … USING names count as unqualified;
//   - the one exception is a bare ORDER BY name that is an alias in the
//     same SELECT's list, which both dialects resolve to the alias first
//     (not after UNION and the like, where ORDER BY 1 works). An alias
//     elsewhere is no shield: SELECT salary AS amount still reads salary,
//     and a WHERE or GROUP BY naming amount is checked as a column;
//   - an unqualified name that is also a restricted table's name or alias
//     is refused (PostgreSQL would read the whole row).
//
// PostgreSQL, every query: q.f where f is not a column of q is the call
// f(q) there ("attribute notation"), out of the function allow-list's
// sight. So a qualified column must be one the guard knows q has: one of
// the table's Columns, or a name the subquery or CTE q defines. A table
// whose Columns are empty (no schema snapshot) may still be read, but not
// through qualified columns. MySQL has no such notation (s.upper is an
// unknown column there).
//
// What it does not check: cost (cross joins of allowed tables are
// accepted). It reads strings as the server must then read them: the
// MySQL check as TiDB's parser does with no sql_mode (no ANSI_QUOTES, no
// NO_BACKSLASH_ESCAPES, no PIPES_AS_CONCAT), the PostgreSQL check as
// pg_query does (standard_conforming_strings on). A server set otherwise
// would read a string the guard saw as one literal as SQL of its own, so
// package datasource pins both for every query it runs.
//
// The guard is one layer. It must never be the only one: the query should
// still run as a read-only role, in a read-only transaction, with a
// statement timeout and a row limit.
package sqlguard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Dialect names the SQL dialect of a data source.
type Dialect string

// The dialects the guard understands.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
	SQLite   Dialect = "sqlite"
)

// MaxQueryBytes bounds the input; longer queries are rejected unparsed.
const MaxQueryBytes = 64 << 10

// Table is one table a query may read.
type Table struct {
	// Name is the table's name exactly as the database stores it
	// (for PostgreSQL an unquoted name is folded to lower case, so a
	// table created as sales is "sales", and a query naming "Sales" in
	// double quotes does not match it).
	Name string
	// Columns are the table's columns a query may read. SQLite needs them
	// to build the scratch schema it compiles queries against, and there
	// only these columns may be read, whatever Restricted says. PostgreSQL
	// and MySQL check them only when Restricted is set.
	Columns []string
	// Restricted makes Columns the whole of what a query may read of the
	// table, in every dialect: a query reading a restricted table must
	// name its columns (no * or t.*), and each column it names must be
	// exposed (see the package doc for the exact rule). Leave it false
	// when Columns merely describe the table.
	Restricted bool
	// Hidden are the table's other columns, from a schema snapshot. Only
	// SQLite uses them: they go into its scratch copy, so that a name
	// resolves there as it will on the real table (an alias cannot stand
	// in for a hidden column), and reading one is refused.
	Hidden []string
}

// Policy says what queries against one data source may do.
type Policy struct {
	Dialect Dialect
	Tables  []Table
	// Normalize fills Verdict.Normalized. For PostgreSQL it about doubles
	// the cost of a check (deparsing costs as much as parsing).
	Normalize bool
}

// Verdict describes an accepted query.
type Verdict struct {
	// Tables are the allow-listed tables the query reads, sorted, for the
	// audit record.
	Tables []string
	// Normalized is the statement as the parser prints it back, when the
	// policy asks for it and the parser can (PostgreSQL and MySQL).
	Normalized string
}

// RejectedError is the error of a query the guard refuses.
type RejectedError struct {
	// Reason is one line, never an echo of the whole input.
	Reason string
}

func (e *RejectedError) Error() string { return "query rejected: " + e.Reason }

func reject(format string, args ...any) *RejectedError {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}

// Guard checks queries against one policy. It is safe for concurrent use.
type Guard struct {
	dialect   Dialect
	normalize bool
	tables    map[string]Table
	sqlite    *sqliteChecker
	mysql     *sync.Pool // of TiDB parsers
}

// New builds a guard for policy. Close releases what it holds (the SQLite
// scratch database).
func New(policy Policy) (*Guard, error) {
	g := &Guard{dialect: policy.Dialect, normalize: policy.Normalize, tables: make(map[string]Table, len(policy.Tables))}
	for _, t := range policy.Tables {
		if t.Name == "" {
			return nil, fmt.Errorf("sqlguard: policy names a table with an empty name")
		}
		g.tables[t.Name] = t
	}
	switch policy.Dialect {
	case Postgres:
	case MySQL:
		g.mysql = newMySQLParsers()
	case SQLite:
		c, err := newSQLiteChecker(policy.Tables)
		if err != nil {
			return nil, fmt.Errorf("sqlguard: sqlite scratch schema: %w", err)
		}
		g.sqlite = c
	default:
		return nil, fmt.Errorf("sqlguard: unknown dialect %q", policy.Dialect)
	}
	return g, nil
}

// Close releases the guard's resources.
func (g *Guard) Close() error {
	if g.sqlite != nil {
		return g.sqlite.close()
	}
	return nil
}

// Check accepts query if it is exactly one read-only SELECT the policy
// allows. A refusal is a *RejectedError; any other error means the guard
// itself failed and the query must not run either.
func (g *Guard) Check(ctx context.Context, query string) (Verdict, error) {
	if err := checkInput(query); err != nil {
		return Verdict{}, err
	}
	switch g.dialect {
	case Postgres:
		return checkPostgres(g.tables, query, g.normalize)
	case MySQL:
		return checkMySQL(g.mysql, g.tables, query, g.normalize)
	case SQLite:
		return g.sqlite.check(ctx, query)
	}
	return Verdict{}, fmt.Errorf("sqlguard: unknown dialect %q", g.dialect)
}

// Check is New, Guard.Check and Close in one call, for one-off checks.
func Check(ctx context.Context, policy Policy, query string) (Verdict, error) {
	g, err := New(policy)
	if err != nil {
		return Verdict{}, err
	}
	defer g.Close()
	return g.Check(ctx, query)
}

// checkInput refuses what no parser should see: the C parsers stop at a
// NUL byte, so text after one would be invisible to them.
func checkInput(query string) error {
	switch {
	case len(query) > MaxQueryBytes:
		return reject("query is longer than %d bytes", MaxQueryBytes)
	case strings.IndexByte(query, 0) >= 0:
		return reject("query contains a NUL byte")
	case !utf8.ValidString(query):
		return reject("query is not valid UTF-8")
	case strings.TrimSpace(query) == "":
		return reject("query is empty")
	}
	return nil
}

// tablesRead collects the allow-listed tables a query reads.
type tablesRead map[string]struct{}

func (t tablesRead) sorted() []string {
	out := make([]string, 0, len(t))
	for name := range t {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// shorten keeps reasons one short line when they quote the input.
func shorten(s string) string {
	const max = 64
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
