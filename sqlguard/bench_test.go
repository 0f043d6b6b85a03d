package sqlguard_test

import (
	"context"
	"testing"

	"github.com/palisadehq/palisade/sqlguard"
)

// A typical analytics statement: a join, a filter, grouping and ordering.
var typicalQuery = map[sqlguard.Dialect]string{
	sqlguard.Postgres: "SELECT c.country, date_trunc('month', s.sold_at) AS month, sum(s.amount) AS total, count(*) FROM sales s JOIN customers c ON c.id = s.customer_id WHERE s.amount > 10 AND s.region IN ('EU', 'US') GROUP BY 1, 2 ORDER BY total DESC LIMIT 100",
	sqlguard.MySQL:    "SELECT c.country, DATE_FORMAT(s.sold_at, '%Y-%m') AS month, SUM(s.amount) AS total, COUNT(*) FROM sales s JOIN customers c ON c.id = s.customer_id WHERE s.amount > 10 AND s.region IN ('EU', 'US') GROUP BY 1, 2 ORDER BY total DESC LIMIT 100",
	sqlguard.SQLite:   "SELECT c.country, strftime('%Y-%m', s.sold_at) AS month, sum(s.amount) AS total, count(*) FROM sales s JOIN customers c ON c.id = s.customer_id WHERE s.amount > 10 AND s.region IN ('EU', 'US') GROUP BY 1, 2 ORDER BY total DESC LIMIT 100",
}

func BenchmarkCheck(b *testing.B) {
	for _, d := range []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite} {
		b.Run(string(d), func(b *testing.B) {
			g := newGuard(b, d)
			q := typicalQuery[d]
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Check(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stmts/s")
		})
	}
}
