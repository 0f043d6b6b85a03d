package postgres

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestKeywordLevelsAsTheMigrationComputesThem(t *testing.T) {
	for _, tc := range []struct{ n, level int }{{1, 0}, {2, 2}, {3, 3}, {4, 4}, {5, 4}, {6, 5}, {20, 8}, {21, 9}, {256, 16}} {
		if got := keywordLevel(tc.n); got != tc.level {
			t.Errorf("keywordLevel(%d) = %d, want %d", tc.n, got, tc.level)
		}
	}
	if maxOccurrences[1] != 0 || maxOccurrences[0] != 1 || maxOccurrences[4] != 5 || maxOccurrences[topKeywordLevel] != 256 {
		t.Errorf("maxOccurrences = %v", maxOccurrences)
	}
}

// cellBoundOf recomputes a cell's bound from its text.
func cellBoundOf(t *testing.T, text string, times map[string]int) float64 {
	t.Helper()
	var sum float64
	for _, part := range strings.Split(text, " & ") {
		word, level, ok := strings.Cut(strings.Trim(part, "'"), " ")
		if !ok {
			t.Fatalf("cell part %q", part)
		}
		l := 0
		for _, r := range level {
			l = 10*l + int(r-'0')
		}
		sum += float64(times[word]) * (1 + math.Log(float64(maxOccurrences[l])))
	}
	return sum
}

func TestPlanKeywordCells(t *testing.T) {
	words := []keywordWord{
		{lexeme: "the", times: 1, top: 9},
		{lexeme: "policy", times: 2, top: 3},
		{lexeme: "term4000", times: 1, top: 0},
		{lexeme: "absent", times: 1, top: -1},
	}
	times := map[string]int{"the": 1, "policy": 2, "term4000": 1}
	planned, whole := planKeywordCells(words)
	if !whole {
		t.Error("three words held (and one not): the cells do not say they hold every word")
	}
	var cells []string
	for _, c := range planned {
		cells = append(cells, c.query)
		if b := cellBoundOf(t, c.query, times); math.Abs(b-c.bound) > 1e-9 {
			t.Errorf("cell %q: bound %.3f, recomputed %.3f", c.query, c.bound, b)
		}
	}
	if len(cells) == 0 || len(cells) > maxKeywordCells {
		t.Fatalf("%d cells", len(cells))
	}
	// The first cell holds every word the organization has, each at its
	// highest level (the word that can add most first).
	if want := "'the 9' & 'policy 3' & 'term4000 0'"; cells[0] != want {
		t.Errorf("first cell %q, want %q", cells[0], want)
	}
	prev := math.Inf(1)
	seen := map[string]bool{}
	for _, c := range cells {
		if strings.Contains(c, "absent") {
			t.Errorf("cell %q names a word no chunk holds", c)
		}
		if strings.Contains(c, "policy 1") || strings.Contains(c, "the 1'") {
			t.Errorf("cell %q names level 1, which no count has", c)
		}
		if seen[c] {
			t.Errorf("cell %q twice", c)
		}
		seen[c] = true
		b := cellBoundOf(t, c, times)
		if b > prev+1e-9 {
			t.Errorf("cell %q (bound %.3f) after one of bound %.3f", c, b, prev)
		}
		prev = b
	}
	// Every cell of these three words fits under the cap: (9 levels of
	// "the" + none) × (3 of policy + none) × (1 + none) − the empty one.
	if want := (9+1)*(3+1)*(1+1) - 1; len(cells) != want {
		t.Errorf("%d cells, want %d", len(cells), want)
	}
	for _, want := range []string{"'term4000 0'", "'the 0'", "'the 5' & 'policy 2'"} {
		if !slices.Contains(cells, want) {
			t.Errorf("no cell %q", want)
		}
	}
	if got, _ := planKeywordCells([]keywordWord{{lexeme: "x", times: 1, top: -1}}); got != nil {
		t.Errorf("cells for a word no chunk holds: %v", got)
	}
}

func TestPlanKeywordCellsQuotesAndCaps(t *testing.T) {
	var words []keywordWord
	for i := range 10 {
		words = append(words, keywordWord{lexeme: strings.Repeat("w", i+1), times: 1, top: 16})
	}
	words = append(words, keywordWord{lexeme: `o'b\c`, times: 5, top: 2})
	cells, whole := planKeywordCells(words)
	if whole {
		t.Errorf("eleven words held, cells of %d: the cells say they hold every word", maxKeywordCellWords)
	}
	if len(cells) != maxKeywordCells {
		t.Fatalf("%d cells, want the cap %d", len(cells), maxKeywordCells)
	}
	if !strings.Contains(cells[0].query, `'o''b\\c 2'`) {
		t.Errorf("first cell %q does not quote o'b\\c as tsquery input does", cells[0].query)
	}
	words6 := map[string]bool{}
	for _, c := range cells {
		for _, part := range strings.Split(c.query, " & ") {
			w, _, _ := strings.Cut(strings.Trim(part, "'"), " ")
			words6[w] = true
		}
	}
	if len(words6) > maxKeywordCellWords {
		t.Errorf("cells name %d words, at most %d allowed", len(words6), maxKeywordCellWords)
	}
}

func FuzzPlanKeywordCells(f *testing.F) {
	f.Add("the", 1, 9, "a'b", 2, 3)
	f.Fuzz(func(t *testing.T, w1 string, t1, l1 int, w2 string, t2, l2 int) {
		// A query holds a word at least once.
		times := func(n int) int { return int(uint(n)%8) + 1 }
		words := []keywordWord{{lexeme: w1, times: times(t1), top: l1 % 20}, {lexeme: w2, times: times(t2), top: l2 % 20}}
		cells, whole := planKeywordCells(words)
		if !whole {
			t.Fatalf("two words: the cells do not say they hold every word")
		}
		if len(cells) > maxKeywordCells {
			t.Fatalf("%d cells", len(cells))
		}
		seen := map[string]bool{}
		for i, c := range cells {
			if c.query == "" || seen[c.query] {
				t.Fatalf("cell %d %q empty or repeated", i, c.query)
			}
			seen[c.query] = true
			if c.bound <= 0 {
				t.Fatalf("cell %d %q: bound %v", i, c.query, c.bound)
			}
			if i > 0 && c.bound > cells[i-1].bound {
				t.Fatalf("cell %d %q: bound %v after %v", i, c.query, c.bound, cells[i-1].bound)
			}
		}
	})
}

func TestPlanKeywordCellsIgnoresEmptyAndRepeatedWords(t *testing.T) {
	one, _ := planKeywordCells([]keywordWord{{lexeme: "a", times: 1, top: 2}})
	got, _ := planKeywordCells([]keywordWord{{lexeme: "a", times: 1, top: 2}, {lexeme: "a", times: 3, top: 9}, {lexeme: "", times: 1, top: 4}})
	if !slices.Equal(got, one) {
		t.Errorf("cells = %v, want those of the first word alone, %v", got, one)
	}
	// Repeated and empty words are not words left out of the cells.
	var words []keywordWord
	for _, w := range []string{"a", "b", "c", "a", "", "d"} {
		words = append(words, keywordWord{lexeme: w, times: 1, top: 2})
	}
	if _, whole := planKeywordCells(words[:5]); !whole {
		t.Error("a, b, c, a repeated and an empty word: the cells do not say they hold every word")
	}
	if _, whole := planKeywordCells(words); whole {
		t.Error("a, b, c and d: the cells say they hold every word")
	}
}
