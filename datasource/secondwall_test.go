package datasource_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/sqlguard"
	"github.com/palisadehq/palisade/sqlguard/sqlguardtest"
)

// filesHostileStatementsName are the paths the hostile corpus tries to
// write (INTO OUTFILE, COPY TO, VACUUM INTO, ATTACH).
var filesHostileStatementsName = []string{"/tmp/x", "/tmp/x.db", "/tmp/evil.db"}

// The second wall on its own: every hostile statement of the guard's
// corpus runs straight through the executor, the guard off, as the
// least-privilege reader. None may write anything, create a file, or read
// a row of salaries; each either fails at the database or is harmless.
func TestSecondWallHoldsWithoutTheGuard(t *testing.T) {
	t.Parallel()
	tgs := targets(t)
	pgSuper := superPG(t)
	myRoot := rootMySQL(t)
	// A SQLite source of its own, whose root this test watches.
	sqliteRoot, sqliteCfg := sqliteFixture(t)
	tgs[2].exec = newExecutor(t, datasource.Options{SQLiteRoot: sqliteRoot})
	tgs[2].cfg = sqliteCfg
	// state is what no statement may change, as a superuser sees it.
	state := map[string]func() string{
		"postgres": func() string {
			var s string
			err := pgSuper.QueryRow(context.Background(), `
SELECT (SELECT count(*) || '/' || sum(amount) || '/' || sum(quantity) FROM sales) || ' ' ||
       (SELECT count(*) || '/' || sum(salary) FROM salaries) || ' ' ||
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public') || ' ' ||
       (SELECT rolsuper::text FROM pg_roles WHERE rolname = 'palisade_reader')`).Scan(&s)
			if err != nil {
				t.Fatalf("postgres state: %v", err)
			}
			return s
		},
		"mysql": func() string {
			var s string
			err := myRoot.QueryRow(`
SELECT CONCAT_WS(' ',
  (SELECT CONCAT(count(*), '/', sum(amount), '/', sum(quantity)) FROM sales),
  (SELECT CONCAT(count(*), '/', sum(salary)) FROM salaries),
  (SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()),
  (SELECT count(*) FROM information_schema.user_privileges WHERE grantee LIKE '%palisade_reader%'))`).Scan(&s)
			if err != nil {
				t.Fatalf("mysql state: %v", err)
			}
			return s
		},
		"sqlite": func() string {
			entries, err := os.ReadDir(sqliteRoot)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			own, err := os.ReadDir(filepath.Join(sqliteRoot, sqliteOrg))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range own {
				names = append(names, sqliteOrg+"/"+e.Name())
			}
			b, err := os.ReadFile(filepath.Join(sqliteRoot, sqliteOrg, "sales.db"))
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%v %x", names, sha256.Sum256(b))
		},
	}
	filesBefore := map[string]bool{}
	for _, f := range filesHostileStatementsName {
		_, err := os.Stat(f)
		filesBefore[f] = err == nil
	}
	for _, tg := range tgs {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			before := state[tg.name]()
			statements := sqlguardtest.Hostile(sqlguard.Dialect(tg.cfg.Kind))
			var failed, harmless, timedOut int
			for _, q := range statements {
				res, err := tg.exec.Query(context.Background(), tg.cfg, q,
					datasource.Limits{Timeout: 2 * time.Second, MaxRows: 100, MaxBytes: 1 << 20})
				if err != nil {
					if errors.Is(err, datasource.ErrTimeout) {
						timedOut++
					}
					failed++
					if containsCanary(err.Error()) {
						t.Errorf("%q: the error shows salaries: %v", q, err)
					}
					if testing.Verbose() {
						t.Logf("error   %q: %v", q, err)
					}
					continue
				}
				harmless++
				if containsCanary(res.Rows) || strings.Contains(fmt.Sprint(res.Columns), "salary") {
					t.Errorf("%q: read salaries: %v", q, res.Rows)
				}
				if strings.Contains(fmt.Sprint(res.Rows), "root:") {
					t.Errorf("%q: read a server file: %v", q, res.Rows)
				}
				if testing.Verbose() {
					t.Logf("ran     %q: %d rows", q, res.RowCount)
				}
			}
			if after := state[tg.name](); after != before {
				t.Errorf("the data changed: before %q, after %q", before, after)
			}
			res := mustQuery(t, tg, "SELECT count(*) AS n FROM sales", datasource.Limits{})
			if res.Rows[0][0] != int64(3000) {
				t.Errorf("count after the corpus: %v", res.Rows)
			}
			t.Logf("%s: %d hostile statements: %d failed at the database or the executor (%d of them at the timeout), %d ran harmlessly",
				tg.name, len(statements), failed, timedOut, harmless)
		})
	}
	t.Cleanup(func() {
		for _, f := range filesHostileStatementsName {
			if _, err := os.Stat(f); err == nil && !filesBefore[f] {
				t.Errorf("a hostile statement created %s", f)
			}
		}
	})
}

// The SQLite walls one by one, with the guard off: no write, no ATTACH,
// no PRAGMA that lifts query_only, no extension, no other table.
func TestSQLiteWalls(t *testing.T) {
	t.Parallel()
	root, cfg := sqliteFixture(t)
	e := newExecutor(t, datasource.Options{SQLiteRoot: root})
	evil := filepath.Join(t.TempDir(), "evil.db")
	for _, q := range []string{
		"ATTACH DATABASE '" + evil + "' AS evil",
		"SELECT * FROM sales) AS x; ATTACH DATABASE '" + evil + "' AS evil; SELECT * FROM (SELECT 1",
		"SELECT * FROM sales) AS x; PRAGMA query_only = 0; DELETE FROM sales; SELECT * FROM (SELECT 1",
		"SELECT * FROM sales) AS x; DELETE FROM sales; SELECT * FROM (SELECT 1",
		"SELECT load_extension('/tmp/evil.so')",
		"SELECT * FROM salaries",
		"SELECT employee FROM sales, salaries",
		"VACUUM INTO '" + evil + "'",
	} {
		res, err := e.Query(context.Background(), cfg, q, datasource.Limits{})
		if err == nil {
			t.Errorf("%q ran: %v", q, res.Rows)
		}
	}
	if _, err := os.Stat(evil); err == nil {
		t.Errorf("%s was created", evil)
	}
	db, err := sql.Open("sqlite", filepath.Join(root, sqliteOrg, "sales.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM sales").Scan(&n); err != nil || n != 3000 {
		t.Fatalf("sales has %d rows (%v)", n, err)
	}
}

// A named lock taken by one query does not stay with the pooled
// connection for the next.
func TestMySQLLocksDoNotOutliveAQuery(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, datasource.Options{MaxOpenConns: 1})
	cfg := mysqlConfig(t)
	res := mustQuery(t, target{"mysql", e, cfg}, "SELECT GET_LOCK('palisade_test_lock', 0) AS got", datasource.Limits{})
	if res.Rows[0][0] != int64(1) {
		t.Fatalf("GET_LOCK: %v", res.Rows)
	}
	var free int
	if err := rootMySQL(t).QueryRow("SELECT IS_FREE_LOCK('palisade_test_lock')").Scan(&free); err != nil || free != 1 {
		t.Fatalf("the lock is still held after the query (%d, %v)", free, err)
	}
}
