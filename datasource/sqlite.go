package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/palisadehq/palisade/netguard"
)

type sqliteSource struct {
	db     *sql.DB
	tables []string // Config.Tables
}

func (e *Executor) openSQLite(cfg Config) (source, error) {
	if e.opts.SQLiteRoot == "" {
		return nil, fmt.Errorf("datasource: sqlite: %w: no SQLite root is configured", netguard.ErrPathRefused)
	}
	if !validOrgDir(cfg.Org) {
		return nil, fmt.Errorf("datasource: sqlite: %w: the source names no organization directory", netguard.ErrPathRefused)
	}
	// The organization's directory comes first, and the whole path is
	// checked under the root: a path can climb out of neither.
	path, err := netguard.SQLitePath(e.opts.SQLiteRoot, cfg.Org+"/"+cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("datasource: sqlite: %w", err)
	}
	// mode=ro opens the file read-only (and never creates it); query_only
	// refuses writes even to a temporary table. The URI form hands mode to
	// SQLite itself: a plain file name would drop it.
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_query_only=1"}
	connector, err := sqlite.NewConnector(u.String())
	if err != nil {
		return nil, fmt.Errorf("datasource: sqlite: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(e.opts.MaxOpenConns)
	db.SetMaxIdleConns(e.opts.MaxOpenConns)
	db.SetConnMaxIdleTime(e.opts.IdleTimeout)
	return &sqliteSource{db: db, tables: slices.Clone(cfg.Tables)}, nil
}

func (s *sqliteSource) close() error { return s.db.Close() }

// validOrgDir reports whether org can be a directory of the SQLite root:
// one path element, not . or .., no separator or control character.
func validOrgDir(org string) bool {
	if org == "" || org == "." || org == ".." || len(org) > 128 {
		return false
	}
	return !strings.ContainsFunc(org, func(r rune) bool { return r == '/' || r == '\\' || r < 0x20 || r == 0x7f })
}

// conn takes a connection and sets its walls for one use: no attached
// database, no value longer than maxLen, and an authorizer that allows
// reading (of the allowed tables only, when the config lists them) and
// nothing else. catalog also lets the schema snapshot read the table list
// and table_info.
func (s *sqliteSource) conn(ctx context.Context, tables []string, maxLen int64, catalog bool) (*sql.Conn, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_ATTACHED, 0); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, int(min(max(maxLen, 1<<10), 1<<30))); err != nil {
		conn.Close()
		return nil, err
	}
	// The tables the file holds, read with no authorizer (the last use of
	// this connection left one): SQLite reports a read of no column (as in
	// count(*)) and a read of a CTE alike, with no database name, so only
	// the file's own table names tell them apart.
	if err := setAuthorizer(conn, nil); err != nil {
		conn.Close()
		return nil, err
	}
	real := map[string]bool{}
	names, err := conn.QueryContext(ctx, "SELECT lower(name) FROM main.sqlite_schema WHERE type IN ('table', 'view')")
	if err != nil {
		conn.Close()
		return nil, err
	}
	for names.Next() {
		var n string
		if err := names.Scan(&n); err != nil {
			names.Close()
			conn.Close()
			return nil, err
		}
		real[n] = true
	}
	names.Close()
	allowed := map[string]bool{}
	for _, t := range tables {
		allowed[strings.ToLower(t)] = true
	}
	auth := func(action sqlite.AuthorizerActionCode, arg1, arg2, database, _ string) sqlite.AuthorizerReturnCode {
		switch action {
		case sqlite.AuthSelect, sqlite.AuthRecursive:
			return sqlite.AuthorizerOK
		case sqlite.AuthRead:
			table := strings.ToLower(arg1)
			switch {
			case database != "main" && database != "":
				return sqlite.AuthorizerDeny
			case catalog || len(allowed) == 0 || allowed[table]:
				return sqlite.AuthorizerOK
			case database == "" && arg2 == "" && !real[table]:
				return sqlite.AuthorizerOK // a CTE
			}
			return sqlite.AuthorizerDeny
		case sqlite.AuthFunction:
			if strings.EqualFold(arg2, "load_extension") {
				return sqlite.AuthorizerDeny
			}
			return sqlite.AuthorizerOK
		case sqlite.AuthPragma:
			if catalog && strings.EqualFold(arg1, "table_info") {
				return sqlite.AuthorizerOK
			}
		}
		return sqlite.AuthorizerDeny
	}
	if err := setAuthorizer(conn, auth); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func setAuthorizer(conn *sql.Conn, auth sqlite.AuthorizerFn) error {
	return conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the sqlite driver offers no authorizer")
		}
		return r.RegisterAuthorizer(auth)
	})
}

// query runs under ctx's deadline: modernc's driver interrupts the
// statement when ctx ends, checked by its progress handler every 1000
// virtual-machine steps (the driver owns the connection's only progress
// handler slot, so the executor's time limit is that deadline).
func (s *sqliteSource) query(ctx context.Context, query string, l Limits, c *collector) error {
	// SQLite has no server to time out first: the executor's limit is the
	// deadline itself.
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	conn, err := s.conn(ctx, s.tables, l.MaxBytes+1, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	return s.run(ctx, conn, query, l, c)
}

func (s *sqliteSource) run(ctx context.Context, conn *sql.Conn, query string, l Limits, c *collector) error {
	rows, err := conn.QueryContext(ctx, wrapLimit(query, l.MaxRows))
	if err != nil {
		return err
	}
	defer rows.Close()
	return collectRows(rows, c, jsonValue)
}

func (s *sqliteSource) schema(ctx context.Context) (Schema, error) {
	var out Schema
	conn, err := s.conn(ctx, nil, 1<<20, true)
	if err != nil {
		return out, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `
SELECT m.name, p.name, p.type
FROM main.sqlite_schema AS m, pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
ORDER BY m.name, p.cid`)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			return out, err
		}
		if len(s.tables) > 0 && !slices.ContainsFunc(s.tables, func(t string) bool { return strings.EqualFold(t, table) }) {
			continue
		}
		out.add(table, Column{Name: col, Type: strings.ToLower(typ)})
	}
	out.sort()
	return out, rows.Err()
}

func (s *sqliteSource) dbError(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	if se.Code()&0xff == sqlite3.SQLITE_INTERRUPT {
		return fmt.Errorf("datasource: sqlite: interrupted: %w", ErrTimeout)
	}
	return &DatabaseError{Kind: SQLite, Code: sqlite.ErrorCodeString[se.Code()], Message: se.Error()}
}
