package chunk_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/palisadehq/palisade/knowledge/chunk"
)

// checkInvariants asserts what every caller of Split may rely on.
func checkInvariants(t testing.TB, text string, opts chunk.Options, chunks []chunk.Chunk) {
	t.Helper()
	o := effective(opts)
	covered := make([]bool, len(text))
	for i, c := range chunks {
		if c.Ordinal != i {
			t.Fatalf("chunk %d has ordinal %d", i, c.Ordinal)
		}
		if c.Start < 0 || c.End > len(text) || c.Start >= c.End {
			t.Fatalf("chunk %d has offsets [%d,%d) in %d bytes", i, c.Start, c.End, len(text))
		}
		if c.Text != text[c.Start:c.End] {
			t.Fatalf("chunk %d: Text is not input[Start:End]", i)
		}
		if len(c.Text) > o.MaxBytes {
			t.Fatalf("chunk %d is %d bytes, max %d", i, len(c.Text), o.MaxBytes)
		}
		if isSpace(c.Text[0]) || isSpace(c.Text[len(c.Text)-1]) {
			t.Fatalf("chunk %d starts or ends with whitespace: %q", i, c.Text)
		}
		if utf8.ValidString(text) && !utf8.ValidString(c.Text) {
			t.Fatalf("chunk %d cuts inside a rune: %q", i, c.Text)
		}
		if i > 0 {
			prev := chunks[i-1]
			if c.Start <= prev.Start || c.End <= prev.End {
				t.Fatalf("chunk %d [%d,%d) is not after chunk %d [%d,%d)", i, c.Start, c.End, i-1, prev.Start, prev.End)
			}
			if overlap := prev.End - c.Start; overlap > o.OverlapBytes {
				t.Fatalf("chunks %d and %d overlap by %d bytes, max %d", i-1, i, overlap, o.OverlapBytes)
			}
		}
		for j := c.Start; j < c.End; j++ {
			covered[j] = true
		}
	}
	for j := range text {
		if !covered[j] && !isSpace(text[j]) {
			t.Fatalf("byte %d (%q) is in no chunk", j, text[j])
		}
	}
}

// effective mirrors the documented defaults, so the test states them too.
func effective(o chunk.Options) chunk.Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1000
	}
	o.MaxBytes = max(o.MaxBytes, 16)
	if o.TargetBytes <= 0 {
		o.TargetBytes = min(800, o.MaxBytes*4/5)
	}
	o.TargetBytes = min(o.TargetBytes, o.MaxBytes)
	if o.OverlapBytes == 0 {
		o.OverlapBytes = o.TargetBytes * 15 / 100
	}
	o.OverlapBytes = min(max(o.OverlapBytes, 0), o.TargetBytes/2)
	return o
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	got := chunk.DefaultOptions()
	want := chunk.Options{MaxBytes: 1000, TargetBytes: 800, OverlapBytes: 120, MinSectionBytes: 100}
	if got != want {
		t.Fatalf("DefaultOptions() = %+v, want %+v", got, want)
	}
}

func TestNothingToSplit(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", " ", "\n\n\t \r\n"} {
		if got := chunk.Split(text, chunk.Options{}); len(got) != 0 {
			t.Errorf("Split(%q) = %v, want no chunks", text, got)
		}
	}
}

func TestShortTextIsOneTrimmedChunk(t *testing.T) {
	t.Parallel()
	text := "\n\n  Hello, world. This is short.  \n"
	got := chunk.Split(text, chunk.Options{})
	want := []chunk.Chunk{{Ordinal: 0, Text: "Hello, world. This is short.", Start: 4, End: 32}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Split = %+v, want %+v", got, want)
	}
}

func TestHeadingPaths(t *testing.T) {
	t.Parallel()
	para := func(topic string) string {
		return strings.Repeat("This paragraph explains "+topic+" in some detail. ", 4)
	}
	text := "Preamble before any heading, long enough to stand on its own as a chunk of text rather than be merged into the next.\n\n" +
		"# Intro\n\n" + para("the product") + "\n\n" +
		"## Setup ##\n\n" + para("installation") + "\n\n" +
		"### Linux\n\n" + para("linux packages") + "\n\n" +
		"## Usage\n\n" + para("daily use") + "\n\n" +
		"# Reference\n\n" + para("the API")
	chunks := chunk.Split(text, chunk.Options{})
	checkInvariants(t, text, chunk.Options{}, chunks)
	var got []string
	for _, c := range chunks {
		got = append(got, c.Heading)
		if strings.Count(c.Text, "\n#") > 0 {
			t.Errorf("chunk %d spans a heading: %q", c.Ordinal, c.Text)
		}
	}
	want := []string{"", "Intro", "Intro > Setup", "Intro > Setup > Linux", "Intro > Usage", "Reference"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headings %q, want %q", got, want)
	}
	if !strings.HasPrefix(chunks[2].Text, "## Setup ##\n\nThis paragraph") {
		t.Errorf("a section's chunk should start with its heading line: %q", chunks[2].Text)
	}
}

