// Package sqlgen translates a question in plain language into one SQL
// SELECT for one data source, given the source's schema snapshot (only its
// allow-listed tables and columns) and its dialect.
//
// It owns two translators behind one [Translator] port:
//
//   - [Builtin]: deterministic and offline, no model. It understands a
//     documented family of questions (below) and answers anything else with
//     [ErrNotUnderstood].
//   - [Model]: any [llm.Model] (the OpenAI-compatible adapter in
//     production), given the dialect and the schema in its system prompt.
//
// A translator proposes; it never decides. Its output is untrusted, the
// model's especially (a question may carry a prompt injection, and the
// model may obey it), so every translation must pass [sqlguard] with a
// policy built from the same schema ([Schema.Policy]) before anything runs
// it: the guard is the boundary, not the translator. This package must
// never run a query, open a connection, or know about organizations,
// principals or storage.
//
// # Questions the built-in translator understands
//
// Words are matched against the schema only: a table or column is named by
// its name, case-insensitive, with underscores written as spaces and in the
// singular or the plural ("sold at" names sold_at, "products" names
// product). A word that names nothing in the schema and is not one of the
// words below makes the question not understood; it never reaches the SQL.
// Identifiers are quoted for the dialect (PostgreSQL and SQLite "x", MySQL
// `x`); values are SQL string literals escaped for the dialect, or numbers
// the translator has parsed itself.
//
// A question asks for one measure over one table:
//
//	how many sales                    SELECT COUNT(*) AS "count" FROM "sales"
//	count of sales / number of sales  the same
//	how many distinct products        COUNT(DISTINCT "product")
//	total amount / sum of amount      SUM("amount") AS "total_amount"
//	average quantity / mean quantity  AVG("quantity") AS "average_quantity"
//	min amount / lowest amount        MIN("amount") AS "min_amount"
//	max amount / highest amount       MAX("amount") AS "max_amount"
//
// Sums and averages need a numeric column. When the question names no
// table, the table is the one holding every column it names (or the only
// table). It may add, in any order:
//
//	by region / per region / for each region / grouped by region
//	    GROUP BY "region", ordered by the group
//	where region is 'north' / where region = north / in region north /
//	with region 'north' / and product is "Widget"
//	    "region" = 'north'; a value is one word, a number, or quoted with
//	    '…', "…", ‘…’ or “…” (several words)
//	top 5 products by total amount / bottom 3 regions by count
//	    grouped, ordered by the measure (descending for top), LIMIT 5;
//	    "by amount" alone means its total, no "by" means the count
//	in 2024 / in 2024-03 / in march 2024
//	between 2024-01-01 and 2024-03-31 / from 2024-01-01 to 2024-03-31
//	since 2024-02-01 / after 2024-02-01 / before 2024-03-01 / until 2024-03-31
//	last 30 days / past 2 weeks / last 6 months / last year
//	today / yesterday / this month / this year
//	    a half-open range on the table's date column (the one column whose
//	    type is a date or timestamp; name it when there are several:
//	    "where sold at in 2024"); a date equal to a date column
//	    ("where sold at is 2024-03-01") is that whole day
//
// Ends of ranges are whole days: "between 2024-01-01 and 2024-03-31" is
// sold_at >= '2024-01-01' AND sold_at < '2024-04-01'. Relative periods end
// today, today included, on the clock given to [Builtin.WithClock]: on
// 2024-03-31, "last 30 days" is 2024-03-02 to 2024-03-31. Filler words
// ("what is the", "show me", "please", "of", "rows") are ignored. Anything
// else is [ErrNotUnderstood], with a message that lists these forms.
package sqlgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/palisadehq/palisade/sqlguard"
)

// Column is one column of a table, with its type as the database reports
// it ("integer", "numeric(10,2)", "timestamp with time zone", "TEXT").
type Column struct {
	Name, Type string
}

// Table is one allow-listed table and its allow-listed columns.
type Table struct {
	Name    string
	Columns []Column
}

// Schema is what a translator may use of one data source: its dialect and
// only the allow-listed tables (and columns) of the source. Names are
// exactly as the database stores them.
type Schema struct {
	Dialect sqlguard.Dialect
	Tables  []Table
}

// Policy is the guard policy of the same schema: the translator's output
// is checked against exactly the tables and columns it was given.
func (s Schema) Policy() sqlguard.Policy {
	p := sqlguard.Policy{Dialect: s.Dialect}
	for _, t := range s.Tables {
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = c.Name
		}
		p.Tables = append(p.Tables, sqlguard.Table{Name: t.Name, Columns: cols})
	}
	return p
}

