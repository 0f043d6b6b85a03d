package sqlguard_test

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/palisadehq/palisade/sqlguard"
	"github.com/palisadehq/palisade/sqlguard/sqlguardtest"
)

// Each fuzz target checks that the guard never panics, that a refusal is
// a *RejectedError, and that whatever it accepts is, by a second check
// that does not share the guard's code, one SELECT over allowed tables.

func seed(f *testing.F, d sqlguard.Dialect) {
	for _, q := range sqlguardtest.Hostile(d) {
		f.Add(q)
	}
}

func mustBeRejection(t *testing.T, err error) {
	t.Helper()
	var rejected *sqlguard.RejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("error is not a rejection: %v", err)
	}
}

var allowedNames = []string{"sales", "customers"}

func FuzzPostgres(f *testing.F) {
	seed(f, sqlguard.Postgres)
	for _, c := range columnCases {
		f.Add(c.query)
	}
	restricted, err := sqlguard.New(sqlguard.Policy{Dialect: sqlguard.Postgres, Tables: restrictedTables})
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range legitimateQueries()[sqlguard.Postgres] {
		f.Add(q)
	}
	g, err := sqlguard.New(sqlguard.Policy{Dialect: sqlguard.Postgres, Tables: testTables, Normalize: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string) {
		checkRestrictedPostgres(t, restricted, query)
		v, err := g.Check(context.Background(), query)
		if err != nil {
			mustBeRejection(t, err)
			return
		}
		sum, err := pg.Summary(query, -1)
		if err != nil {
			t.Fatalf("accepted %q but Summary fails: %v", query, err)
		}
		if !slices.Equal(sum.StatementTypes, []string{"SelectStmt"}) {
			t.Fatalf("accepted %q with statement types %v", query, sum.StatementTypes)
		}
		for _, table := range sum.Tables {
			if table.SchemaName != "" || !slices.Contains(allowedNames, table.TableName) && !slices.Contains(sum.CteNames, table.TableName) {
				t.Fatalf("accepted %q reading table %q", query, table.Name)
			}
		}
		for _, table := range v.Tables {
			if !slices.Contains(allowedNames, table) {
				t.Fatalf("accepted %q with verdict table %q", query, table)
			}
		}
		// The normalized statement must be accepted as well.
		if _, err := g.Check(context.Background(), v.Normalized); err != nil {
			t.Fatalf("accepted %q but not its normalized form %q: %v", query, v.Normalized, err)
		}
	})
}

// tableNames collects every table name in a TiDB AST.
type tableNames struct{ names, ctes []string }

func (c *tableNames) Enter(n ast.Node) (ast.Node, bool) {
	switch n := n.(type) {
	case *ast.TableName:
		c.names = append(c.names, n.Schema.O+"."+n.Name.O)
	case *ast.CommonTableExpression:
		c.ctes = append(c.ctes, "."+n.Name.O)
	}
	return n, false
}
func (c *tableNames) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func FuzzMySQL(f *testing.F) {
	seed(f, sqlguard.MySQL)
	for _, q := range legitimateQueries()[sqlguard.MySQL] {
		f.Add(q)
	}
	g := newGuard(f, sqlguard.MySQL)
	f.Fuzz(func(t *testing.T, query string) {
		_, err := g.Check(context.Background(), query)
		if err != nil {
			mustBeRejection(t, err)
			return
		}
		stmts, _, err := parser.New().Parse(query, "", "")
		if err != nil || len(stmts) != 1 {
			t.Fatalf("accepted %q: %d statements, %v", query, len(stmts), err)
		}
		switch s := stmts[0].(type) {
		case *ast.SelectStmt:
			if s.SelectIntoOpt != nil || s.LockInfo != nil && s.LockInfo.LockType != ast.SelectLockNone {
				t.Fatalf("accepted %q with INTO or a lock", query)
			}
		case *ast.SetOprStmt:
		default:
			t.Fatalf("accepted %q, a %T", query, s)
		}
		var c tableNames
		stmts[0].Accept(&c)
		for _, name := range c.names {
			if !slices.Contains(allowedNames, strings.TrimPrefix(name, ".")) && !slices.Contains(c.ctes, name) {
				t.Fatalf("accepted %q reading table %q", query, name)
			}
		}
	})
}

func FuzzSQLite(f *testing.F) {
	seed(f, sqlguard.SQLite)
	for _, q := range legitimateQueries()[sqlguard.SQLite] {
		f.Add(q)
	}
	g := newGuard(f, sqlguard.SQLite)
	// The independent check runs what was accepted, every statement of it,
	// on a separate database that SQLite itself keeps read-only and that
	// holds only the allowed tables, so a write or a read of any other
	// table fails there.
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	f.Cleanup(func() { db.Close() })
	for _, ddl := range []string{
		"CREATE TABLE sales (id, region, amount, sold_at, customer_id)",
		"CREATE TABLE customers (id, name, country)",
		"PRAGMA query_only = 1",
	} {
		if _, err := db.Exec(ddl); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		_, err := g.Check(context.Background(), query)
		if err != nil {
			mustBeRejection(t, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rows, err := db.QueryContext(ctx, query)
		if err != nil && strings.Contains(err.Error(), "missing ") && strings.Contains(err.Error(), "argument") {
			return // a bind parameter: harmless, but the query cannot run without it
		}
		if err != nil {
			t.Fatalf("accepted %q but the read-only database refuses it: %v", query, err)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("accepted %q but running it fails: %v", query, err)
		}
		rows.Close()
	})
}

// checkRestrictedPostgres checks that a query accepted on restrictedTables
// has, as libpg_query sees it, no * if it reads a restricted table, and no
// column reference to the hidden column salary (unless salary is also an
// alias, which a bare ORDER BY may name).
func checkRestrictedPostgres(t *testing.T, g *sqlguard.Guard, query string) {
	t.Helper()
	if _, err := g.Check(context.Background(), query); err != nil {
		mustBeRejection(t, err)
		return
	}
	tree, err := pg.ParseToJSON(query)
	if err != nil {
		t.Fatalf("accepted %q but it does not parse: %v", query, err)
	}
	readsRestricted := strings.Contains(tree, `"relname":"staff"`) || strings.Contains(tree, `"relname":"payroll"`)
	if readsRestricted && strings.Contains(tree, `"A_Star"`) {
		t.Fatalf("accepted %q on a restricted policy with a *", query)
	}
	if hiddenColumnRef.MatchString(tree) && !strings.Contains(tree, `"name":"salary"`) {
		t.Fatalf("accepted %q reading the hidden column salary", query)
	}
}

var hiddenColumnRef = regexp.MustCompile(`"ColumnRef":\{"fields":\[(\{"String":\{"sval":"[^"]*"\}\},)?\{"String":\{"sval":"salary"\}\}\]`)
