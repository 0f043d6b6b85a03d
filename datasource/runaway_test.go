package datasource_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/datasource"
)

// Runaway queries end at the executor's timeout with ErrTimeout, and the
// pool serves a normal query right after.
func TestRunawayQueriesTimeOut(t *testing.T) {
	t.Parallel()
	runaway := map[string][]string{
		"postgres": {
			"SELECT pg_sleep(60)",
			"SELECT count(*) FROM generate_series(1, 100000000) a, generate_series(1, 100000000) b",
			"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
			"SELECT count(*) FROM sales a, sales b, sales c",
		},
		"mysql": {
			"SELECT SLEEP(60)",
			"SELECT BENCHMARK(100000000000, MD5('x'))",
			"SELECT count(*) FROM sales a, sales b, sales c",
			// MariaDB stops a recursion after max_recursive_iterations
			// (1000): crossing the CTE with itself runs away all the same.
			"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT count(*) FROM r a, r b, r c, r d",
		},
		"sqlite": {
			"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
			"SELECT count(*) FROM sales a, sales b, sales c",
		},
	}
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, q := range runaway[tg.name] {
				start := time.Now()
				_, err := tg.exec.Query(context.Background(), tg.cfg, q, datasource.Limits{Timeout: time.Second})
				took := time.Since(start)
				if !errors.Is(err, datasource.ErrTimeout) {
					t.Errorf("%q: err = %v after %s, want ErrTimeout", q, err, took)
				}
				t.Logf("%q: %v after %s", q, err, took.Round(time.Millisecond))
				res, err := tg.exec.Query(context.Background(), tg.cfg, "SELECT count(*) AS n FROM sales", datasource.Limits{})
				if err != nil || res.Rows[0][0] != int64(3000) {
					t.Errorf("after %q: %v, %v", q, res.Rows, err)
				}
			}
		})
	}
}

// A statement that switches statement_timeout off for itself still stops
// at the executor's timeout, and the error is the server's own.
func TestPostgresStatementCannotLiftItsTimeout(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, datasource.Options{})
	for _, q := range []string{
		"SELECT set_config('statement_timeout', '0', false), pg_sleep(5)",
		"SELECT set_config('statement_timeout', '0', true) AS a, pg_sleep(5) AS b",
	} {
		_, err := e.Query(context.Background(), pgConfig(t), q, datasource.Limits{Timeout: 500 * time.Millisecond})
		if !errors.Is(err, datasource.ErrTimeout) || !strings.Contains(err.Error(), "statement timeout") {
			t.Errorf("%q: err = %v, want the server's statement timeout", q, err)
		}
	}
}

// The caller's own deadline counts as a timeout too.
func TestCallerDeadlineIsATimeout(t *testing.T) {
	t.Parallel()
	for _, tg := range targets(t) {
		q := "SELECT count(*) FROM sales a, sales b, sales c"
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := tg.exec.Query(ctx, tg.cfg, q, datasource.Limits{Timeout: time.Minute})
		cancel()
		if !errors.Is(err, datasource.ErrTimeout) {
			t.Errorf("%s: err = %v, want ErrTimeout", tg.name, err)
		}
	}
}

// Cancelling the caller's context stops the query on the server, seen from
// the server's own list of running statements.
func TestCancelStopsTheQueryOnTheServer(t *testing.T) {
	t.Parallel()
	pgSuper := superPG(t)
	myRoot := rootMySQL(t)
	running := map[string]func(marker string) int{
		"postgres": func(marker string) int {
			var n int
			err := pgSuper.QueryRow(context.Background(),
				"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
				marker).Scan(&n)
			if err != nil {
				t.Errorf("pg_stat_activity: %v", err)
			}
			return n
		},
		"mysql": func(marker string) int {
			var n int
			err := myRoot.QueryRow(
				"SELECT count(*) FROM information_schema.processlist WHERE info LIKE CONCAT('%', ?, '%') AND id <> CONNECTION_ID()",
				marker).Scan(&n)
			if err != nil {
				t.Errorf("processlist: %v", err)
			}
			return n
		},
	}
	sleep := map[string]string{"postgres": "pg_sleep(30)", "mysql": "SLEEP(30)"}
	for _, tg := range targets(t)[:2] {
		t.Run(tg.name, func(t *testing.T) {
			marker := fmt.Sprintf("cancel_marker_%d", time.Now().UnixNano())
			q := fmt.Sprintf("SELECT %s AS s, '%s' AS m", sleep[tg.name], marker)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := tg.exec.Query(ctx, tg.cfg, q, datasource.Limits{Timeout: time.Minute})
				done <- err
			}()
			if !eventually(func() bool { return running[tg.name](marker) == 1 }) {
				cancel()
				t.Fatalf("the query never showed as running on the server")
			}
			cancel()
			err := <-done
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if !eventually(func() bool { return running[tg.name](marker) == 0 }) {
				t.Fatalf("the query still runs on the server after the cancel")
			}
		})
	}
}

// eventually polls cond for up to 5 s.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
