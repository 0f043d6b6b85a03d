package sqlgen_test

import (
	"testing"

	"github.com/palisadehq/palisade/sqlguard"
)

// BenchmarkBuiltin translates a question using most forms at once.
func BenchmarkBuiltin(b *testing.B) {
	b.ReportAllocs()
	schema := testSchema(sqlguard.Postgres)
	tr := newBuiltin()
	const q = "top 5 products by total amount where region is 'north' between 2024-01-01 and 2024-03-31"
	for b.Loop() {
		if _, err := tr.Translate(b.Context(), schema, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuiltinAndGuard is the translation and the check a job makes.
func BenchmarkBuiltinAndGuard(b *testing.B) {
	b.ReportAllocs()
	schema := testSchema(sqlguard.Postgres)
	g, err := sqlguard.New(schema.Policy())
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	tr := newBuiltin()
	const q = "top 5 products by total amount where region is 'north' between 2024-01-01 and 2024-03-31"
	for b.Loop() {
		got, err := tr.Translate(b.Context(), schema, q)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Check(b.Context(), got.SQL); err != nil {
			b.Fatal(err)
		}
	}
}
