package sqlguard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/sqlguard"
	"github.com/palisadehq/palisade/sqlguard/sqlguardtest"
)

var testTables = []sqlguard.Table{
	{Name: "sales", Columns: []string{"id", "region", "amount", "sold_at", "customer_id"}},
	{Name: "customers", Columns: []string{"id", "name", "country"}},
}

func newGuard(t testing.TB, d sqlguard.Dialect) *sqlguard.Guard {
	t.Helper()
	g, err := sqlguard.New(sqlguard.Policy{Dialect: d, Tables: testTables})
	if err != nil {
		t.Fatalf("New(%s): %v", d, err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestHostileStatementsAreRejected(t *testing.T) {
	t.Parallel()
	dialects := map[sqlguard.Dialect][]string{
		sqlguard.Postgres: sqlguardtest.Hostile(sqlguard.Postgres),
		sqlguard.MySQL:    sqlguardtest.Hostile(sqlguard.MySQL),
		sqlguard.SQLite:   sqlguardtest.Hostile(sqlguard.SQLite),
	}
	total := 0
	for d, queries := range dialects {
		total += len(queries)
		t.Logf("%s: %d hostile statements", d, len(queries))
		g := newGuard(t, d)
		for _, q := range queries {
			v, err := g.Check(context.Background(), q)
			var rejected *sqlguard.RejectedError
			if !errors.As(err, &rejected) {
				t.Errorf("%s: accepted or failed oddly (%v, %+v): %q", d, err, v, q)
				continue
			}
			if rejected.Reason == "" || strings.Contains(rejected.Reason, "\n") || len(rejected.Reason) > 200 {
				t.Errorf("%s: reason %q for %q is not one short line", d, rejected.Reason, q)
			}
			if testing.Verbose() {
				t.Logf("%s: %q → %s", d, q, rejected.Reason)
			}
		}
	}
	if total < 150 {
		t.Errorf("only %d hostile statements", total)
	}
}

func legitimateQueries() map[sqlguard.Dialect][]string {
	common := []string{
		"SELECT * FROM sales",
		"SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY total DESC LIMIT 10",
		"SELECT count(*) FROM sales",
		"SELECT count(DISTINCT customer_id) FROM sales WHERE amount > 100",
		"SELECT s.region, c.country, avg(s.amount) FROM sales s JOIN customers c ON c.id = s.customer_id GROUP BY s.region, c.country",
		"SELECT * FROM sales s LEFT JOIN customers c ON c.id = s.customer_id",
		"SELECT region, amount, rank() OVER (PARTITION BY region ORDER BY amount DESC) FROM sales",
		"SELECT region, sum(amount) OVER (PARTITION BY region) FROM sales",
		"SELECT id, lag(amount) OVER (ORDER BY sold_at) FROM sales",
		"SELECT row_number() OVER (ORDER BY amount) FROM sales",
		"WITH big AS (SELECT * FROM sales WHERE amount > 1000) SELECT region, count(*) FROM big GROUP BY region",
		"WITH a AS (SELECT * FROM sales), b AS (SELECT region FROM a) SELECT count(*) FROM b",
		"SELECT * FROM (SELECT region, max(amount) AS m FROM sales GROUP BY region) t WHERE m > 10",
		"SELECT region FROM sales WHERE customer_id IN (SELECT id FROM customers WHERE country = 'NL')",
		"SELECT region FROM sales UNION SELECT country FROM customers",
		"SELECT CASE WHEN amount > 100 THEN 'big' ELSE 'small' END, count(*) FROM sales GROUP BY 1",
		"SELECT upper(region), lower(region), length(region), round(amount, 2), abs(amount) FROM sales",
		"SELECT coalesce(region, 'none'), nullif(amount, 0) FROM sales",
		"SELECT * FROM sales WHERE region LIKE 'EU%' AND amount BETWEEN 1 AND 100 AND id IN (1, 2, 3)",
		"SELECT * FROM sales WHERE region IS NOT NULL ORDER BY sold_at DESC LIMIT 5 OFFSET 10",
		"SELECT min(amount), max(amount), avg(amount) FROM sales HAVING count(*) > 0",
		"SELECT * FROM sales CROSS JOIN customers",
		"SELECT * FROM sales WHERE EXISTS (SELECT 1 FROM customers WHERE customers.id = sales.customer_id)",
		"  select region from sales  ",
		"SELECT * FROM sales;",
		"SELECT 'DROP TABLE x; --' AS s FROM sales",
		"SELECT /* plain comment */ region FROM sales",
		"SELECT region FROM sales -- trailing comment",
	}
	pgOnly := []string{
		"SELECT * FROM SALES",
		"SELECT date_trunc('month', sold_at), sum(amount) FROM sales GROUP BY 1",
		"SELECT extract(year FROM sold_at) FROM sales",
		"SELECT amount::numeric(10,2), sold_at::date FROM sales",
		"SELECT * FROM sales WHERE sold_at > now() - interval '7 days'",
		"SELECT * FROM sales WHERE sold_at > current_date",
		"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM sales",
		"SELECT string_agg(region, ',') FROM sales",
		"SELECT count(*) FILTER (WHERE amount > 10) FROM sales",
		"SELECT region, sum(amount) FROM sales GROUP BY ROLLUP (region)",
		`SELECT "region" FROM "sales"`,
		"SELECT greatest(amount, 0), least(amount, 10) FROM sales",
		"SELECT substring(region FROM 1 FOR 2), trim(both FROM region) FROM sales",
		"SELECT * FROM sales WHERE region ILIKE 'eu%'",
		"SELECT to_char(sold_at, 'YYYY-MM') FROM sales",
		"SELECT s.region, s.amount FROM sales s WHERE s.amount > 0 ORDER BY s.sold_at",
		"SELECT x.region, x.total FROM (SELECT region, sum(amount) AS total FROM sales GROUP BY region) x",
		"WITH c AS (SELECT region, count(*) FROM sales GROUP BY region) SELECT c.region, c.count FROM c",
		"SELECT x.region, x.country FROM (SELECT * FROM sales s JOIN customers c ON c.id = s.customer_id) x",
		"SELECT x.r, x.amount FROM (SELECT region, amount FROM sales) x(r)",
		"WITH c(r, n) AS (SELECT region, count(*) FROM sales GROUP BY 1) SELECT c.r, c.n FROM c",
		"SELECT u.region FROM (SELECT region FROM sales UNION SELECT country FROM customers) u",
		"SELECT s.region FROM sales s WHERE s.customer_id IN (SELECT c.id FROM customers c WHERE c.country = s.region)",
		"SELECT s.* FROM sales s",
		"SELECT sum(amount) OVER w FROM sales WINDOW w AS (PARTITION BY region ORDER BY sold_at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
	}
	mysqlOnly := []string{
		"SELECT DATE_FORMAT(sold_at, '%Y-%m'), SUM(amount) FROM sales GROUP BY 1",
		"SELECT YEAR(sold_at), MONTH(sold_at) FROM sales",
		"SELECT IFNULL(region, 'x'), IF(amount > 1, 'a', 'b') FROM sales",
		"SELECT GROUP_CONCAT(region) FROM sales",
		"SELECT * FROM sales WHERE sold_at > DATE_SUB(NOW(), INTERVAL 7 DAY)",
		"SELECT `region` FROM `sales`",
		"SELECT CAST(amount AS SIGNED) FROM sales",
		"SELECT EXTRACT(YEAR FROM sold_at) FROM sales",
	}
	sqliteOnly := []string{
		"SELECT * FROM SALES",
		"SELECT * FROM sales WHERE id = 1; ",
		"SELECT strftime('%Y-%m', sold_at), total(amount) FROM sales GROUP BY 1",
		"SELECT date(sold_at), datetime(sold_at) FROM sales",
		`SELECT "region" FROM "Sales"`,
		"SELECT main.sales.region FROM main.sales",
		"SELECT iif(amount > 1, 'a', 'b') FROM sales",
		"SELECT group_concat(region, ',') FROM sales",
		"SELECT CAST(amount AS INTEGER) FROM sales",
	}
	return map[sqlguard.Dialect][]string{
		sqlguard.Postgres: append(append([]string{}, common...), pgOnly...),
		sqlguard.MySQL:    append(append([]string{}, common...), mysqlOnly...),
		sqlguard.SQLite:   append(append([]string{}, common...), sqliteOnly...),
	}
}

func TestLegitimateQueriesAreAccepted(t *testing.T) {
	t.Parallel()
	for d, queries := range legitimateQueries() {
		g := newGuard(t, d)
		for _, q := range queries {
			v, err := g.Check(context.Background(), q)
			if err != nil {
				t.Errorf("%s: rejected %q: %v", d, q, err)
				continue
			}
			if len(v.Tables) == 0 {
				t.Errorf("%s: %q: verdict names no tables", d, q)
			}
			for _, table := range v.Tables {
				if table != "sales" && table != "customers" {
					t.Errorf("%s: %q: verdict names table %q", d, q, table)
				}
			}
		}
	}
}

func TestVerdictListsTablesAndNormalizes(t *testing.T) {
	t.Parallel()
	policy := sqlguard.Policy{Dialect: sqlguard.Postgres, Tables: testTables, Normalize: true}
	v, err := sqlguard.Check(context.Background(), policy, "select  c.name, sum(s.amount) from sales s join customers c on c.id = s.customer_id group by 1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(v.Tables, ",") != "customers,sales" {
		t.Errorf("tables = %v", v.Tables)
	}
	if !strings.HasPrefix(v.Normalized, "SELECT c.name") {
		t.Errorf("normalized = %q", v.Normalized)
	}
}

func TestQuotedNamesMatchPerDialect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	policy := sqlguard.Policy{Dialect: sqlguard.Postgres, Tables: []sqlguard.Table{{Name: "Sales"}}}
	if _, err := sqlguard.Check(ctx, policy, `SELECT * FROM "Sales"`); err != nil {
		t.Errorf(`quoted "Sales" should match table Sales: %v`, err)
	}
	if _, err := sqlguard.Check(ctx, policy, `SELECT * FROM Sales`); err == nil {
		t.Error("unquoted Sales folds to sales and must not match table Sales")
	}
}

func TestLongInputReasonIsShort(t *testing.T) {
	t.Parallel()
	long := "SELECT * FROM " + strings.Repeat("x", 10000)
	for _, d := range []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite} {
		_, err := newGuard(t, d).Check(context.Background(), long)
		if err == nil || len(err.Error()) > 250 {
			t.Errorf("%s: error %v", d, err)
		}
	}
}

func TestGuardIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	for _, d := range []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite} {
		g := newGuard(t, d)
		done := make(chan error)
		for i := range 8 {
			go func() {
				var err error
				for j := range 20 {
					q := "SELECT region, count(*) FROM sales GROUP BY region"
					if (i+j)%2 == 1 {
						q = "SELECT * FROM secrets"
					}
					_, e := g.Check(context.Background(), q)
					if (e == nil) != ((i+j)%2 == 0) {
						err = e
					}
				}
				done <- err
			}()
		}
		for range 8 {
			if err := <-done; err != nil {
				t.Errorf("%s: concurrent check: %v", d, err)
			}
		}
	}
}
