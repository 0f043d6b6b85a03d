package postgres

import (
	"container/heap"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The keyword ranking's lookups, planned in cells.
//
// A chunk's keyword score is Σ q_w · (1 + ln n_w) over the query's words w
// that it holds, q_w times in the query and n_w times in the chunk: a sum,
// and a word held by nearly every chunk counts as much as a rare one. The
// chunks that score highest are therefore those that hold several of the
// query's words, each often. Reading each word's strongest chunks alone
// (as the ranking did first) misses them once an organization is large: at
// 346,009 chunks a common word's strongest level holds thousands of
// chunks, any of which ties with the others, and the few that also hold
// the query's other words are not among those read first (hybrid recall@10
// 0.754 against the exact ranking in BENCHMARKS.md's 1,000,000-chunk run).
//
// So the lookups go by cell. A cell gives some of the query's words a
// level each (the levels of migration 00017: floor(3 ln n)) and says
// nothing about the others; its lookup is the AND of its '<word> <level>'
// lexemes in the levels index, and every chunk it finds scores at least
// the sum of its words' least contributions and, were it to hold no other
// word of the query, at most the sum of their greatest. A chunk's own cell
// (every query word it holds, at its level) has the highest such bound of
// the cells it falls in. The ranking reads the cells in decreasing order of
// that bound until it has read its budget of chunks and scores those
// exactly: the chunks it reads first are those that could score highest,
// whichever words they hold, and a chunk met again in a lower cell is read
// once. It is still a bound on reading, not an exact ranking: the last
// cell read is cut by the budget, and the cells are capped; the tests
// measure recall against the exact ranking.

const (
	// maxKeywordCellWords is how many of the query's words the cells are
	// made of: the ones whose strongest chunks could contribute the most.
	// The others still count in every score, but find no candidates
	// themselves. A cell gives each of its words a level or says nothing
	// of it, and the cells of the best bounds give every word a level: of
	// six words, they hold the chunks that hold all six, few or none, and
	// the cap of cells was spent on lookups that found nothing (with six,
	// a six-word query's hybrid recall@10 at 1,000,000 chunks was 0.50;
	// with three, 0.75 to 0.97; BENCHMARKS.md).
	maxKeywordCellWords = 3
	// maxKeywordCells is the most cells one search looks up; each is one
	// probe of the index, found empty or not.
	maxKeywordCells = 128
)

// keywordWord is a word of the query, as the levels probe returns it.
type keywordWord struct {
	lexeme string
	// times is how often the query holds it.
	times int
	// top is the highest level at which a covered chunk holds it, -1 for
	// none.
	top int
}

// maxOccurrences[l] is the most occurrences of a word that level l stands
// for (0 where no count has level l): level = floor(3 ln n), and
// PostgreSQL keeps at most 256 positions of a lexeme.
var maxOccurrences = func() [topKeywordLevel + 1]int {
	var m [topKeywordLevel + 1]int
	for n := 1; n <= 256; n++ {
		m[keywordLevel(n)] = n
	}
	return m
}()

// keywordLevel is migration 00017's keyword_levels for n occurrences.
func keywordLevel(n int) int { return int(math.Floor(3 * math.Log(float64(n)))) }

// cellOption is one word's part of a cell: a level, or nothing said.
type cellOption struct {
	lexeme string // "" for nothing said
	level  int
	// quoted is the '<word> <level>' lexeme as a tsquery quotes it.
	quoted string
	// bound is the most this part adds to a score.
	bound float64
}

// keywordCell is one lookup of the keyword ranking.
type keywordCell struct {
	// query is the tsquery text for the levels column.
	query string
	// bound is the most a chunk that query finds can score from the
	// cell's words.
	bound float64
}

// planKeywordCells returns the lookups of the keyword ranking in
// decreasing order of bound, at most maxKeywordCells of them, none when no
// word is held by a covered chunk; and whether the cells are made of every
// word that a covered chunk holds (none left out for maxKeywordCellWords).
func planKeywordCells(words []keywordWord) (_ []keywordCell, whole bool) {
	var options [][]cellOption
	seen := map[string]bool{}
	for _, w := range words {
		// A lexeme of to_tsvector is never empty and comes once; an empty
		// one would read as nothing said, and a repeated one would make
		// cells repeat or hold it at two levels and find nothing.
		if w.lexeme == "" || w.top < 0 || w.top > topKeywordLevel || seen[w.lexeme] {
			continue
		}
		seen[w.lexeme] = true
		var opts []cellOption
		for l := w.top; l >= 0; l-- {
			if n := maxOccurrences[l]; n > 0 {
				opts = append(opts, cellOption{lexeme: w.lexeme, level: l, quoted: quoteLexeme(w.lexeme + " " + strconv.Itoa(l)),
					bound: float64(w.times) * (1 + math.Log(float64(n)))})
			}
		}
		options = append(options, append(opts, cellOption{}))
	}
	// The words that can add most, in a set order.
	slices.SortStableFunc(options, func(a, b []cellOption) int {
		if a[0].bound != b[0].bound {
			if a[0].bound > b[0].bound {
				return -1
			}
			return 1
		}
		return strings.Compare(a[0].lexeme, b[0].lexeme)
	})
	whole = len(options) <= maxKeywordCellWords
	options = options[:min(len(options), maxKeywordCellWords)]
	if len(options) == 0 {
		return nil, whole
	}

	// Best first over the options' product: each cell is an index into
	// every word's options (sorted by decreasing bound), and a cell's
	// successors raise one of its indexes by one.
	start := make([]int, len(options))
	q := &cellQueue{{picks: start, bound: cellBound(options, start)}}
	queued := map[string]bool{cellKey(start): true}
	var cells []keywordCell
	for q.Len() > 0 && len(cells) < maxKeywordCells {
		c := heap.Pop(q).(cell)
		if text := cellQuery(options, c.picks); text != "" {
			cells = append(cells, keywordCell{query: text, bound: c.bound})
		}
		for i := range c.picks {
			if c.picks[i]+1 >= len(options[i]) {
				continue
			}
			next := slices.Clone(c.picks)
			next[i]++
			if key := cellKey(next); !queued[key] {
				queued[key] = true
				heap.Push(q, cell{picks: next, bound: cellBound(options, next)})
			}
		}
	}
	return cells, whole
}

// cellQuery is the tsquery text of a cell: the AND of its words' level
// lexemes; "" for the cell that says nothing.
func cellQuery(options [][]cellOption, picks []int) string {
	var b strings.Builder
	for i, p := range picks {
		o := options[i][p]
		if o.lexeme == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(" & ")
		}
		b.WriteString(o.quoted)
	}
	return b.String()
}

