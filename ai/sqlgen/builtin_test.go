package sqlgen_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/ai/sqlgen"
	"github.com/palisadehq/palisade/sqlguard"
)

// forms holds one or more questions of every form the package doc lists,
// with the SQL expected, written with PostgreSQL's quotes (inDialect gives
// MySQL's).
var forms = []struct {
	question, want string
}{
	// counts
	{"how many sales", `SELECT COUNT(*) AS "count" FROM "sales"`},
	{"How many Sales?", `SELECT COUNT(*) AS "count" FROM "sales"`},
	{"count of sales", `SELECT COUNT(*) AS "count" FROM "sales"`},
	{"what is the number of customers", `SELECT COUNT(*) AS "count" FROM "customers"`},
	{"how many rows are there in sales", `SELECT COUNT(*) AS "count" FROM "sales"`},
	{"how many distinct products", `SELECT COUNT(DISTINCT "product") AS "product_count" FROM "sales"`},
	{"how many different countries are there in customers", `SELECT COUNT(DISTINCT "country") AS "country_count" FROM "customers"`},
	{"count of sales by region",
		`SELECT "region", COUNT(*) AS "count" FROM "sales" GROUP BY "region" ORDER BY "region"`},
	{"how many customers per country",
		`SELECT "country", COUNT(*) AS "count" FROM "customers" GROUP BY "country" ORDER BY "country"`},
	// sums, averages, min, max
	{"total amount", `SELECT SUM("amount") AS "total_amount" FROM "sales"`},
	{"sum of amount of sales", `SELECT SUM("amount") AS "total_amount" FROM "sales"`},
	{"Show me the total AMOUNT.", `SELECT SUM("amount") AS "total_amount" FROM "sales"`},
	{"average quantity per product",
		`SELECT "product", AVG("quantity") AS "average_quantity" FROM "sales" GROUP BY "product" ORDER BY "product"`},
	{"mean weight by carrier",
		`SELECT "carrier", AVG("weight") AS "average_weight" FROM "shipments" GROUP BY "carrier" ORDER BY "carrier"`},
	{"min amount", `SELECT MIN("amount") AS "min_amount" FROM "sales"`},
	{"highest amount for each region",
		`SELECT "region", MAX("amount") AS "max_amount" FROM "sales" GROUP BY "region" ORDER BY "region"`},
	{"latest sold at", `SELECT MAX("sold_at") AS "max_sold_at" FROM "sales"`},
	{"earliest created_at of customers", `SELECT MIN("created_at") AS "min_created_at" FROM "customers"`},
	{"total quantity grouped by products",
		`SELECT "product", SUM("quantity") AS "total_quantity" FROM "sales" GROUP BY "product" ORDER BY "product"`},
	// equality filters
	{"how many sales where region is 'north'", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "region" = 'north'`},
	{"how many sales in region north", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "region" = 'north'`},
	{"how many sales where region = North", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "region" = 'North'`},
	{`total amount with product "Blue Widget"`, `SELECT SUM("amount") AS "total_amount" FROM "sales" WHERE "product" = 'Blue Widget'`},
	{"total amount where region is ‘south east’ and product is “Gadget”",
		`SELECT SUM("amount") AS "total_amount" FROM "sales" WHERE "region" = 'south east' AND "product" = 'Gadget'`},
	{"how many sales where quantity is 3", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "quantity" = 3`},
	{"how many sales where amount = 12.50", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "amount" = 12.50`},
	{"how many customers in country 'Côte d''Ivoire'", `SELECT COUNT(*) AS "count" FROM "customers" WHERE "country" = 'Côte d''Ivoire'`},
	{"how many customers where name is \"O'Brien\"", `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = 'O''Brien'`},
	// date ranges
	{"total amount in 2024",
		`SELECT SUM("amount") AS "total_amount" FROM "sales" WHERE "sold_at" >= '2024-01-01' AND "sold_at" < '2025-01-01'`},
	{"how many sales between 2024-01-01 and 2024-03-31",
		`SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-01-01' AND "sold_at" < '2024-04-01'`},
	{"how many sales from 2023-12-01 to 2024-02-29",
		`SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2023-12-01' AND "sold_at" < '2024-03-01'`},
	{"how many sales since 2024-02-01", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-02-01'`},
	{"how many sales after 2024-02-01", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-02-02'`},
	{"how many sales before 2024-02", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" < '2024-02-01'`},
	{"how many sales until 2024-02-10", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" < '2024-02-11'`},
	{"total amount last 30 days",
		`SELECT SUM("amount") AS "total_amount" FROM "sales" WHERE "sold_at" >= '2024-03-02' AND "sold_at" < '2024-04-01'`},
	{"how many sales in the past 2 weeks",
		`SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-03-18' AND "sold_at" < '2024-04-01'`},
	{"how many sales last 3 months",
		`SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-01-01' AND "sold_at" < '2024-04-01'`},
	{"how many customers last year",
		`SELECT COUNT(*) AS "count" FROM "customers" WHERE "created_at" >= '2023-04-01' AND "created_at" < '2024-04-01'`},
	{"how many sales today", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-03-31' AND "sold_at" < '2024-04-01'`},
	{"how many sales yesterday", `SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-03-30' AND "sold_at" < '2024-03-31'`},
	{"total amount this month",
		`SELECT SUM("amount") AS "total_amount" FROM "sales" WHERE "sold_at" >= '2024-03-01' AND "sold_at" < '2024-04-01'`},
	{"total amount by region in march 2024",
		`SELECT "region", SUM("amount") AS "total_amount" FROM "sales" WHERE "sold_at" >= '2024-03-01' AND "sold_at" < '2024-04-01' GROUP BY "region" ORDER BY "region"`},
	{"how many sales in 2024-02",
		`SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-02-01' AND "sold_at" < '2024-03-01'`},
	{"how many sales where sold at is 2024-03-01",
		`SELECT COUNT(*) AS "count" FROM "sales" WHERE "sold_at" >= '2024-03-01' AND "sold_at" < '2024-03-02'`},
	{"how many shipments where delivered at in 2023",
		`SELECT COUNT(*) AS "count" FROM "shipments" WHERE "delivered_at" >= '2023-01-01' AND "delivered_at" < '2024-01-01'`},
	{"how many shipments shipped_at since 2024-01-15",
		`SELECT COUNT(*) AS "count" FROM "shipments" WHERE "shipped_at" >= '2024-01-15'`},
	// top N
	{"top 5 products by total amount",
		`SELECT "product", SUM("amount") AS "total_amount" FROM "sales" GROUP BY "product" ORDER BY "total_amount" DESC, "product" LIMIT 5`},
	{"top 3 regions by average quantity in 2024",
		`SELECT "region", AVG("quantity") AS "average_quantity" FROM "sales" WHERE "sold_at" >= '2024-01-01' AND "sold_at" < '2025-01-01' GROUP BY "region" ORDER BY "average_quantity" DESC, "region" LIMIT 3`},
	{"top 10 countries by number of customers",
		`SELECT "country", COUNT(*) AS "count" FROM "customers" GROUP BY "country" ORDER BY "count" DESC, "country" LIMIT 10`},
	{"top 2 regions by amount",
		`SELECT "region", SUM("amount") AS "total_amount" FROM "sales" GROUP BY "region" ORDER BY "total_amount" DESC, "region" LIMIT 2`},
	{"bottom 3 carriers by count",
		`SELECT "carrier", COUNT(*) AS "count" FROM "shipments" GROUP BY "carrier" ORDER BY "count", "carrier" LIMIT 3`},
	{"top products in sales",
		`SELECT "product", COUNT(*) AS "count" FROM "sales" GROUP BY "product" ORDER BY "count" DESC, "product" LIMIT 10`},
	{"top 5 products by highest amount where region is north",
		`SELECT "product", MAX("amount") AS "max_amount" FROM "sales" WHERE "region" = 'north' GROUP BY "product" ORDER BY "max_amount" DESC, "product" LIMIT 5`},
}

func TestBuiltinForms(t *testing.T) {
	t.Parallel()
	guards := newGuards(t)
	b := newBuiltin()
	for _, d := range dialects {
		schema := testSchema(d)
		for _, tc := range forms {
			t.Run(string(d)+"/"+tc.question, func(t *testing.T) {
				got, err := b.Translate(t.Context(), schema, tc.question)
				if err != nil {
					t.Fatalf("Translate: %v", err)
				}
				if want := inDialect(d, tc.want); got.SQL != want {
					t.Fatalf("SQL\n got %s\nwant %s", got.SQL, want)
				}
				if got.Translator != "builtin" || got.Explanation == "" {
					t.Errorf("Translator %q, Explanation %q", got.Translator, got.Explanation)
				}
				checkShape(t, d, schema, got.SQL)
				mustPassGuard(t, guards[d], d, got.SQL)
			})
		}
	}
}

// TestBuiltinLiteralsPerDialect holds the escaping of values that read
// differently in each dialect: backslashes are escapes in MySQL, and in
// PostgreSQL only inside E” strings.
func TestBuiltinLiteralsPerDialect(t *testing.T) {
	t.Parallel()
	guards := newGuards(t)
	b := newBuiltin()
	tests := []struct {
		question string
		value    string
		want     map[sqlguard.Dialect]string
	}{{
		question: `how many customers where name is "a\' OR 1=1 #"`,
		value:    `a\' OR 1=1 #`,
		want: map[sqlguard.Dialect]string{
			sqlguard.Postgres: `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = E'a\\'' OR 1=1 #'`,
			sqlguard.MySQL:    "SELECT COUNT(*) AS `count` FROM `customers` WHERE `name` = 'a\\\\'' OR 1=1 #'",
			sqlguard.SQLite:   `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = 'a\'' OR 1=1 #'`,
		},
	}, {
		question: `how many customers where name is 'x"; DROP TABLE customers; --'`,
		value:    `x"; DROP TABLE customers; --`,
		want: map[sqlguard.Dialect]string{
			sqlguard.Postgres: `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = 'x"; DROP TABLE customers; --'`,
			sqlguard.MySQL:    "SELECT COUNT(*) AS `count` FROM `customers` WHERE `name` = 'x\"; DROP TABLE customers; --'",
			sqlguard.SQLite:   `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = 'x"; DROP TABLE customers; --'`,
		},
	}, {
		question: `how many customers where name is 'C:\\'`,
		value:    `C:\\`,
		want: map[sqlguard.Dialect]string{
			sqlguard.Postgres: `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = E'C:\\\\'`,
			sqlguard.MySQL:    "SELECT COUNT(*) AS `count` FROM `customers` WHERE `name` = 'C:\\\\\\\\'",
			sqlguard.SQLite:   `SELECT COUNT(*) AS "count" FROM "customers" WHERE "name" = 'C:\\'`,
		},
	}}
	for _, tc := range tests {
		for _, d := range dialects {
			schema := testSchema(d)
			got, err := b.Translate(t.Context(), schema, tc.question)
			if err != nil {
				t.Fatalf("%s: %q: %v", d, tc.question, err)
			}
			if got.SQL != tc.want[d] {
				t.Errorf("%s: %q\n got %s\nwant %s", d, tc.question, got.SQL, tc.want[d])
				continue
			}
			if lits := checkShape(t, d, schema, got.SQL); len(lits) != 1 || lits[0] != tc.value {
				t.Errorf("%s: literals %q, want [%q]", d, lits, tc.value)
			}
			mustPassGuard(t, guards[d], d, got.SQL)
		}
	}
}

// TestBuiltinNotUnderstood holds questions outside the family: each is
// ErrNotUnderstood, and the error says what went wrong and which forms
// are understood.
func TestBuiltinNotUnderstood(t *testing.T) {
	t.Parallel()
	b := newBuiltin()
	tests := []struct{ question, reason string }{
		{"sales by region", "no measure"},
		{"hello", `"hello" is neither a table or column`},
		{"how many salaries", `"salaries" is neither`},
		{"total salary by employee", `"total" must be followed by a column`},
		{"total region", `"region" is not numeric`},
		{"average name of customers", `"name" is not numeric`},
		{"how many sales and customers", "more than one table"},
		{"how many", "names no table"},
		{"how many sales by region by product", "more than one column"},
		{"how many sales by salaries", "expected a column to group by"},
		{"total amount and average quantity", "more than one measure"},
		{"how many sales in 2024 since 2024-02-01", "more than one date range"},
		{"how many sales between 2024-03-01 and 2024-01-01", "empty"},
		{"how many sales in 2024-02-30", "not a date of the calendar"},
		{"how many sales in 99", "not a year"},
		{"how many sales in march", "needs its year"},
		{"how many sales last 30 fortnights", "days, weeks, months or years"},
		{"how many shipments in 2024", "several date columns"},
		{"how many customers where region is north", `the table "customers" has no column "region"`},
		{"total amount where country is 'FR'", "no table has all the columns"},
		{"how many sales where region is by", "not a value"},
		{"how many sales where quantity is many", "is not a number"},
		{"how many sales where quantity is 'five'", "is not a number"},
		{"how many sales where region is", "no value"},
		{"how many sales where region is 'north", "not closed"},
		{"how many sales; drop table sales", "';'"},
		{"how many sales -- and more", "'-'"},
		{"how many sales /* x */", "'/'"},
		{"top 0 products", "from 1 to 1000"},
		{"top 5 products by salaries", "ranks by a measure"},
		{"how many sales region", "does not say what to do with it"},
		{"how many sales 42", "follows no column"},
		{"how many id", "several tables have the columns"},
		{"   ", "empty"},
		{strings.Repeat("how many sales ", 400), "longer than"},
		{strings.Repeat("sales ", 80), "more than 64 words"},
	}
	for _, tc := range tests {
		_, err := b.Translate(t.Context(), testSchema(sqlguard.Postgres), tc.question)
		if !errors.Is(err, sqlgen.ErrNotUnderstood) {
			t.Errorf("%q: error %v, want ErrNotUnderstood", tc.question, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.reason) || !strings.Contains(msg, `"top 5 products by total amount"`) {
			t.Errorf("%q: error %q, want it to say %q and list the forms", tc.question, msg, tc.reason)
		}
	}
}

func TestTranslatorsRefuseBrokenSchemas(t *testing.T) {
	t.Parallel()
	good := testSchema(sqlguard.Postgres)
	tests := map[string]sqlgen.Schema{
		"unknown dialect": {Dialect: "oracle", Tables: good.Tables},
		"no tables":       {Dialect: sqlguard.Postgres},
		"empty name":      {Dialect: sqlguard.Postgres, Tables: []sqlgen.Table{{Name: ""}}},
		"NUL in a column": {Dialect: sqlguard.Postgres, Tables: []sqlgen.Table{{Name: "t", Columns: []sqlgen.Column{{Name: "a\x00b"}}}}},
	}
	model := sqlgen.NewModel(&fakeModel{answer: "SELECT 1"})
	for name, s := range tests {
		for _, tr := range []sqlgen.Translator{newBuiltin(), model} {
			_, err := tr.Translate(t.Context(), s, "how many sales")
			if err == nil || errors.Is(err, sqlgen.ErrNotUnderstood) {
				t.Errorf("%s: %T: error %v, want a schema error", name, tr, err)
			}
		}
	}
}

// TestBuiltinQuotesSchemaNames shows names the database stores with
// capitals and spaces are matched by their words and quoted exactly, so
// the guard (which compares names exactly) accepts them.
func TestBuiltinQuotesSchemaNames(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		s := sqlgen.Schema{Dialect: d, Tables: []sqlgen.Table{{Name: "Order Lines", Columns: []sqlgen.Column{
			{Name: "Unit_Price", Type: "DECIMAL(8,2)"}, {Name: "Region", Type: "TEXT"},
		}}}}
		got, err := newBuiltin().Translate(t.Context(), s, "total unit prices by region of order lines")
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		want := inDialect(d, `SELECT "Region", SUM("Unit_Price") AS "total_Unit_Price" FROM "Order Lines" GROUP BY "Region" ORDER BY "Region"`)
		if got.SQL != want {
			t.Errorf("%s:\n got %s\nwant %s", d, got.SQL, want)
		}
		g, err := sqlguard.New(s.Policy())
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if _, err := g.Check(context.Background(), got.SQL); err != nil {
			t.Errorf("%s: guard refused %q: %v", d, got.SQL, err)
		}
	}
}
