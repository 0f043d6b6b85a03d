package sqlguard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/sqlguard"
)

// PostgreSQL reads q.f, f not a column of q, as the call f(q): the guard
// must refuse it for that reason, and accept real columns.
func TestPostgresAttributeNotation(t *testing.T) {
	t.Parallel()
	tables := []sqlguard.Table{
		{Name: "sales", Columns: []string{"id", "region", "amount", "Mixed"}},
		{Name: "loose"}, // no schema snapshot: columns unknown
	}
	cases := []struct {
		query  string
		reason string // "" when the query is accepted
	}{
		{"SELECT s.region FROM sales s", ""},
		{`SELECT s."Mixed" FROM sales s`, ""},
		{"SELECT s.mixed FROM sales s", "function call mixed(s)"},
		{"SELECT s.Region FROM sales s", ""}, // folds to region
		{`SELECT s."Region" FROM sales s`, "function call Region(s)"},
		{"SELECT s.to_json FROM sales s", "function call to_json(s)"},
		{"SELECT sales.region FROM sales s", "names no table"},
		{"SELECT region FROM loose", ""},
		{"SELECT * FROM loose l", ""},
		{"SELECT l.region FROM loose l", "are not known"},
		{"SELECT x.region FROM (SELECT * FROM loose) x", "are not known"},
		{"SELECT x.r FROM (SELECT region AS r FROM loose) x", ""},
		{"SELECT x.amount FROM (SELECT amount::numeric FROM sales) x", ""},
		{"SELECT x.sum FROM (SELECT sum(amount) FROM sales) x", ""},
		{"SELECT x.r FROM (SELECT region FROM sales) x(r)", ""},
		{"SELECT x.region FROM (SELECT region FROM sales) x(r)", "function call region(x)"},
		{"SELECT x.id FROM sales AS x(a)", "are not known"},
		{"WITH c AS (SELECT region FROM sales) SELECT x.region FROM (SELECT c.region FROM c) x", ""},
		{"WITH c AS (SELECT region FROM sales) SELECT x.region FROM (SELECT c.to_json FROM c) x", "function call to_json(c)"},
		{"SELECT s.region FROM sales s WHERE s.id IN (SELECT s.id FROM sales t)", ""},
	}
	g, err := sqlguard.New(sqlguard.Policy{Dialect: sqlguard.Postgres, Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range cases {
		_, err := g.Check(context.Background(), c.query)
		var rejected *sqlguard.RejectedError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%q: rejected: %v", c.query, err)
		case c.reason != "" && !errors.As(err, &rejected):
			t.Errorf("%q: accepted or failed oddly: %v", c.query, err)
		case c.reason != "" && !strings.Contains(rejected.Reason, c.reason):
			t.Errorf("%q: reason %q, want it to mention %q", c.query, rejected.Reason, c.reason)
		}
	}
}
