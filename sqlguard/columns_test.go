package sqlguard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/sqlguard"
)

// restrictedTables expose only some columns of staff and payroll; depts is
// open. Hidden is what SQLite needs to resolve names as the real tables do.
var restrictedTables = []sqlguard.Table{
	{Name: "staff", Columns: []string{"id", "name", "dept_id"}, Restricted: true, Hidden: []string{"salary"}},
	{Name: "payroll", Columns: []string{"id", "staff_id", "month"}, Restricted: true, Hidden: []string{"salary"}},
	{Name: "depts", Columns: []string{"id", "title", "budget"}},
}

var allDialects = []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite}

// columnCases are queries over restrictedTables and the dialects that must
// accept them; every other dialect must reject them.
var columnCases = []struct {
	query  string
	accept []sqlguard.Dialect
}{
	// allowed columns
	{"SELECT id, name FROM staff", allDialects},
	{"SELECT name FROM staff WHERE dept_id = 3 ORDER BY name", allDialects},
	{"SELECT count(*) FROM staff", allDialects},
	{"SELECT upper(name), count(DISTINCT dept_id) FROM staff GROUP BY name", allDialects},
	{"SELECT s.name, d.title FROM staff s JOIN depts d ON d.id = s.dept_id", allDialects},
	{"SELECT s.id, p.month FROM staff s JOIN payroll p ON p.staff_id = s.id", allDialects},
	// SQLite does not report USING columns to its authorizer: refused there
	{"SELECT count(*) FROM staff JOIN payroll USING (id)", []sqlguard.Dialect{sqlguard.Postgres, sqlguard.MySQL}},
	{"SELECT name FROM staff WHERE dept_id IN (SELECT d.id FROM depts d WHERE d.budget > 10)", allDialects},
	{"SELECT * FROM depts", allDialects},
	{"SELECT budget, title FROM depts ORDER BY budget", allDialects},
	// aliases
	{"SELECT dept_id, count(*) AS n FROM staff GROUP BY dept_id ORDER BY n DESC", allDialects},
	{"SELECT upper(name) AS who FROM staff ORDER BY who", allDialects},
	{"WITH c AS (SELECT dept_id, count(*) AS n FROM staff GROUP BY dept_id) SELECT c.dept_id, c.n FROM c", allDialects},
	{"SELECT t.n FROM (SELECT count(*) AS n FROM staff) t", allDialects},
	{"SELECT * FROM (SELECT name FROM staff) t", []sqlguard.Dialect{sqlguard.SQLite}},
	// a forbidden column in each place
	{"SELECT salary FROM staff", nil},
	{"SELECT name FROM staff WHERE salary > 10", nil},
	{"SELECT name FROM staff ORDER BY salary", nil},
	{"SELECT name FROM staff GROUP BY salary", nil},
	{"SELECT max(salary) FROM staff", nil},
	{"SELECT name FROM staff HAVING sum(salary) > 0", nil},
	{"SELECT name FROM staff WHERE id IN (SELECT id FROM staff WHERE salary > 5)", nil},
	{"SELECT (SELECT max(salary) FROM staff) FROM depts", nil},
	{"WITH c AS (SELECT salary FROM staff) SELECT count(*) FROM c", nil},
	{"SELECT s.name FROM staff s JOIN depts d ON d.budget = s.salary", nil},
	{"SELECT s.salary FROM staff s", nil},
	{"SELECT staff.salary FROM staff", nil},
	{"SELECT p.salary FROM payroll p JOIN staff s ON s.id = p.staff_id", nil},
	{"SELECT count(*) FROM staff JOIN payroll USING (salary)", nil},
	{"SELECT count(*) FROM staff NATURAL JOIN payroll", nil},
	// stars
	{"SELECT * FROM staff", nil},
	{"SELECT s.* FROM staff s", nil},
	{"SELECT * FROM staff s JOIN depts d ON d.id = s.dept_id", nil},
	{"WITH c AS (SELECT * FROM staff) SELECT c.name FROM c", nil},
	// an alias is no shield
	{"SELECT salary AS amount FROM staff", nil},
	{"SELECT name AS salary FROM staff WHERE salary > 0", nil},
	{"SELECT name AS salary FROM staff GROUP BY salary", nil},
	// mixed: PostgreSQL and MySQL cannot tell an unqualified name's table
	{"SELECT budget FROM staff s JOIN depts d ON d.id = s.dept_id", []sqlguard.Dialect{sqlguard.SQLite}},
	{"SELECT d.budget FROM staff s JOIN depts d ON d.id = s.dept_id", allDialects},
	{"SELECT name FROM staff s JOIN payroll p ON p.staff_id = s.id", []sqlguard.Dialect{sqlguard.SQLite}},
	{"WITH c AS (SELECT count(*) AS n FROM staff) SELECT n FROM c", []sqlguard.Dialect{sqlguard.SQLite}},
}