func TestHeadingFollowedBySubheadingIsMerged(t *testing.T) {
	t.Parallel()
	text := "# Guide\n\n## Install\n\nRun the installer and follow the prompts until it reports success; then reboot."
	chunks := chunk.Split(text, chunk.Options{})
	if len(chunks) != 1 || chunks[0].Heading != "Guide > Install" || chunks[0].Text != text {
		t.Fatalf("chunks = %+v", chunks)
	}
}

func TestTinySectionMergedIntoNext(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Detailed content about billing cycles. ", 5)
	text := "# Billing\n\nSee below.\n\n## Cycles\n\n" + long
	chunks := chunk.Split(text, chunk.Options{})
	if len(chunks) != 1 || chunks[0].Heading != "Billing" {
		t.Fatalf("chunks = %+v", chunks)
	}
	// With merging off, every heading starts a chunk.
	chunks = chunk.Split(text, chunk.Options{MinSectionBytes: -1})
	if len(chunks) != 2 || chunks[1].Heading != "Billing > Cycles" {
		t.Fatalf("chunks without merging = %+v", chunks)
	}
}

func TestHashLinesInCodeFencesAreNotHeadings(t *testing.T) {
	t.Parallel()
	text := "# Deploy\n\nRun this:\n\n```sh\n# install the binary\nmake install\n```\n\nThen start it."
	chunks := chunk.Split(text, chunk.Options{})
	if len(chunks) != 1 || chunks[0].Heading != "Deploy" {
		t.Fatalf("chunks = %+v", chunks)
	}
}

func TestLongParagraphSplitsAtSentences(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 60 {
		fmt.Fprintf(&b, "Sentence number %d says something about retrieval quality. ", i)
	}
	text := strings.TrimSpace(b.String())
	opts := chunk.Options{}
	chunks := chunk.Split(text, opts)
	checkInvariants(t, text, opts, chunks)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks for %d bytes", len(chunks), len(text))
	}
	for i, c := range chunks {
		if !strings.HasSuffix(c.Text, ".") {
			t.Errorf("chunk %d does not end at a sentence: …%q", i, c.Text[max(0, len(c.Text)-30):])
		}
		if !strings.HasPrefix(c.Text, "Sentence number") {
			t.Errorf("chunk %d does not start at a sentence: %q…", i, c.Text[:30])
		}
		if i > 0 {
			overlap := chunks[i-1].End - c.Start
			if overlap <= 0 || overlap > 120 {
				t.Errorf("chunks %d and %d overlap by %d bytes, want 1..120", i-1, i, overlap)
			}
		}
		if i < len(chunks)-1 && len(c.Text) < 400 {
			t.Errorf("chunk %d is only %d bytes", i, len(c.Text))
		}
	}
}

func TestRunWithoutSpacesIsCutAtRuneBoundaries(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		strings.Repeat("é", 3000),
		strings.Repeat("🚀a", 700),
		strings.Repeat("x", 2500),
	} {
		opts := chunk.Options{}
		chunks := chunk.Split(text, opts)
		checkInvariants(t, text, opts, chunks)
		if len(chunks) < 2 {
			t.Fatalf("%d chunks for %d bytes", len(chunks), len(text))
		}
	}
}

// Regression: an overlap reaching back across a long run of whitespace
// once left no room in the next chunk and Split never returned.
func TestLongWhitespaceBetweenWords(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("word. ", 30) + strings.Repeat(" ", 5000) + strings.Repeat("next. ", 30) +
		strings.Repeat("\n", 3000) + "end"
	for _, opts := range []chunk.Options{{}, {MaxBytes: 16}, {MaxBytes: 40, TargetBytes: 39, OverlapBytes: 19}} {
		chunks := chunk.Split(text, opts)
		checkInvariants(t, text, opts, chunks)
	}
}

