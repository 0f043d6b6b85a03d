package datasource_test

import (
	"context"
	"testing"

	"github.com/palisadehq/palisade/datasource"
)

// BenchmarkAggregate1000Rows: one query grouping 1,000 rows of the sample,
// per engine, through a warm pool: the executor's whole path (read-only
// transaction, timeout, outer LIMIT, conversion, hashing).
func BenchmarkAggregate1000Rows(b *testing.B) {
	const q = `SELECT region, count(*) AS n, sum(amount) AS total, min(sold_at) AS first_sale
FROM sales WHERE id <= 1000 GROUP BY region ORDER BY region`
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			ctx := context.Background()
			if _, err := tg.exec.Query(ctx, tg.cfg, q, datasource.Limits{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := tg.exec.Query(ctx, tg.cfg, q, datasource.Limits{})
				if err != nil || res.RowCount != 4 {
					b.Fatalf("%v, %d rows", err, res.RowCount)
				}
			}
		})
	}
}

// BenchmarkFetch1000Rows: 1,000 rows of seven columns each, converted and
// hashed.
func BenchmarkFetch1000Rows(b *testing.B) {
	const q = "SELECT * FROM sales WHERE id <= 1000 ORDER BY id"
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := tg.exec.Query(ctx, tg.cfg, q, datasource.Limits{})
				if err != nil || res.RowCount != 1000 {
					b.Fatalf("%v, %d rows", err, res.RowCount)
				}
			}
		})
	}
}
