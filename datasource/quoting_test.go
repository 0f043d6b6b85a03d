package datasource_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/datasource"
)

// The guard reads string literals one way (standard_conforming_strings
// on; MySQL with no sql_mode); a server that read them another way would
// run, as SQL, text the guard saw inside a literal. The executor pins the
// reading for every query, whatever the role, database or server default.

// TestPostgresReadsStringsAsTheGuardDoes runs, as a role whose default is
// standard_conforming_strings off, a query the guard accepts: with the
// default in force, its second literal would be a UNION over the catalog.
func TestPostgresReadsStringsAsTheGuardDoes(t *testing.T) {
	t.Parallel()
	cfg := pgConfig(t)
	super := superPG(t)
	ctx := context.Background()
	const role = "palisade_scs_off"
	if _, err := super.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN
			CREATE ROLE %[1]s LOGIN PASSWORD '%[1]s';
		END IF;
	END $$`, role)); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"ALTER ROLE " + role + " SET standard_conforming_strings = off",
		"GRANT CONNECT ON DATABASE " + cfg.Database + " TO " + role,
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT ON sales TO " + role,
	} {
		if _, err := super.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	offCfg, err := datasource.ParseURL(fmt.Sprintf("postgres://%[1]s:%[1]s@%s:%d/%s?sslmode=disable", role, cfg.Host, cfg.Port, cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	exec := newExecutor(t, datasource.Options{})

	settings := mustQuery(t, target{"postgres", exec, offCfg},
		"SELECT current_setting('standard_conforming_strings') AS scs, current_setting('backslash_quote') AS bq", datasource.Limits{})
	if got := fmt.Sprint(settings.Rows); got != "[[on off]]" {
		t.Errorf("standard_conforming_strings and backslash_quote in a query: %s, want on and off", got)
	}
	res := mustQuery(t, target{"postgres", exec, offCfg},
		`SELECT '\' AS a, ' UNION SELECT rolname::text FROM pg_roles UNION SELECT datname::text FROM pg_database --' AS b FROM sales LIMIT 3`,
		datasource.Limits{})
	for _, row := range res.Rows {
		if row[0] != `\` || !strings.HasPrefix(fmt.Sprint(row[1]), " UNION SELECT") {
			t.Fatalf("row %v: the literals were read as SQL", row)
		}
	}
	if len(res.Rows) != 3 {
		t.Fatalf("%d rows, want 3 of sales", len(res.Rows))
	}
}

// TestMySQLReadsStringsAsTheGuardDoes: every query runs with the pinned
// sql_mode, none of whose modes changes how a query is read.
func TestMySQLReadsStringsAsTheGuardDoes(t *testing.T) {
	t.Parallel()
	tg := target{"mysql", newExecutor(t, datasource.Options{MaxOpenConns: 1}), mysqlConfig(t)}
	res := mustQuery(t, tg, "SELECT @@SESSION.sql_mode AS mode", datasource.Limits{})
	mode := fmt.Sprint(res.Rows[0][0])
	if mode != "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION" {
		t.Errorf("sql_mode in a query: %q, want the pinned STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION", mode)
	}
	// Double quotes are a string, a backslash escapes: as the guard reads them.
	res = mustQuery(t, tg, `SELECT "region" AS a, 'x\'y' AS b FROM sales LIMIT 1`, datasource.Limits{})
	if got := fmt.Sprint(res.Rows); got != "[[region x'y]]" {
		t.Errorf("literals read as %s, want [[region x'y]]", got)
	}
}
