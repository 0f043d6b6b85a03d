package datasource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

type pgSource struct {
	pool *pgxpool.Pool
}

// quoteConnValue quotes a value for a libpq keyword/value string.
func quoteConnValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (e *Executor) openPostgres(cfg Config) (source, error) {
	// Only the TLS mode comes from a connection string, parsed for its
	// TLS settings; every other field is set below, so neither the string
	// nor the environment's PG* variables decide where or as whom we
	// connect. The password never enters a string. The server's own
	// client certificate, key and CA (PGSSLCERT, PGSSLKEY, PGSSLROOTCERT,
	// PGSSLPASSWORD, or a service file's) are for its own databases: the
	// string names them empty, which wins over the environment, so a
	// tenant's server is never shown the certificate (nor told its path
	// in an error), and a tenant's verify-ca or verify-full checks against
	// the system's roots.
	sslmode := cfg.Params["sslmode"]
	if sslmode == "" {
		sslmode = "prefer"
	}
	connString := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s sslcert='' sslkey='' sslrootcert='' sslpassword=''",
		quoteConnValue(cfg.Host), cfg.port(), quoteConnValue(cfg.Database), quoteConnValue(cfg.User), sslmode)
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("datasource: postgres config: %w", err)
	}
	cc := pc.ConnConfig
	cc.Host = cfg.Host
	cc.Port = uint16(cfg.port())
	cc.Database = cfg.Database
	cc.User = cfg.User
	cc.Password = cfg.Password.Reveal()
	cc.ConnectTimeout = e.opts.ConnectTimeout
	cc.RuntimeParams = map[string]string{"application_name": "palisade"}
	if name := cfg.Params["application_name"]; name != "" {
		cc.RuntimeParams["application_name"] = name
	}
	cc.KerberosSrvName, cc.KerberosSpn = "", ""
	cc.OnNotice, cc.OnNotification, cc.OnPgError = nil, nil, nil
	cc.ValidateConnect = nil
	// One message (a row) larger than this breaks the connection instead
	// of being read into memory: pgx's own bound is 1 GB.
	maxMsg := int(min(max(2*e.opts.Defaults.MaxBytes, 16<<20), 1<<30-2))
	cc.AfterConnect = func(_ context.Context, c *pgconn.PgConn) error {
		c.Frontend().SetMaxBodyLen(maxMsg)
		return nil
	}
	cc.DialFunc = e.dialer().DialContext
	noClientCertificate(cc.TLSConfig)
	for _, fb := range cc.Fallbacks {
		fb.Host, fb.Port = cfg.Host, uint16(cfg.port())
		noClientCertificate(fb.TLSConfig)
	}
	// Unnamed statements on the extended protocol: one statement per
	// query (the server refuses several), and nothing prepared is left
	// behind on the tenant's server.
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	// A cancelled context sends a cancel request, through the same dialer,
	// so the query stops on the server, not only in this process.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	pc.MaxConns = int32(e.opts.MaxOpenConns)
	pc.MinConns = 0
	pc.MaxConnIdleTime = e.opts.IdleTimeout
	pc.HealthCheckPeriod = time.Minute
	pc.BeforeConnect, pc.AfterConnect, pc.BeforeAcquire, pc.AfterRelease = nil, nil, nil, nil
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("datasource: postgres pool: %w", err)
	}
	return &pgSource{pool: pool}, nil
}

// noClientCertificate makes sure tc (nil: no TLS) presents no client
// certificate, whatever the parsing found.
func noClientCertificate(tc *tls.Config) {
	if tc != nil {
		tc.Certificates, tc.GetClientCertificate = nil, nil
	}
}

func (s *pgSource) close() error {
	s.pool.Close()
	return nil
}

// readOnly runs fn in a READ ONLY transaction whose statement timeout the
// executor sets with SET LOCAL; the transaction is always rolled back.
func (s *pgSource) readOnly(ctx context.Context, timeout time.Duration, fn func(pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tx.Rollback(rctx)
	}()
	ms := strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)
	// The timer of a statement is armed when it starts, from the setting
	// in force then: a query that sets statement_timeout itself changes
	// the next statement, and there is none.
	// standard_conforming_strings on (and no \' inside a string) is how
	// the guard's parser reads strings: with it off, a role or database
	// default would make '\' the start of a string the guard saw end,
	// and the rest of the query SQL it never checked.
	// set_config(…, true) is SET LOCAL: all in one round trip.
	if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true),
		set_config('standard_conforming_strings', 'on', true), set_config('backslash_quote', 'off', true)`, ms); err != nil {
		return err
	}
	return fn(tx)
}

func (s *pgSource) query(ctx context.Context, query string, l Limits, c *collector) error {
	return s.readOnly(ctx, l.Timeout, func(tx pgx.Tx) error {
		qctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rows, err := tx.Query(qctx, wrapLimit(query, l.MaxRows))
		if err != nil {
			return err
		}
		defer rows.Close()
		tm := tx.Conn().TypeMap()
		fields := rows.FieldDescriptions()
		cols := make([]Column, len(fields))
		for i, f := range fields {
			cols[i] = Column{Name: f.Name, Type: pgTypeName(tm, f.DataTypeOID)}
		}
		if err := c.setColumns(cols); err != nil {
			return err
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			row := make([]any, len(vals))
			for i, v := range vals {
				row[i] = jsonValue(v, cols[i].Type)
			}
			more, err := c.add(row)
			if err != nil {
				return err
			}
			if !more {
				if c.byteCapped() {
					// Closing rows reads what is still coming, up to
					// MaxRows of them: stop the query on the server.
					cancel()
				}
				return nil
			}
		}
		return rows.Err()
	})
}

func pgTypeName(tm *pgtype.Map, oid uint32) string {
	if t, ok := tm.TypeForOID(oid); ok {
		return t.Name
	}
	return "oid " + strconv.FormatUint(uint64(oid), 10)
}

// pgSchemaQuery lists the columns of every table, view, materialized view
// and foreign table outside the system schemas that the user may read:
// whole tables, and the columns of tables granted column by column.
const pgSchemaQuery = `
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND has_column_privilege(c.oid, a.attnum, 'SELECT')
ORDER BY 1, 2, a.attnum`

func (s *pgSource) schema(ctx context.Context) (Schema, error) {
	var out Schema
	timeout := time.Until(deadlineOr(ctx, time.Now().Add(30*time.Second)))
	err := s.readOnly(ctx, timeout, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, pgSchemaQuery)
		if err != nil {
			return err
		}
		defer rows.Close()
		var ns, rel, col, typ string
		_, err = pgx.ForEachRow(rows, []any{&ns, &rel, &col, &typ}, func() error {
			name := rel
			if ns != "public" {
				name = ns + "." + rel
			}
			out.add(name, Column{Name: col, Type: typ})
			return nil
		})
		return err
	})
	out.sort()
	return out, err
}

func deadlineOr(ctx context.Context, d time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return d
}

func (s *pgSource) dbError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	if pe.Code == "57014" && strings.Contains(pe.Message, "statement timeout") {
		return fmt.Errorf("datasource: postgres: %s: %w", pe.Message, ErrTimeout)
	}
	return &DatabaseError{Kind: Postgres, Code: pe.Code, Message: pe.Message}
}
