// Package chunk owns splitting a document's plain text into the passages
// that are embedded and retrieved: bounded in size, cut where the text has
// natural seams (headings, paragraphs, lines, sentences, words, in that
// order of preference), overlapping a little so that a sentence near a cut
// is retrievable from either side, and each labelled with the heading path
// it sits under.
//
// Split is pure and deterministic: the same text and options give the same
// chunks on every machine, so a read model rebuilt from the log gets the
// same chunk ids and offsets. It must never read, embed, store or log
// anything, and never decide what a document means beyond its markdown-style
// headings ("# Title" lines, the form knowledge/extract produces).
package chunk

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Chunk is one passage of the input.
type Chunk struct {
	// Ordinal is the chunk's position, from 0.
	Ordinal int
	// Text is exactly input[Start:End]. It never starts or ends with
	// whitespace, and Start and End never fall inside a UTF-8 sequence of
	// valid input.
	Text       string
	Start, End int
	// Heading is the heading path in force at the chunk's first byte of
	// content (headings at the top of the chunk included), outermost first
	// and joined with " > ", for example "Intro > Setup". Empty before the
	// first heading.
	Heading string
}

// Options bound the chunks. Sizes are in bytes of UTF-8, which for ASCII
// text is characters; a bound in bytes also bounds storage and request
// sizes whatever the script. Zero values mean the defaults.
type Options struct {
	// MaxBytes is the largest chunk, overlap included. Default 1000;
	// at least 16.
	MaxBytes int
	// TargetBytes is the size chunks are cut at when the text allows;
	// cuts fall between half of it and MaxBytes. Default 800, and never
	// more than MaxBytes.
	TargetBytes int
	// OverlapBytes is how much of the end of a chunk the next chunk of the
	// same section repeats, at most; the overlap starts at a sentence or
	// word boundary, or is left out. Default 15% of TargetBytes; negative
	// means none; at most half of TargetBytes.
	OverlapBytes int
	// MinSectionBytes: a section (a heading and its text) shorter than
	// this is merged with the section after it, so a heading followed
	// directly by a subheading, or a one-line section, does not become a
	// chunk of its own. Otherwise a chunk never spans a heading. Default
	// TargetBytes/8; negative means never merge.
	MinSectionBytes int
}

// DefaultOptions are the options the zero Options stands for.
func DefaultOptions() Options { return Options{}.withDefaults() }

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1000
	}
	o.MaxBytes = max(o.MaxBytes, 16)
	if o.TargetBytes <= 0 {
		o.TargetBytes = min(800, o.MaxBytes*4/5)
	}
	o.TargetBytes = min(o.TargetBytes, o.MaxBytes)
	switch {
	case o.OverlapBytes == 0:
		o.OverlapBytes = o.TargetBytes * 15 / 100
	case o.OverlapBytes < 0:
		o.OverlapBytes = 0
	}
	o.OverlapBytes = min(o.OverlapBytes, o.TargetBytes/2)
	switch {
	case o.MinSectionBytes == 0:
		o.MinSectionBytes = o.TargetBytes / 8
	case o.MinSectionBytes < 0:
		o.MinSectionBytes = 0
	}
	return o
}

// Seam strengths: where a cut may go, from weakest to strongest.
const (
	seamWord      = iota // inside a line, between words
	seamSentence         // after . ! ? … 。 ！ ？ (and closing quotes)
	seamLine             // a line break
	seamParagraph        // a blank line
	seamHeading          // just before a heading line
)

// seam is a place where the text may be cut: the chunk before it ends at
// end, the one after it starts at next (end < next across whitespace).
type seam struct {
	end, next int
	strength  int8
}

type heading struct {
	start int // the byte where the heading line starts (after indentation)
	level int
	// title is the heading's text, cut to maxHeadingTitleBytes.
	title string
	// parent is the index of the enclosing heading, -1 for none.
	parent int
}