func TestRestrictedColumns(t *testing.T) {
	t.Parallel()
	for _, d := range allDialects {
		g, err := sqlguard.New(sqlguard.Policy{Dialect: d, Tables: restrictedTables})
		if err != nil {
			t.Fatalf("New(%s): %v", d, err)
		}
		t.Cleanup(func() { g.Close() })
		for _, c := range columnCases {
			query := c.query
			if d == sqlguard.MySQL {
				query = strings.ReplaceAll(query, `"`, "`")
			}
			want := false
			for _, a := range c.accept {
				want = want || a == d
			}
			_, err := g.Check(context.Background(), query)
			var rejected *sqlguard.RejectedError
			switch {
			case want && err != nil:
				t.Errorf("%s: rejected %q: %v", d, query, err)
			case !want && !errors.As(err, &rejected):
				t.Errorf("%s: accepted (or failed oddly: %v) %q", d, err, query)
			case !want && testing.Verbose():
				t.Logf("%s: %q → %s", d, query, rejected.Reason)
			}
		}
	}
}

func TestRestrictedColumnsPerDialect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		d      sqlguard.Dialect
		query  string
		accept bool
	}{
		{sqlguard.Postgres, "SELECT x FROM staff AS s(x)", false},
		{sqlguard.Postgres, "SELECT s FROM staff s", false},
		{sqlguard.Postgres, "SELECT count(*) FROM (staff JOIN payroll USING (id)) AS j", false},
		{sqlguard.Postgres, `SELECT "name" FROM "staff"`, true},
		{sqlguard.Postgres, `SELECT "Name" FROM staff`, false},
		{sqlguard.MySQL, "SELECT NAME FROM staff", true},
		{sqlguard.MySQL, "SELECT SALARY FROM staff", false},
		{sqlguard.MySQL, "SELECT `salary` FROM staff", false},
		{sqlguard.MySQL, "SELECT S.SALARY FROM staff s", false},
		{sqlguard.SQLite, "SELECT SALARY FROM staff", false},
		{sqlguard.SQLite, `SELECT "*palisade: star*" FROM staff`, false},
	}
	for _, c := range cases {
		_, err := sqlguard.Check(context.Background(), sqlguard.Policy{Dialect: c.d, Tables: restrictedTables}, c.query)
		var rejected *sqlguard.RejectedError
		switch {
		case c.accept && err != nil:
			t.Errorf("%s: rejected %q: %v", c.d, c.query, err)
		case !c.accept && !errors.As(err, &rejected):
			t.Errorf("%s: accepted (or failed oddly: %v) %q", c.d, err, c.query)
		}
	}
}

func TestStarReasonNamesTheTable(t *testing.T) {
	t.Parallel()
	for _, d := range allDialects {
		_, err := sqlguard.Check(context.Background(), sqlguard.Policy{Dialect: d, Tables: restrictedTables}, "SELECT * FROM staff")
		if err == nil || !strings.Contains(err.Error(), "name the columns: this source exposes only some columns of staff") {
			t.Errorf("%s: error %v", d, err)
		}
	}
}
