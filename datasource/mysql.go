package datasource

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

type mysqlSource struct {
	db        *sql.DB
	connector driver.Connector

	mu      sync.Mutex
	flavor  string // "mariadb" or "mysql", known after the first connection
	version string
}

func (e *Executor) openMySQL(cfg Config) (source, error) {
	mc := mysql.NewConfig()
	mc.User = cfg.User
	mc.Passwd = cfg.Password.Reveal()
	mc.Net = "tcp"
	mc.Addr = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.port()))
	mc.DBName = cfg.Database
	mc.Loc = time.UTC
	mc.ParseTime = true
	mc.Timeout = e.opts.ConnectTimeout
	mc.Logger = &mysql.NopLogger{}
	// Config.DialFunc, not RegisterDialContext: the driver's dial registry
	// is global, this is per executor.
	mc.DialFunc = e.dialer().DialContext
	// The walls the driver holds: one statement per query, no LOAD DATA
	// LOCAL INFILE of any file, no client-side interpolation.
	mc.MultiStatements = false
	mc.AllowAllFiles = false
	mc.InterpolateParams = false
	mc.AllowCleartextPasswords = false
	mc.AllowOldPasswords = false
	mc.AllowFallbackToPlaintext = false
	// The guard reads strings as TiDB's parser does with no sql_mode; the
	// server's default (or a value a DBA chose) might have ANSI_QUOTES
	// ("x" a column) or NO_BACKSLASH_ESCAPES ('\' a whole string), and
	// read as SQL what the guard saw as a literal. The driver sets it on
	// every new connection; no query can change it (one SELECT, wrapped).
	mc.Params = map[string]string{"sql_mode": "'" + pinnedSQLMode + "'"}
	switch tlsMode := cfg.Params["tls"]; tlsMode {
	case "", "false":
		mc.TLSConfig = "false"
	default:
		mc.TLSConfig = tlsMode // one of the driver's built-in names: Validate allows no other
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("datasource: mysql config: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(e.opts.MaxOpenConns)
	db.SetMaxIdleConns(e.opts.MaxOpenConns)
	db.SetConnMaxIdleTime(e.opts.IdleTimeout)
	db.SetConnMaxLifetime(time.Hour)
	return &mysqlSource{db: db, connector: connector}, nil
}

func (s *mysqlSource) close() error { return s.db.Close() }

// serverFlavor asks the server once whether it is MariaDB or MySQL.
func (s *mysqlSource) serverFlavor(ctx context.Context, conn *sql.Conn) (string, error) {
	s.mu.Lock()
	flavor := s.flavor
	s.mu.Unlock()
	if flavor != "" {
		return flavor, nil
	}
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return "", err
	}
	flavor = "mysql"
	if strings.Contains(strings.ToLower(version), "mariadb") {
		flavor = "mariadb"
	}
	s.mu.Lock()
	s.flavor, s.version = flavor, version
	s.mu.Unlock()
	return flavor, nil
}

// session is one connection in a READ ONLY transaction, whose running
// statement is killed from another connection if ctx ends first.
func (s *mysqlSource) readOnly(ctx context.Context, fn func(tx *sql.Tx, flavor string) error) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	flavor, err := s.serverFlavor(ctx, conn)
	if err != nil {
		return err
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		return err
	}
	// Closing the client side does not stop a statement on the server:
	// KILL QUERY does, sent on a connection of its own (a user may kill
	// its own threads without any privilege).
	killed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(killed)
		s.killQuery(id)
	})
	defer func() {
		if !stop() {
			<-killed
			// The kill may have landed between statements: never reuse
			// this connection.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // START TRANSACTION READ ONLY
	if err != nil {
		return err
	}
	err = fn(tx, flavor)
	tx.Rollback()
	// GET_LOCK's locks outlive the transaction, on a connection the pool
	// hands to the next query: release them, or never reuse it.
	if _, rerr := conn.ExecContext(ctx, "DO RELEASE_ALL_LOCKS()"); rerr != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// pinnedSQLMode is the sql_mode of every query: strict, and none of the
// modes that change how the query is read (ANSI_QUOTES,
// NO_BACKSLASH_ESCAPES, PIPES_AS_CONCAT, IGNORE_SPACE, ANSI, ORACLE and
// the like). Both modes exist in MariaDB and MySQL.
const pinnedSQLMode = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"

func (s *mysqlSource) killQuery(id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dc, err := s.connector.Connect(ctx)
	if err != nil {
		return
	}
	defer dc.Close()
	if ex, ok := dc.(driver.ExecerContext); ok {
		ex.ExecContext(ctx, "KILL QUERY "+strconv.FormatInt(id, 10), nil)
	}
}

// timed wraps the outer query with the server's own statement time limit:
// MariaDB's SET STATEMENT max_statement_time (seconds) or MySQL's
// MAX_EXECUTION_TIME hint (milliseconds, on the outermost SELECT, where a
// hint inside the query cannot override it).
func timed(flavor, query string, l Limits) string {
	wrapped := wrapLimit(query, l.MaxRows)
	if flavor == "mariadb" {
		secs := strconv.FormatFloat(max(l.Timeout.Seconds(), 0.001), 'f', 3, 64)
		return "SET STATEMENT max_statement_time=" + secs + " FOR " + wrapped
	}
	ms := strconv.FormatInt(max(l.Timeout.Milliseconds(), 1), 10)
	return "SELECT /*+ MAX_EXECUTION_TIME(" + ms + ") */" + strings.TrimPrefix(wrapped, "SELECT")
}

func (s *mysqlSource) query(ctx context.Context, query string, l Limits, c *collector) error {
	return s.readOnly(ctx, func(tx *sql.Tx, flavor string) error {
		rows, err := tx.QueryContext(ctx, timed(flavor, query, l))
		if err != nil {
			return err
		}
		defer rows.Close()
		return collectRows(rows, c, mysqlValue)
	})
}

func (s *mysqlSource) schema(ctx context.Context) (Schema, error) {
	var out Schema
	err := s.readOnly(ctx, func(tx *sql.Tx, _ string) error {
		rows, err := tx.QueryContext(ctx, `
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, ORDINAL_POSITION`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var table, col, typ string
			if err := rows.Scan(&table, &col, &typ); err != nil {
				return err
			}
			out.add(table, Column{Name: col, Type: typ})
		}
		return rows.Err()
	})
	out.sort()
	return out, err
}

func (s *mysqlSource) dbError(err error) error {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return nil
	}
	switch me.Number {
	case 1969, 3024: // MariaDB max_statement_time, MySQL MAX_EXECUTION_TIME
		return fmt.Errorf("datasource: mysql: %s: %w", me.Message, ErrTimeout)
	}
	return &DatabaseError{Kind: MySQL, Code: strconv.Itoa(int(me.Number)), Message: me.Message}
}