// maxHeadingTitleBytes bounds a heading's title in a chunk's path. A path
// is built only for the headings that label chunks, from at most six
// titles (ATX levels): a document of many subheadings under one long
// heading costs its text, not that heading's length once per subheading
// (a 1 MiB file of that shape held 3.6 GB in paths built for each).
const maxHeadingTitleBytes = 256

// headingPath returns heading i's path: the non-empty titles from the
// outermost enclosing heading to its own, joined by " > ".
func headingPath(headings []heading, i int) string {
	var titles []string
	for ; i >= 0; i = headings[i].parent {
		if headings[i].title != "" {
			titles = append(titles, headings[i].title)
		}
	}
	slices.Reverse(titles)
	return strings.Join(titles, " > ")
}

// capTitle cuts title to maxHeadingTitleBytes, at a rune boundary.
func capTitle(title string) string {
	if len(title) <= maxHeadingTitleBytes {
		return title
	}
	cut := maxHeadingTitleBytes
	for cut > 0 && !utf8.RuneStart(title[cut]) {
		cut--
	}
	return title[:cut]
}

// Split cuts text into chunks. Whitespace-only text gives no chunks.
func Split(text string, opts Options) []Chunk {
	o := opts.withDefaults()
	headings := findHeadings(text)
	seams := findSeams(text, headings)
	var chunks []Chunk
	for _, seg := range segments(text, headings, o.MinSectionBytes) {
		chunks = splitSegment(text, seg[0], seg[1], seams, o, chunks)
	}
	for i := range chunks {
		chunks[i].Ordinal = i
		chunks[i].Text = text[chunks[i].Start:chunks[i].End]
		chunks[i].Heading = headingFor(text, chunks[i], headings)
	}
	return chunks
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// findHeadings returns the markdown ATX headings ("# A", "## B") outside
// fenced code blocks, each with its enclosing heading (see headingPath).
func findHeadings(text string) []heading {
	var (
		out   []heading
		stack []int  // indices in out of the open headings, outermost first
		fence string // the open fence's marker, "" outside code
	)
	for lineStart := 0; lineStart < len(text); {
		lineEnd := strings.IndexByte(text[lineStart:], '\n')
		if lineEnd < 0 {
			lineEnd = len(text)
		} else {
			lineEnd += lineStart
		}
		line := text[lineStart:lineEnd]
		indent := 0
		for indent < 3 && indent < len(line) && line[indent] == ' ' {
			indent++
		}
		body := line[indent:]
		switch {
		case fence != "":
			if strings.HasPrefix(body, fence) && strings.Trim(body, fence[:1]+" \t\r") == "" {
				fence = ""
			}
		case strings.HasPrefix(body, "```") || strings.HasPrefix(body, "~~~"):
			n := 0
			for n < len(body) && body[n] == body[0] {
				n++
			}
			fence = body[:n]
		default:
			if level, title, ok := parseHeading(body); ok {
				for len(stack) > 0 && out[stack[len(stack)-1]].level >= level {
					stack = stack[:len(stack)-1]
				}
				parent := -1
				if len(stack) > 0 {
					parent = stack[len(stack)-1]
				}
				stack = append(stack, len(out))
				out = append(out, heading{start: lineStart + indent, level: level, title: capTitle(title), parent: parent})
			}
		}
		lineStart = lineEnd + 1
	}
	return out
}

func parseHeading(line string) (level int, title string, ok bool) {
	for level < len(line) && line[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || (level < len(line) && line[level] != ' ' && line[level] != '\t' && line[level] != '\r') {
		return 0, "", false
	}
	title = strings.TrimSpace(line[level:])
	// A closing sequence of #s is not part of the title: "## Setup ##".
	if t := strings.TrimRight(title, "#"); t != title && (t == "" || isSpace(t[len(t)-1])) {
		title = strings.TrimSpace(t)
	}
	return level, title, true
}

// findSeams lists every place a cut may go, in order of position.
func findSeams(text string, headings []heading) []seam {
	// About one seam per word: sizing for it up front saves the copying of
	// repeated growth on long documents.
	out := make([]seam, 0, len(text)/6+1)
	h := 0 // next heading to look for
	for i := 0; i < len(text); {
		c := text[i]
		if !isSpace(c) {
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(text[i:])
				// Scripts written without spaces end sentences with full-width
				// marks; the next sentence may start right after them.
				if (r == '。' || r == '！' || r == '？') && i+size < len(text) && !isSpace(text[i+size]) {
					out = append(out, seam{end: i + size, next: i + size, strength: seamSentence})
				}
				i += size
				continue
			}
			i++
			continue
		}
		start := i
		newlines := 0
		for i < len(text) && isSpace(text[i]) {
			if text[i] == '\n' {
				newlines++
			}
			i++
		}
		if start == 0 || i == len(text) {
			continue // leading or trailing whitespace is no seam
		}
		for h < len(headings) && headings[h].start < i {
			h++
		}
		var strength int8
		switch {
		case newlines > 0 && h < len(headings) && headings[h].start == i:
			strength = seamHeading
		case newlines > 1:
			strength = seamParagraph
		case newlines == 1:
			strength = seamLine
		case endsSentence(text[:start]):
			strength = seamSentence
		default:
			strength = seamWord
		}
		out = append(out, seam{end: start, next: i, strength: strength})
	}
	return out
}

func endsSentence(before string) bool {
	for len(before) > 0 {
		r, size := utf8.DecodeLastRuneInString(before)
		switch r {
		case '"', '\'', ')', ']', '}', '’', '”', '»', '*', '_':
			before = before[:len(before)-size]
			continue
		case '.', '!', '?', '…', '。', '！', '？':
			return true
		}
		return false
	}
	return false
}

// segments divides the text at headings into sections, merging a section
// shorter than minSection, or made of heading lines only, into the next.
// Each segment is returned trimmed of surrounding whitespace;
// whitespace-only segments are dropped. Every byte is looked at a bounded
// number of times, however many sections are merged.
func segments(text string, headings []heading, minSection int) [][2]int {
	bounds := make([]int, 0, len(headings)+2)
	bounds = append(bounds, 0)
	for _, h := range headings {
		if h.start > 0 {
			bounds = append(bounds, h.start)
		}
	}
	bounds = append(bounds, len(text))
	var (
		out         [][2]int
		first, last = -1, -1 // trimmed extent of the segment so far
		hasContent  bool     // whether it holds more than heading lines
	)
	for i := 1; i < len(bounds); i++ {
		a, b := trimSpan(text, bounds[i-1], bounds[i])
		if a < b {
			if first < 0 {
				first = a
			}
			last = b
			if !isHeadingLine(text[a:b]) {
				hasContent = true
			}
		}
		if bounds[i] < len(text) && (last-first < minSection || !hasContent) {
			continue // too small to stand alone: extend into the next section
		}
		if first >= 0 {
			out = append(out, [2]int{first, last})
		}
		first, last, hasContent = -1, -1, false
	}
	return out
}

// isHeadingLine reports whether s is a single heading line.
func isHeadingLine(s string) bool {
	if strings.IndexByte(s, '\n') >= 0 {
		return false
	}
	_, _, ok := parseHeading(s)
	return ok
}

func trimSpan(text string, a, b int) (int, int) {
	for a < b && isSpace(text[a]) {
		a++
	}
	for b > a && isSpace(text[b-1]) {
		b--
	}
	return a, b
}

// splitSegment cuts the trimmed span [a, b) into chunks, appending to out.
func splitSegment(text string, a, b int, seams []seam, o Options, out []Chunk) []Chunk {
	start, fresh := a, a // the chunk's first byte, and its first byte not in the previous chunk
	for {
		if b-start <= o.MaxBytes {
			return append(out, Chunk{Start: start, End: b})
		}
		cut, ok := bestSeam(seams, start, fresh, b, o)
		if !ok {
			cut = hardCut(text, start, fresh, o.MaxBytes)
		}
		out = append(out, Chunk{Start: start, End: cut.end})
		fresh = cut.next
		start = overlapStart(seams, start, cut, o.OverlapBytes)
	}
}

// bestSeam picks the cut for a chunk starting at start: the strongest seam
// between half the target and the target (the latest of equals); failing
// that, the strongest up to the maximum (the earliest of equals); failing
// that, the strongest before half the target.
func bestSeam(seams []seam, start, fresh, b int, o Options) (seam, bool) {
	lo := seamsFrom(seams, fresh+1)
	hi := seamsFrom(seams, start+o.MaxBytes+1)
	var (
		best     seam
		found    bool
		bestRank = -1
	)
	consider := func(s seam, rank int, later bool) {
		if rank > bestRank || (rank == bestRank && later) {
			best, bestRank, found = s, rank, true
		}
	}
	half, target := start+o.TargetBytes/2, start+o.TargetBytes
	for _, s := range seams[lo:hi] {
		if s.end >= b {
			break
		}
		switch {
		case s.end >= half && s.end <= target:
			consider(s, 20+int(s.strength), true)
		case s.end > target:
			consider(s, 10+int(s.strength), false)
		default:
			consider(s, int(s.strength), true)
		}
	}
	return best, found
}

// seamsFrom returns the index of the first seam ending at or after pos.
func seamsFrom(seams []seam, pos int) int {
	i, _ := slices.BinarySearchFunc(seams, pos, func(s seam, p int) int { return s.end - p })
	return i
}

// hardCut cuts a run with no seam at the last rune start that keeps the
// chunk within the maximum.
func hardCut(text string, start, fresh, maxBytes int) seam {
	end := start + maxBytes
	for end > fresh+1 && !utf8.RuneStart(text[end]) {
		end--
	}
	return seam{end: end, next: end, strength: seamWord}
}

// overlapStart is where the chunk after cut starts: at the earliest
// sentence start, else word start, such that the chunk repeats at most
// overlap bytes (counting the whitespace at the cut, so the repeated text
// always leaves room for new text); at cut.next when there is no such
// start, or when the cut is at a heading (a section's text is not repeated
// into the next section).
func overlapStart(seams []seam, prevStart int, cut seam, overlap int) int {
	if overlap == 0 || cut.strength == seamHeading {
		return cut.next
	}
	lo := max(cut.next-overlap, prevStart+1)
	sentence, word := -1, -1
	for _, s := range seams[seamsFrom(seams, lo):] {
		if s.end >= cut.end {
			break
		}
		switch {
		case s.strength == seamHeading:
			// Never reach back across a heading into the section before.
			sentence, word = s.next, s.next
		case s.strength >= seamSentence && sentence < 0:
			sentence = s.next
		}
		if word < 0 {
			word = s.next
		}
	}
	switch {
	case sentence >= 0:
		return sentence
	case word >= 0:
		return word
	}
	return cut.next
}

// headingFor is the heading path in force at the chunk's first content
// byte: the first byte that is not whitespace and not on a heading line.
func headingFor(text string, c Chunk, headings []heading) string {
	pos := c.Start
	h := headingsFrom(headings, pos)
	for pos < c.End {
		if isSpace(text[pos]) {
			pos++
			continue
		}
		for h < len(headings) && headings[h].start < pos {
			h++
		}
		if h < len(headings) && headings[h].start == pos {
			if nl := strings.IndexByte(text[pos:c.End], '\n'); nl >= 0 {
				pos += nl + 1
				continue
			}
			break // the chunk ends inside this heading line
		}
		break
	}
	pos = min(pos, c.End-1)
	i := headingsFrom(headings, pos+1) // headings starting at or before pos
	if i == 0 {
		return ""
	}
	return headingPath(headings, i-1)
}

// headingsFrom returns the index of the first heading starting at or after pos.
func headingsFrom(headings []heading, pos int) int {
	i, _ := slices.BinarySearchFunc(headings, pos, func(h heading, p int) int { return h.start - p })
	return i
}
