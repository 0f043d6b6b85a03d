package sqlguard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteChecker compiles queries, never runs them, on a private in-memory
// database holding empty copies of the allowed tables. SQLite's authorizer
// reports every table column read and function called while it compiles,
// and refuses everything else (writes, PRAGMA, ATTACH, recursive CTEs).
type sqliteChecker struct {
	db      *sql.DB
	conn    *sql.Conn
	columns map[string]map[string]bool // table → allowed columns
	// restricted is set when a table is restricted to some columns.
	restricted bool

	mu  sync.Mutex // one compile at a time; guards run
	run *sqliteRun
}

// sqliteRun is what the authorizer saw while compiling one query.
type sqliteRun struct {
	tables tablesRead
	denied *RejectedError
}

func newSQLiteChecker(tables []Table) (*sqliteChecker, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &sqliteChecker{db: db, columns: make(map[string]map[string]bool, len(tables))}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	c.conn = conn
	for _, t := range tables {
		if len(t.Columns) == 0 {
			c.close()
			return nil, fmt.Errorf("table %q: SQLite policies must list the columns", t.Name)
		}
		c.columns[strings.ToLower(t.Name)] = make(map[string]bool, len(t.Columns))
		for _, col := range t.Columns {
			c.columns[strings.ToLower(t.Name)][strings.ToLower(col)] = true
		}
		// The scratch copy holds the hidden columns too, so names resolve
		// as on the real table, and, for a restricted table, a sentinel
		// column that only a * (or t.*) reads.
		// The sentinel comes first so that a * is named as such.
		all := slices.Concat(t.Columns, t.Hidden)
		if t.Restricted {
			all = slices.Concat([]string{sqliteStar}, all)
			c.restricted = true
		}
		cols := make([]string, len(all))
		for i, col := range all {
			cols[i] = sqliteQuote(col)
		}
		ddl := fmt.Sprintf("CREATE TABLE %s (%s)", sqliteQuote(t.Name), strings.Join(cols, ", "))
		if _, err := conn.ExecContext(ctx, ddl); err != nil {
			c.close()
			return nil, fmt.Errorf("table %q: %w", t.Name, err)
		}
	}
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the sqlite driver offers no authorizer")
		}
		return r.RegisterAuthorizer(c.authorize)
	})
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

var sqliteJoinWords = regexp.MustCompile(`(?i)\b(using|natural)\b`)

// sqliteStar is the sentinel column of a restricted table's scratch copy.
// No real column is called so; a query naming it is refused all the same.
const sqliteStar = "*palisade: star*"

func (c *sqliteChecker) close() error {
	if c.conn != nil {
		c.conn.Close()
	}
	return c.db.Close()
}

func sqliteQuote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// authorize is SQLite's authorizer. It runs only inside check, with mu held.
func (c *sqliteChecker) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, database, trigger string) sqlite.AuthorizerReturnCode {
	run := c.run
	if run == nil {
		return sqlite.AuthorizerDeny // nothing else may use this connection
	}
	deny := func(format string, args ...any) sqlite.AuthorizerReturnCode {
		if run.denied == nil {
			run.denied = reject(format, args...)
		}
		return sqlite.AuthorizerDeny
	}
	switch action {
	case sqlite.AuthSelect:
		return sqlite.AuthorizerOK
	case sqlite.AuthRead:
		// trigger names the CTE being read, if any: the scratch database
		// has no triggers or views.
		// A read of no column (count(*)) comes without a database name.
		if database != "main" && !(database == "" && arg2 == "") {
			return deny("table %q of database %q is not allowed", shorten(arg1), shorten(database))
		}
		cols, ok := c.columns[strings.ToLower(arg1)]
		if !ok {
			return deny("table %q is not allowed", shorten(arg1))
		}
		if arg2 == sqliteStar {
			return deny("name the columns: this source exposes only some columns of %s", shorten(arg1))
		}
		// An empty column is a read of the table with no column, as in count(*).
		if arg2 != "" && !cols[strings.ToLower(arg2)] {
			return deny("column %q of table %q is not allowed", shorten(arg2), shorten(arg1))
		}
		run.tables[strings.ToLower(arg1)] = struct{}{}
		return sqlite.AuthorizerOK
	case sqlite.AuthFunction:
		if !sqliteFunctions[strings.ToLower(arg2)] {
			return deny("function %q is not allowed", shorten(arg2))
		}
		return sqlite.AuthorizerOK
	case sqlite.AuthRecursive:
		return deny("recursive CTEs are not allowed")
	case sqlite.AuthPragma:
		return deny("PRAGMA is not allowed")
	case sqlite.AuthAttach, sqlite.AuthDetach:
		return deny("ATTACH and DETACH are not allowed")
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		return deny("data-modifying statements are not allowed")
	}
	return deny("only SELECT is allowed (SQLite action %d)", action)
}