func TestFullWidthSentenceMarks(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("東京は日本の首都です。人口が多いです。", 40)
	opts := chunk.Options{}
	chunks := chunk.Split(text, opts)
	checkInvariants(t, text, opts, chunks)
	for i, c := range chunks[:len(chunks)-1] {
		if !strings.HasSuffix(c.Text, "。") {
			t.Errorf("chunk %d does not end at a full stop", i)
		}
	}
}

func TestParagraphsPreferredOverSentences(t *testing.T) {
	t.Parallel()
	p := strings.Repeat("Alpha beta gamma delta. ", 12) // ~288 bytes
	text := strings.TrimSpace(p) + "\n\n" + strings.TrimSpace(p) + "\n\n" + strings.TrimSpace(p) + "\n\n" + strings.TrimSpace(p)
	chunks := chunk.Split(text, chunk.Options{})
	checkInvariants(t, text, chunk.Options{}, chunks)
	first := chunks[0]
	if !strings.HasSuffix(text[:first.End+2], "\n\n") {
		t.Fatalf("first chunk does not end at a paragraph: …%q", first.Text[len(first.Text)-20:])
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	text := randomDocument(rand.New(rand.NewPCG(1, 2)), 20000)
	a := chunk.Split(text, chunk.Options{})
	b := chunk.Split(text, chunk.Options{})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two splits of the same text differ")
	}
}

func TestPropertiesOnRandomDocuments(t *testing.T) {
	t.Parallel()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 99))
		text := randomDocument(rng, rng.IntN(6000))
		opts := chunk.Options{}
		if seed%3 != 0 {
			opts = chunk.Options{
				MaxBytes:        rng.IntN(1200) - 10,
				TargetBytes:     rng.IntN(1000) - 10,
				OverlapBytes:    rng.IntN(300) - 20,
				MinSectionBytes: rng.IntN(200) - 20,
			}
		}
		chunks := chunk.Split(text, opts)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkInvariants(t, text, opts, chunks) })
	}
}

var words = []string{"palisade", "retrieval", "the", "of", "tenant", "événement", "東京", "🚀",
	"chunk", "boundary", "supercalifragilisticexpialidocious", "a", "x", "data-source"}

// randomDocument writes markdown-ish text: headings, fences, paragraphs of
// sentences, long unbroken runs, odd whitespace.
func randomDocument(rng *rand.Rand, size int) string {
	var b strings.Builder
	for b.Len() < size {
		switch rng.IntN(12) {
		case 0:
			fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", 1+rng.IntN(7)), words[rng.IntN(len(words))])
		case 1:
			b.WriteString("```\n# not a heading\ncode()\n```\n")
		case 2:
			b.WriteString(strings.Repeat(words[rng.IntN(len(words))], 1+rng.IntN(200)))
		case 3:
			b.WriteString([]string{"\n", "\n\n", " ", "\t", "\r\n", "  \n \n"}[rng.IntN(6)])
		default:
			for range 1 + rng.IntN(8) {
				for range 1 + rng.IntN(15) {
					b.WriteString(words[rng.IntN(len(words))])
					b.WriteByte(' ')
				}
				b.WriteString([]string{". ", "! ", "? ", "。", "\" ", "\n"}[rng.IntN(6)])
			}
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

func FuzzSplit(f *testing.F) {
	f.Add("# A\n\nHello world. Second sentence.\n\n## B\n\nMore text here.", 0, 0, 0)
	f.Add(strings.Repeat("word ", 500), 100, 80, 20)
	f.Add(strings.Repeat("é", 400), 17, 16, 8)
	f.Add("```\n# x\n```\n# y\n\n\n", 16, 0, -1)
	f.Add(randomDocument(rand.New(rand.NewPCG(7, 7)), 4000), 300, 200, 50)
	f.Fuzz(func(t *testing.T, text string, maxBytes, target, overlap int) {
		if len(text) > 1<<16 {
			return
		}
		opts := chunk.Options{MaxBytes: maxBytes % 5000, TargetBytes: target % 5000, OverlapBytes: overlap % 5000}
		checkInvariants(t, text, opts, chunk.Split(text, opts))
	})
}

func BenchmarkSplit(b *testing.B) {
	text := randomDocument(rand.New(rand.NewPCG(3, 4)), 1<<20)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		chunk.Split(text, chunk.Options{})
	}
}

func BenchmarkSplitProse(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		if i%40 == 0 {
			fmt.Fprintf(&sb, "## Section %d\n\n", i)
		}
		sb.WriteString("Retrieval combines vector similarity with full-text ranking. Each organization sees only its own chunks, filtered inside the query.\n\n")
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		chunk.Split(text, chunk.Options{})
	}
}