// quoteLexeme quotes a lexeme as tsquery input quotes it: in single quotes,
// a quote or a backslash doubled.
func quoteLexeme(lexeme string) string {
	var b strings.Builder
	b.Grow(len(lexeme) + 2)
	b.WriteByte('\'')
	for i := range len(lexeme) {
		if c := lexeme[i]; c == '\'' || c == '\\' {
			b.WriteByte(c)
		}
		b.WriteByte(lexeme[i])
	}
	b.WriteByte('\'')
	return b.String()
}

func cellBound(options [][]cellOption, picks []int) float64 {
	var s float64
	for i, p := range picks {
		s += options[i][p].bound
	}
	return s
}

func cellKey(picks []int) string {
	b := make([]byte, 0, 2*len(picks))
	for _, p := range picks {
		b = strconv.AppendInt(b, int64(p), 10)
		b = append(b, ',')
	}
	return string(b)
}

type cell struct {
	picks []int
	bound float64
}

// cellQueue is a max-heap of cells by bound; among equal bounds the cell
// with the smaller picks comes first, so the order is set.
type cellQueue []cell

func (q cellQueue) Len() int { return len(q) }
func (q cellQueue) Less(i, j int) bool {
	if q[i].bound != q[j].bound {
		return q[i].bound > q[j].bound
	}
	return slices.Compare(q[i].picks, q[j].picks) < 0
}
func (q cellQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *cellQueue) Push(x any)   { *q = append(*q, x.(cell)) }
func (q *cellQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}
