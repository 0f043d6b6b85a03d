package sqlgen

import (
	"strconv"
	"strings"
	"time"
)

// parser reads a question's tokens into mentions of the schema. It does
// not know yet which table the question is about: resolve decides that
// once every mention is known.
type parser struct {
	toks  []token
	pos   int
	idx   *index
	today time.Time

	agg     aggregate
	aggCol  *mention
	tables  []mention
	group   *mention
	filters []filterMention
	dates   *dateMention
	top     int
	desc    bool
}

// mention is a run of words that names a table or column.
type mention struct {
	key  string // nameKey of the words
	text string // the words as written, for messages
}

type filterMention struct {
	column mention
	value  token
}

type dateMention struct {
	column   *mention // nil: the table's date column
	from, to time.Time
}

// Words with a meaning of their own. A schema name beginning with one of
// them can still be named where a name is expected (after "by", "total").
var (
	countWords    = set("count", "number")
	sumWords      = set("total", "sum")
	avgWords      = set("average", "avg", "mean")
	minWords      = set("min", "minimum", "lowest", "smallest", "least", "earliest")
	maxWords      = set("max", "maximum", "highest", "largest", "biggest", "greatest", "latest")
	distinctWords = set("distinct", "different", "unique")
	filterWords   = set("where", "with", "whose", "and", "in", "on", "during", "for")
	periodWords   = set("in", "during", "on", "for", "between", "from", "since", "after", "before",
		"until", "till", "through", "last", "past", "this", "today", "yesterday")
	clauseWords = set("how", "top", "bottom", "by", "per", "each", "every", "grouped", "group")
	unitWords   = set("day", "week", "month", "year")
	fillerWords = set("what", "whats", "what's", "which", "is", "are", "was", "were", "the", "a", "an",
		"of", "me", "us", "show", "give", "tell", "list", "get", "find", "display", "please", "there",
		"do", "does", "did", "we", "i", "have", "has", "had", "all", "row", "rows", "record", "records",
		"entry", "entries", "equals", "equal", "to", "our", "my", "it", "its", "be", "been", "calculate",
		"compute", "return", "overall", "table", "column", "value", "values")
	months = map[string]time.Month{
		"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
		"may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
		"september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
		"december": 12, "dec": 12,
	}
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// isKeyword reports a word that starts a clause or a measure, which is
// never taken as a bare value.
func isKeyword(w string) bool {
	return countWords[w] || sumWords[w] || avgWords[w] || minWords[w] || maxWords[w] ||
		filterWords[w] || periodWords[w] || clauseWords[w] || months[w] != 0
}

// maxTop bounds "top N".
const maxTop = 1000

// maxValueRunes bounds one value of a filter.
const maxValueRunes = 200

func (p *parser) eof() bool { return p.pos >= len(p.toks) }

// word is the lower-cased word at pos+k, or "" for anything else.
func (p *parser) word(k int) string {
	if i := p.pos + k; i < len(p.toks) && p.toks[i].kind == tokWord {
		return p.toks[i].text
	}
	return ""
}

// name matches the longest run of words at pos that names a table or a
// column, without consuming it.
func (p *parser) name() (mention, int) { return p.nameAt(0) }

// nameAt is name at pos+k.
func (p *parser) nameAt(k int) (mention, int) {
	from := p.pos + k
	for n := min(p.idx.maxWords, len(p.toks)-from); n > 0; n-- {
		words := make([]string, 0, n)
		raw := make([]string, 0, n)
		for _, t := range p.toks[from : from+n] {
			if t.kind != tokWord {
				break
			}
			words = append(words, t.text)
			raw = append(raw, t.raw)
		}
		if len(words) < n {
			continue
		}
		key, _ := nameKey(strings.Join(words, " "))
		if _, ok := p.idx.tableKey[key]; ok || p.idx.anyCol[key] {
			return mention{key: key, text: strings.Join(raw, " ")}, n
		}
	}
	return mention{}, 0
}

func (p *parser) isTable(m mention) bool  { _, ok := p.idx.tableKey[m.key]; return ok }
func (p *parser) isColumn(m mention) bool { return p.idx.anyCol[m.key] }

// skipFillers skips filler words that do not begin a schema name.
func (p *parser) skipFillers() {
	for !p.eof() && fillerWords[p.word(0)] {
		if _, n := p.name(); n > 0 {
			return
		}
		p.pos++
	}
}

// next describes the token at pos for an error message.
func (p *parser) next() string {
	if p.eof() {
		return "the end of the question"
	}
	return strconv.Quote(p.toks[p.pos].raw)
}

func (p *parser) parse() error {
	for !p.eof() {
		if err := p.clause(); err != nil {
			return err
		}
	}
	if p.agg == aggNone && p.top > 0 {
		p.agg = aggCount
	}
	if p.agg == aggNone {
		return notUnderstood("the question asks for no measure (how many, total, average, min, max or top N)")
	}
	return nil
}

// clause reads one clause of the question.
func (p *parser) clause() error {
	t := p.toks[p.pos]
	switch t.kind {
	case tokDate:
		return p.dateRange(nil)
	case tokNumber:
		return notUnderstood("the number %s follows no column, \"top\" or \"last\"", t.raw)
	case tokString:
		return notUnderstood("the value %q follows no column (write \"where COLUMN is 'value'\")", t.raw)
	case tokEquals:
		return notUnderstood("\"=\" follows no column")
	}
	if handled, err := p.measure(); handled {
		return err
	}
	switch w := t.text; {
	case w == "top" || w == "bottom":
		return p.topN()
	case w == "by" || w == "per" || w == "each" || w == "every":
		p.pos++
		return p.groupBy()
	case (w == "grouped" || w == "group") && p.word(1) == "by":
		p.pos += 2
		return p.groupBy()
	case w == "for" && (p.word(1) == "each" || p.word(1) == "every"):
		p.pos += 2
		return p.groupBy()
	case w == "from":
		// "from sales", or "from 2024-01-01 to 2024-03-31".
		if m, n := p.nameAt(1); n > 0 && p.isTable(m) {
			p.tables = append(p.tables, m)
			p.pos += 1 + n
			return nil
		}
		return p.dateRange(nil)
	case filterWords[w]:
		p.pos++
		return p.filterOrDate(w)
	case periodWords[w]:
		return p.dateRange(nil)
	}
	if m, n := p.name(); n > 0 {
		p.pos += n
		if p.isTable(m) {
			p.tables = append(p.tables, m)
			return nil
		}
		if p.startsPeriod() {
			return p.dateRange(&m)
		}
		return notUnderstood("the question names the column %q but does not say what to do with it (\"by %s\", \"where %s is …\")", m.text, m.text, m.text)
	}
	if fillerWords[t.text] {
		p.pos++
		return nil
	}
	return notUnderstood("%q is neither a table or column of this data source nor a word the built-in translator knows", t.raw)
}

// measure reads a measure ("how many sales", "total amount") when one
// starts at pos.
func (p *parser) measure() (bool, error) {
	w := p.word(0)
	switch {
	case w == "how" && p.word(1) == "many":
		p.pos += 2
		return true, p.count()
	case countWords[w]:
		p.pos++
		return true, p.count()
	case sumWords[w]:
		p.pos++
		p.skipFillers()
		if countWords[p.word(0)] {
			p.pos++
			return true, p.count()
		}
		return true, p.measureOf(aggSum, w)
	case avgWords[w]:
		p.pos++
		return true, p.measureOf(aggAvg, w)
	case minWords[w]:
		p.pos++
		return true, p.measureOf(aggMin, w)
	case maxWords[w]:
		p.pos++
		return true, p.measureOf(aggMax, w)
	}
	return false, nil
}

func (p *parser) setMeasure(a aggregate, col *mention) error {
	if p.agg != aggNone {
		return notUnderstood("the question asks for more than one measure")
	}
	p.agg, p.aggCol = a, col
	return nil
}

// count reads what follows "how many" or "count of": a table (rows), a
// column (its distinct values), or nothing.
func (p *parser) count() error {
	p.skipFillers()
	distinct := distinctWords[p.word(0)]
	if distinct {
		p.pos++
		p.skipFillers()
	}
	m, n := p.name()
	switch {
	case n == 0 && distinct:
		return notUnderstood("\"distinct\" is followed by %s, not a column", p.next())
	case n == 0:
		return p.setMeasure(aggCount, nil)
	}
	p.pos += n
	if p.isTable(m) && !distinct {
		p.tables = append(p.tables, m)
		return p.setMeasure(aggCount, nil)
	}
	if !p.isColumn(m) {
		return notUnderstood("%q is a table; distinct values are counted for a column", m.text)
	}
	return p.setMeasure(aggCountDistinct, &m)
}

// measureOf reads the column of a sum, average, min or max.
func (p *parser) measureOf(a aggregate, word string) error {
	p.skipFillers()
	m, n := p.name()
	if n == 0 || !p.isColumn(m) {
		return notUnderstood("%q must be followed by a column, not %s", word, p.next())
	}
	p.pos += n
	return p.setMeasure(a, &m)
}

// topN reads "top 5 products [by total amount]".
func (p *parser) topN() error {
	p.desc = p.word(0) == "top"
	p.pos++
	p.top = 10
	if !p.eof() && p.toks[p.pos].kind == tokNumber {
		n, err := strconv.Atoi(p.toks[p.pos].text)
		if err != nil || n < 1 || n > maxTop {
			return notUnderstood("top N needs a whole number from 1 to %d", maxTop)
		}
		p.top = n
		p.pos++
	}
	if err := p.groupBy(); err != nil {
		return err
	}
	if p.word(0) != "by" {
		return nil
	}
	p.pos++
	p.skipFillers()
	if handled, err := p.measure(); handled {
		return err
	}
	m, n := p.name()
	switch {
	case n > 0 && p.isTable(m):
		p.pos += n
		p.tables = append(p.tables, m)
		return p.setMeasure(aggCount, nil)
	case n > 0:
		p.pos += n
		return p.setMeasure(aggSum, &m)
	}
	return notUnderstood("top N ranks by a measure (\"by total amount\", \"by count\"), not by %s", p.next())
}

// groupBy reads the column after "by", "per", "for each" or "top N".
func (p *parser) groupBy() error {
	p.skipFillers()
	m, n := p.name()
	if n == 0 || !p.isColumn(m) {
		return notUnderstood("expected a column to group by, found %s", p.next())
	}
	if p.group != nil {
		return notUnderstood("grouping by more than one column is not understood")
	}
	p.pos += n
	p.group = &m
	return nil
}

// startsPeriod reports whether a date range starts at pos.
func (p *parser) startsPeriod() bool {
	if p.eof() {
		return false
	}
	if k := p.toks[p.pos].kind; k == tokDate {
		return true
	}
	w := p.word(0)
	return (periodWords[w] && w != "for" && w != "on") || months[w] != 0
}

// filterOrDate reads what follows "where", "with", "in", "and" …: a date
// range, a table, or a column and its value.
func (p *parser) filterOrDate(after string) error {
	p.skipFillers()
	if p.startsPeriod() || (!p.eof() && p.toks[p.pos].kind == tokNumber) {
		return p.dateRange(nil)
	}
	m, n := p.name()
	if n == 0 {
		if after == "and" {
			return nil
		}
		return notUnderstood("%q must be followed by a column or a date, not %s", after, p.next())
	}
	p.pos += n
	if p.isTable(m) && !p.isColumn(m) {
		p.tables = append(p.tables, m)
		return nil
	}
	p.skipFillers()
	if p.startsPeriod() {
		return p.dateRange(&m)
	}
	for !p.eof() && (p.toks[p.pos].kind == tokEquals || fillerWords[p.word(0)]) {
		p.pos++
	}
	if p.eof() {
		return notUnderstood("the column %q has no value to compare with", m.text)
	}
	v := p.toks[p.pos]
	if v.kind == tokWord && isKeyword(v.text) {
		return notUnderstood("the column %q is followed by %q, not a value; quote a value that is one of the translator's words", m.text, v.raw)
	}
	if hasControl(v.text) || len([]rune(v.text)) > maxValueRunes {
		return notUnderstood("a value holds control characters or is longer than %d characters", maxValueRunes)
	}
	p.pos++
	p.filters = append(p.filters, filterMention{column: m, value: v})
	return nil
}
