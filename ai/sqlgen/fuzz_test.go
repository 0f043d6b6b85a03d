package sqlgen_test

import (
	"errors"
	"testing"

	"github.com/palisadehq/palisade/ai/sqlgen"
)

// FuzzBuiltin holds the built-in translator to its contract on any
// question: it never panics, and it either answers ErrNotUnderstood or
// writes SQL, in each dialect, that the guard built from the same schema
// accepts and that holds the question's text only inside literals.
func FuzzBuiltin(f *testing.F) {
	for _, tc := range forms {
		f.Add(tc.question)
	}
	for _, tc := range hostile {
		f.Add(tc.question)
	}
	f.Add("how many customers where name is \"a\\' OR 1=1 #\"")
	f.Add("top 3 regions by average quantity where product is 'it''s' since 2024-02")
	guards := newGuards(f)
	b := newBuiltin()
	f.Fuzz(func(t *testing.T, question string) {
		for _, d := range dialects {
			schema := testSchema(d)
			got, err := b.Translate(t.Context(), schema, question)
			if err != nil {
				if !errors.Is(err, sqlgen.ErrNotUnderstood) {
					t.Fatalf("%s: %q: error %v is not ErrNotUnderstood", d, question, err)
				}
				continue
			}
			mustPassGuard(t, guards[d], d, got.SQL)
			checkShape(t, d, schema, got.SQL)
		}
	})
}
