package sqlgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palisadehq/palisade/sqlguard"
)

// Builtin is the deterministic, offline translator: it maps the family of
// questions described in the package documentation onto the schema, and
// answers anything else with [ErrNotUnderstood]. It is safe for concurrent
// use.
//
// The question's text reaches the SQL only as values it recognised,
// written as escaped literals (or numbers and dates it parsed and printed
// itself); every identifier comes from the schema.
type Builtin struct {
	now func() time.Time
}

// NewBuiltin returns a translator whose relative dates ("last 30 days")
// end today in UTC.
func NewBuiltin() *Builtin {
	return &Builtin{now: func() time.Time { return time.Now().UTC() }}
}

// WithClock returns a copy of b whose relative dates end on the day now
// returns, in now's own location. A nil now keeps b's clock.
func (b *Builtin) WithClock(now func() time.Time) *Builtin {
	if now == nil {
		return &Builtin{now: b.now}
	}
	return &Builtin{now: now}
}

// Translate maps question onto schema. A question outside the family is
// an error wrapping ErrNotUnderstood; a broken schema is another error.
func (b *Builtin) Translate(ctx context.Context, schema Schema, question string) (Translation, error) {
	if err := ctx.Err(); err != nil {
		return Translation{}, err
	}
	if err := schema.validate(); err != nil {
		return Translation{}, err
	}
	if err := validQuestion(question); err != nil {
		return Translation{}, notUnderstood("%s", err.Error())
	}
	toks, err := lex(question)
	if err != nil {
		return Translation{}, err
	}
	p := &parser{toks: toks, idx: newIndex(schema), today: day(b.now())}
	if err := p.parse(); err != nil {
		return Translation{}, err
	}
	plan, err := p.resolve()
	if err != nil {
		return Translation{}, err
	}
	return Translation{SQL: plan.sql(schema.Dialect), Translator: builtinName, Explanation: plan.explain()}, nil
}

// day is t's calendar day, at midnight UTC, so that date arithmetic never
// meets a daylight-saving shift.
func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// index finds tables and columns by the words that name them.
type index struct {
	tables   []Table
	tableKey map[string]int   // key → table
	colKey   []map[string]int // per table: key → column
	anyCol   map[string]bool  // keys naming some column
	maxWords int              // the longest name, in words
}

func newIndex(s Schema) *index {
	ix := &index{tables: s.Tables, tableKey: map[string]int{}, anyCol: map[string]bool{}}
	for ti, t := range s.Tables {
		k, n := nameKey(t.Name)
		if _, dup := ix.tableKey[k]; !dup {
			ix.tableKey[k] = ti
		}
		ix.maxWords = max(ix.maxWords, n)
		cols := map[string]int{}
		for ci, c := range t.Columns {
			k, n := nameKey(c.Name)
			if _, dup := cols[k]; !dup {
				cols[k] = ci
			}
			ix.anyCol[k] = true
			ix.maxWords = max(ix.maxWords, n)
		}
		ix.colKey = append(ix.colKey, cols)
	}
	return ix
}

// nameKey is how a name is compared: lower case, words separated by one
// space (underscores, dashes and spaces alike), each word singular.
func nameKey(name string) (string, int) {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == '_' || r == '-' || r == ' ' || r == '.'
	})
	for i, w := range words {
		words[i] = singular(w)
	}
	return strings.Join(words, " "), len(words)
}

// singular strips an English plural ending. It needs only to agree with
// itself: names and questions go through it alike.
func singular(w string) string {
	switch {
	case len(w) > 4 && strings.HasSuffix(w, "ies"):
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "uses"), strings.HasSuffix(w, "xes"),
		strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"):
		return w[:len(w)-2]
	case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		return w[:len(w)-1]
	}
	return w
}

