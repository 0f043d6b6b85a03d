package sqlgen

import (
	"strconv"
	"time"
)

// period is a span of whole days, [start, end).
type period struct{ start, end time.Time }

// maxRelative bounds N in "last N days".
const maxRelative = 100000

// dateRange reads a date range at pos, on column (nil: the table's date
// column): "in 2024", "between A and B", "since A", "last 30 days" ….
func (p *parser) dateRange(column *mention) error {
	w := p.word(0)
	var from, to time.Time
	switch w {
	case "between", "from":
		p.pos++
		a, err := p.period()
		if err != nil {
			return err
		}
		sep := p.word(0)
		if !(sep == "and" || (w == "from" && (sep == "to" || sep == "until" || sep == "till" || sep == "through"))) {
			return notUnderstood("%q A needs an end (\"%s A and B\"), found %s", w, w, p.next())
		}
		p.pos++
		b, err := p.period()
		if err != nil {
			return err
		}
		from, to = a.start, b.end
	case "since", "after", "before", "until", "till", "through":
		p.pos++
		a, err := p.period()
		if err != nil {
			return err
		}
		switch w {
		case "since":
			from = a.start
		case "after":
			from = a.end
		case "before":
			to = a.start
		default:
			to = a.end
		}
	case "last", "past":
		p.pos++
		n := 1
		if !p.eof() && p.toks[p.pos].kind == tokNumber {
			v, err := strconv.Atoi(p.toks[p.pos].text)
			if err != nil || v < 1 || v > maxRelative {
				return notUnderstood("%q N needs a whole number from 1 to %d", w, maxRelative)
			}
			n = v
			p.pos++
		}
		unit := singular(p.word(0))
		if !unitWords[unit] {
			return notUnderstood("%q must be followed by days, weeks, months or years, not %s", w, p.next())
		}
		p.pos++
		end := p.today.AddDate(0, 0, 1)
		switch unit {
		case "day":
			from = end.AddDate(0, 0, -n)
		case "week":
			from = end.AddDate(0, 0, -7*n)
		case "month":
			from = end.AddDate(0, -n, 0)
		case "year":
			from = end.AddDate(-n, 0, 0)
		}
		to = end
	default:
		if w == "in" || w == "during" || w == "on" || w == "for" {
			p.pos++
		}
		a, err := p.period()
		if err != nil {
			return err
		}
		from, to = a.start, a.end
	}
	return p.setDates(column, from, to)
}

func (p *parser) setDates(column *mention, from, to time.Time) error {
	if p.dates != nil {
		return notUnderstood("the question has more than one date range")
	}
	for _, t := range []time.Time{from, to} {
		if !t.IsZero() && (t.Year() < 1 || t.Year() > 9999) {
			return notUnderstood("a date of the range is outside the years 1 to 9999")
		}
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return notUnderstood("the date range is empty (it ends before it starts)")
	}
	p.dates = &dateMention{column: column, from: from, to: to}
	return nil
}

// period reads one span: a date (2024-03-01), a month (2024-03,
// "march 2024"), a year (2024), today, yesterday, this month, this year.
func (p *parser) period() (period, error) {
	if p.eof() {
		return period{}, notUnderstood("a date was expected at the end of the question")
	}
	t := p.toks[p.pos]
	switch {
	case t.kind == tokDate && len(t.text) == len(time.DateOnly):
		d, err := time.Parse(time.DateOnly, t.text)
		if err != nil {
			return period{}, notUnderstood("%s is not a date of the calendar", t.text)
		}
		p.pos++
		return period{d, d.AddDate(0, 0, 1)}, nil
	case t.kind == tokDate:
		d, err := time.Parse("2006-01", t.text)
		if err != nil {
			return period{}, notUnderstood("%s is not a month of the calendar", t.text)
		}
		p.pos++
		return period{d, d.AddDate(0, 1, 0)}, nil
	case t.kind == tokNumber:
		y, ok := year(t.text)
		if !ok {
			return period{}, notUnderstood("%s is not a year (a date is written 2024-03-01)", t.raw)
		}
		p.pos++
		d := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		return period{d, d.AddDate(1, 0, 0)}, nil
	}
	w := p.word(0)
	switch {
	case months[w] != 0:
		p.pos++
		if p.eof() || p.toks[p.pos].kind != tokNumber {
			return period{}, notUnderstood("a month needs its year (\"%s 2024\")", t.raw)
		}
		y, ok := year(p.toks[p.pos].text)
		if !ok {
			return period{}, notUnderstood("%s is not a year", p.toks[p.pos].raw)
		}
		p.pos++
		d := time.Date(y, months[w], 1, 0, 0, 0, 0, time.UTC)
		return period{d, d.AddDate(0, 1, 0)}, nil
	case w == "today":
		p.pos++
		return period{p.today, p.today.AddDate(0, 0, 1)}, nil
	case w == "yesterday":
		p.pos++
		return period{p.today.AddDate(0, 0, -1), p.today}, nil
	case w == "this" && p.word(1) == "month":
		p.pos += 2
		d := time.Date(p.today.Year(), p.today.Month(), 1, 0, 0, 0, 0, time.UTC)
		return period{d, d.AddDate(0, 1, 0)}, nil
	case w == "this" && p.word(1) == "year":
		p.pos += 2
		d := time.Date(p.today.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		return period{d, d.AddDate(1, 0, 0)}, nil
	}
	return period{}, notUnderstood("a date was expected (2024, 2024-03, 2024-03-01, march 2024, today, this month), found %s", p.next())
}

// year reads a four-digit year.
func year(s string) (int, bool) {
	y, err := strconv.Atoi(s)
	return y, err == nil && len(s) == 4 && y >= 1000
}