// Translation is one proposed query. It has not been checked: pass SQL
// through the guard before running it.
type Translation struct {
	SQL string
	// Translator says who wrote SQL: "builtin" or "llm:<model name>".
	Translator string
	// Explanation says in plain words what the query computes (builtin) or
	// what the model said beside it (a model's, untrusted and capped).
	Explanation string
}

// Translator turns a question about one data source into one SQL SELECT.
// Implementations are safe for concurrent use.
type Translator interface {
	Translate(ctx context.Context, schema Schema, question string) (Translation, error)
}

// ErrNotUnderstood means the built-in translator could not map the
// question to a query. The error returned wraps it and says which forms of
// question it understands.
var ErrNotUnderstood = errors.New("sqlgen: question not understood")

// MaxQuestionBytes bounds a question, for both translators.
const MaxQuestionBytes = 4 << 10

// understood is the help appended to every not-understood error.
const understood = `the built-in translator understands one measure over one table: ` +
	`counts ("how many sales", "count of sales by region"), ` +
	`sums and averages of a numeric column ("total amount", "average quantity per product"), ` +
	`min and max ("highest amount"), grouping ("by region", "per product"), ` +
	`equality filters ("where region is 'north'", "in region north"), ` +
	`date ranges ("in 2024", "between 2024-01-01 and 2024-03-31", "since 2024-02-01", "last 30 days") ` +
	`and top N ("top 5 products by total amount"); tables and columns are named as in the schema`

// notUnderstoodError is ErrNotUnderstood with its reason.
type notUnderstoodError struct{ reason string }

func (e *notUnderstoodError) Error() string {
	return fmt.Sprintf("%s: %s; %s", ErrNotUnderstood, e.reason, understood)
}

func (e *notUnderstoodError) Is(target error) bool { return target == ErrNotUnderstood }

func notUnderstood(format string, args ...any) error {
	return &notUnderstoodError{reason: fmt.Sprintf(format, args...)}
}

// validate refuses a schema no query can be written for. Its errors are
// not ErrNotUnderstood: the caller passed a broken snapshot.
func (s Schema) validate() error {
	switch s.Dialect {
	case sqlguard.Postgres, sqlguard.MySQL, sqlguard.SQLite:
	default:
		return fmt.Errorf("sqlgen: schema: unknown dialect %q", s.Dialect)
	}
	if len(s.Tables) == 0 {
		return errors.New("sqlgen: schema: no tables")
	}
	for i, t := range s.Tables {
		if err := validName(t.Name); err != nil {
			return fmt.Errorf("sqlgen: schema: table %d: %w", i, err)
		}
		for j, c := range t.Columns {
			if err := validName(c.Name); err != nil {
				return fmt.Errorf("sqlgen: schema: table %q column %d: %w", t.Name, j, err)
			}
		}
	}
	return nil
}

func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return errors.New("name is not valid UTF-8 text")
	case len(name) > 128:
		return errors.New("name is longer than 128 bytes")
	}
	return nil
}

func validQuestion(question string) error {
	switch {
	case len(question) > MaxQuestionBytes:
		return fmt.Errorf("question is longer than %d bytes", MaxQuestionBytes)
	case !utf8.ValidString(question):
		return errors.New("question is not valid UTF-8")
	case strings.TrimSpace(question) == "":
		return errors.New("question is empty")
	}
	return nil
}

// quoteIdent quotes a schema name for the dialect.
func quoteIdent(d sqlguard.Dialect, name string) string {
	if d == sqlguard.MySQL {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteString writes s as a string literal of the dialect. MySQL's default
// sql_mode reads backslash escapes, so backslashes are doubled there;
// PostgreSQL gets the E” form when s holds a backslash, which reads the
// same whatever standard_conforming_strings says. The caller has refused
// control characters.
func quoteString(d sqlguard.Dialect, s string) string {
	quoted := strings.ReplaceAll(s, "'", "''")
	switch {
	case d == sqlguard.MySQL:
		return "'" + strings.ReplaceAll(quoted, `\`, `\\`) + "'"
	case d == sqlguard.Postgres && strings.Contains(s, `\`):
		return "E'" + strings.ReplaceAll(quoted, `\`, `\\`) + "'"
	}
	return "'" + quoted + "'"
}

// The translators' names, as they appear in a Translation.
const (
	builtinName   = "builtin"
	modelNameStem = "llm:"
)

var (
	_ Translator = (*Builtin)(nil)
	_ Translator = (*Model)(nil)
)