// Column types, told apart by the words of the database's type name.
func isNumeric(typ string) bool {
	t := strings.ToLower(typ)
	for _, s := range []string{"int", "dec", "num", "real", "double", "float", "money", "serial"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

func isDate(typ string) bool {
	t := strings.ToLower(typ)
	return strings.Contains(t, "date") || strings.Contains(t, "timestamp")
}

// aggregate is the measure a question asks for.
type aggregate int

const (
	aggNone aggregate = iota
	aggCount
	aggCountDistinct
	aggSum
	aggAvg
	aggMin
	aggMax
)

// plan is a resolved question: everything in it names the schema or is a
// value the parser produced.
type plan struct {
	table   Table
	agg     aggregate
	aggCol  string // column name, for every aggregate but aggCount
	group   string // column name, or ""
	filters []planFilter
	dates   *planDates
	top     int // LIMIT, with group; 0 for none
	desc    bool
}

type planFilter struct {
	column string
	value  string // the value as the question gave it
	number bool   // value is a number the lexer read
}

type planDates struct {
	column   string
	from, to time.Time // [from, to), zero for an open end
}

func (p *plan) alias() string {
	switch p.agg {
	case aggCountDistinct:
		return p.aggCol + "_count"
	case aggSum:
		return "total_" + p.aggCol
	case aggAvg:
		return "average_" + p.aggCol
	case aggMin:
		return "min_" + p.aggCol
	case aggMax:
		return "max_" + p.aggCol
	}
	return "count"
}

func (p *plan) sql(d sqlguard.Dialect) string {
	q := func(name string) string { return quoteIdent(d, name) }
	var measure string
	switch p.agg {
	case aggCountDistinct:
		measure = "COUNT(DISTINCT " + q(p.aggCol) + ")"
	case aggSum:
		measure = "SUM(" + q(p.aggCol) + ")"
	case aggAvg:
		measure = "AVG(" + q(p.aggCol) + ")"
	case aggMin:
		measure = "MIN(" + q(p.aggCol) + ")"
	case aggMax:
		measure = "MAX(" + q(p.aggCol) + ")"
	default:
		measure = "COUNT(*)"
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	if p.group != "" {
		b.WriteString(q(p.group) + ", ")
	}
	b.WriteString(measure + " AS " + q(p.alias()) + " FROM " + q(p.table.Name))
	var conds []string
	for _, f := range p.filters {
		lit := quoteString(d, f.value)
		if f.number {
			lit = f.value
		}
		conds = append(conds, q(f.column)+" = "+lit)
	}
	if p.dates != nil {
		if !p.dates.from.IsZero() {
			conds = append(conds, q(p.dates.column)+" >= "+quoteString(d, p.dates.from.Format(time.DateOnly)))
		}
		if !p.dates.to.IsZero() {
			conds = append(conds, q(p.dates.column)+" < "+quoteString(d, p.dates.to.Format(time.DateOnly)))
		}
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	if p.group != "" {
		b.WriteString(" GROUP BY " + q(p.group))
		switch {
		case p.top > 0 && p.desc:
			fmt.Fprintf(&b, " ORDER BY %s DESC, %s LIMIT %d", q(p.alias()), q(p.group), p.top)
		case p.top > 0:
			fmt.Fprintf(&b, " ORDER BY %s, %s LIMIT %d", q(p.alias()), q(p.group), p.top)
		default:
			b.WriteString(" ORDER BY " + q(p.group))
		}
	}
	return b.String()
}

// explain says what the query computes, in words built from the plan.
func (p *plan) explain() string {
	var b strings.Builder
	switch p.agg {
	case aggCountDistinct:
		fmt.Fprintf(&b, "the number of distinct %s in %s", p.aggCol, p.table.Name)
	case aggSum:
		fmt.Fprintf(&b, "the total of %s in %s", p.aggCol, p.table.Name)
	case aggAvg:
		fmt.Fprintf(&b, "the average of %s in %s", p.aggCol, p.table.Name)
	case aggMin:
		fmt.Fprintf(&b, "the smallest %s in %s", p.aggCol, p.table.Name)
	case aggMax:
		fmt.Fprintf(&b, "the largest %s in %s", p.aggCol, p.table.Name)
	default:
		fmt.Fprintf(&b, "the number of rows of %s", p.table.Name)
	}
	if p.group != "" {
		fmt.Fprintf(&b, " for each %s", p.group)
	}
	var conds []string
	for _, f := range p.filters {
		conds = append(conds, fmt.Sprintf("%s is %q", f.column, f.value))
	}
	if p.dates != nil {
		switch {
		case p.dates.from.IsZero():
			conds = append(conds, fmt.Sprintf("%s is before %s", p.dates.column, p.dates.to.Format(time.DateOnly)))
		case p.dates.to.IsZero():
			conds = append(conds, fmt.Sprintf("%s is on or after %s", p.dates.column, p.dates.from.Format(time.DateOnly)))
		default:
			conds = append(conds, fmt.Sprintf("%s is from %s to %s", p.dates.column,
				p.dates.from.Format(time.DateOnly), p.dates.to.AddDate(0, 0, -1).Format(time.DateOnly)))
		}
	}
	if len(conds) > 0 {
		b.WriteString(", where " + strings.Join(conds, " and "))
	}
	if p.top > 0 {
		order := "largest"
		if !p.desc {
			order = "smallest"
		}
		fmt.Fprintf(&b, ", the %d %s", p.top, order)
	}
	return b.String()
}

// dateColumns lists the columns of t whose type is a date or timestamp.
func dateColumns(t Table) []string {
	var out []string
	for _, c := range t.Columns {
		if isDate(c.Type) {
			out = append(out, c.Name)
		}
	}
	return slices.Clip(out)
}