func (c *sqliteChecker) check(ctx context.Context, query string) (Verdict, error) {
	first, err := sqliteSingleStatement(query)
	if err != nil {
		return Verdict{}, err
	}
	if kw := sqliteFirstKeyword(first); kw != "select" && kw != "with" {
		return Verdict{}, reject("only SELECT is allowed, found %q", shorten(kw))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	run := &sqliteRun{tables: tablesRead{}}
	c.run = run
	defer func() { c.run = nil }()
	stmt, err := c.conn.PrepareContext(ctx, first)
	if err != nil {
		if run.denied != nil {
			return Verdict{}, run.denied
		}
		if ctx.Err() != nil {
			return Verdict{}, fmt.Errorf("sqlguard: sqlite compile: %w", ctx.Err())
		}
		return Verdict{}, reject("does not compile as SQLite: %s", shorten(err.Error()))
	}
	stmt.Close()
	if run.denied != nil { // denied by an authorizer call SQLite tolerated
		return Verdict{}, run.denied
	}
	// SQLite compares the columns of JOIN … USING and NATURAL joins
	// without asking the authorizer. With restricted tables the words are
	// refused wherever they appear (even quoted): a cheap over-approximation
	// that can only refuse more.
	if c.restricted && sqliteJoinWords.MatchString(first) {
		return Verdict{}, reject("JOIN … USING and NATURAL joins are not allowed on this source: join ON named columns")
	}
	return Verdict{Tables: run.tables.sorted()}, nil
}

// sqliteSingleStatement returns the first statement of query and rejects
// anything after it but whitespace and semicolons. The statement's end is
// found by SQLite's own tokenizer (sqlite3_complete), not by hand.
func sqliteSingleStatement(query string) (string, error) {
	tls := libc.NewTLS()
	defer tls.Close()
	for i := 0; i < len(query); i++ {
		if query[i] != ';' {
			continue
		}
		complete, err := sqliteComplete(tls, query[:i+1])
		if err != nil {
			return "", err
		}
		if !complete {
			continue
		}
		if strings.Trim(query[i+1:], " \t\r\n\f;") != "" {
			return "", reject("expected exactly one statement, found text after the first")
		}
		return query[:i+1], nil
	}
	return query, nil
}

func sqliteComplete(tls *libc.TLS, s string) (bool, error) {
	p, err := libc.CString(s)
	if err != nil {
		return false, fmt.Errorf("sqlguard: sqlite: %w", err)
	}
	defer libc.Xfree(tls, p)
	return sqlite3.Xsqlite3_complete(tls, p) != 0, nil
}

// sqliteFirstKeyword returns the first word of query, lower-cased, after
// whitespace and comments. SQLite's authorizer reports EXPLAIN as the
// SELECT it explains, so the statement kind is checked here too.
func sqliteFirstKeyword(query string) string {
	s := query
	for {
		s = strings.TrimLeft(s, " \t\r\n\f")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[i+4:]
		default:
			end := 0
			for end < len(s) && (s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z') {
				end++
			}
			return strings.ToLower(s[:end])
		}
	}
}
