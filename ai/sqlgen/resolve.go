package sqlgen

import (
	"regexp"
	"slices"
	"strings"
)

// resolve picks the table and turns every mention into a column of it.
func (p *parser) resolve() (*plan, error) {
	ti, err := p.table()
	if err != nil {
		return nil, err
	}
	t := p.idx.tables[ti]
	col := func(m mention) (Column, error) {
		ci, ok := p.idx.colKey[ti][m.key]
		if !ok {
			return Column{}, notUnderstood("the table %q has no column %q", t.Name, m.text)
		}
		return t.Columns[ci], nil
	}
	pl := &plan{table: t, agg: p.agg, top: p.top, desc: p.desc}
	if p.aggCol != nil {
		c, err := col(*p.aggCol)
		if err != nil {
			return nil, err
		}
		if (pl.agg == aggSum || pl.agg == aggAvg) && !isNumeric(c.Type) && c.Type != "" {
			return nil, notUnderstood("the column %q is not numeric (%s): it has no total or average", c.Name, c.Type)
		}
		pl.aggCol = c.Name
	}
	if p.group != nil {
		c, err := col(*p.group)
		if err != nil {
			return nil, err
		}
		pl.group = c.Name
	}
	dates := p.dates
	for _, f := range p.filters {
		c, err := col(f.column)
		if err != nil {
			return nil, err
		}
		v := f.value
		switch {
		case isDate(c.Type) && (v.kind == tokDate || v.kind == tokNumber):
			// A date column equal to a day, month or year is that span.
			if dates != nil {
				return nil, notUnderstood("the question has more than one date range")
			}
			sub := &parser{toks: []token{v}, today: p.today}
			span, err := sub.period()
			if err != nil {
				return nil, err
			}
			dates = &dateMention{column: &f.column, from: span.start, to: span.end}
		case isNumeric(c.Type):
			if !numberLiteral.MatchString(v.raw) {
				return nil, notUnderstood("the column %q is numeric, and %q is not a number", c.Name, v.raw)
			}
			pl.filters = append(pl.filters, planFilter{column: c.Name, value: v.raw, number: true})
		default:
			pl.filters = append(pl.filters, planFilter{column: c.Name, value: v.raw})
		}
	}
	if dates != nil {
		pd := &planDates{from: dates.from, to: dates.to}
		if dates.column != nil {
			c, err := col(*dates.column)
			if err != nil {
				return nil, err
			}
			pd.column = c.Name
		} else {
			cols := dateColumns(t)
			switch len(cols) {
			case 0:
				return nil, notUnderstood("the table %q has no date column for a date range", t.Name)
			case 1:
				pd.column = cols[0]
			default:
				return nil, notUnderstood("the table %q has several date columns (%s): name one, as in \"where %s in 2024\"",
					t.Name, strings.Join(cols, ", "), strings.ReplaceAll(cols[0], "_", " "))
			}
		}
		pl.dates = pd
	}
	return pl, nil
}

// numberLiteral is the only shape of number written into SQL as is.
var numberLiteral = regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{1,30})?$`)

// table is the one table the question is about: the one it names, or the
// one holding every column it names.
func (p *parser) table() (int, error) {
	var named []int
	for _, m := range p.tables {
		if ti := p.idx.tableKey[m.key]; !slices.Contains(named, ti) {
			named = append(named, ti)
		}
	}
	if len(named) > 1 {
		return 0, notUnderstood("the question names more than one table (%s and %s); joins are not understood",
			p.idx.tables[named[0]].Name, p.idx.tables[named[1]].Name)
	}
	if len(named) == 1 {
		return named[0], nil
	}
	cols := p.columnMentions()
	var fits []int
	for ti := range p.idx.tables {
		all := true
		for _, m := range cols {
			if _, ok := p.idx.colKey[ti][m.key]; !ok {
				all = false
				break
			}
		}
		if all {
			fits = append(fits, ti)
		}
	}
	switch {
	case len(fits) == 1:
		return fits[0], nil
	case len(fits) == 0:
		return 0, notUnderstood("no table has all the columns the question names")
	case len(cols) == 0:
		return 0, notUnderstood("the question names no table (%s)", p.tableNames(fits))
	}
	return 0, notUnderstood("several tables have the columns the question names (%s): name the table", p.tableNames(fits))
}

func (p *parser) columnMentions() []mention {
	var out []mention
	for _, m := range []*mention{p.aggCol, p.group} {
		if m != nil {
			out = append(out, *m)
		}
	}
	for _, f := range p.filters {
		out = append(out, f.column)
	}
	if p.dates != nil && p.dates.column != nil {
		out = append(out, *p.dates.column)
	}
	return out
}

func (p *parser) tableNames(tis []int) string {
	names := make([]string, len(tis))
	for i, ti := range tis {
		names[i] = p.idx.tables[ti].Name
	}
	return strings.Join(names, ", ")
}
