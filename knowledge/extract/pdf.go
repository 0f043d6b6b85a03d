package extract

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/ascii85"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ledongthuc/pdf"
)

// readPDF returns the text of a PDF through l.PDF, or the in-process
// engine when that is nil.
func (l Limits) readPDF(ctx context.Context, data []byte) (string, error) {
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		return "", fmt.Errorf("%w: no %%PDF- header", ErrMalformed)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if l.PDF != nil {
		return l.PDF(ctx, data)
	}
	return l.pdfText(ctx, data)
}

// pdfText is the in-process engine: it runs extractPDF in a goroutine and
// stops waiting for it when the context is done or PDFTimeout has passed.
// The goroutine then stops at its next read of the file; a loop inside the
// library that reads nothing goes on until it ends by itself, which the
// pre-checks in extractPDF make unlikely but cannot rule out.
func (l Limits) pdfText(ctx context.Context, data []byte) (string, error) {
	limited, cancel := context.WithTimeout(ctx, l.PDFTimeout)
	defer cancel()
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		text, err := l.extractPDF(limited, ctx, data)
		done <- result{text, err}
	}()
	select {
	case r := <-done:
		return r.text, r.err
	case <-limited.Done():
		if err := ctx.Err(); err != nil {
			return "", err
		}
		return "", timeoutError{l.PDFTimeout}
	}
}

// extractPDF extracts the text of a PDF with github.com/ledongthuc/pdf,
// which parses the file structure, resolves fonts and decodes text. That
// library has no limits or cancellation of its own, so this function
// supplies what it can from outside:
//
//   - before the library sees the file, checkNumbers and checkXrefTables
//     refuse the object counts, table widths and row sizes the library
//     would allocate or loop by (they read the file as written, so a value
//     hidden in a compressed object stream or behind a reference escapes
//     them: that is what SubprocessPDF is for);
//   - it reads the file through a ReaderAt that fails every read once ctx
//     (PDFTimeout) is done, which stops any loop in the library that
//     touches the file (it caches nothing, so most do);
//   - before any content is parsed, every compressed stream in the file is
//     decoded and counted against MaxPDFInflatedBytes, so a decompression
//     bomb is refused before the library can buffer one huge token;
//   - it walks the page tree itself, with a visit budget (cycles) and a
//     page limit, and measures each page's decoded content first;
//   - it interprets the text operators itself (with the library's
//     exported content interpreter and font decoders), putting spaces
//     where kerning or positioning separates words and stopping as soon as
//     the output exceeds MaxOutputBytes;
//   - it recovers panics, the library's way of reporting malformed input.
//
// Encrypted PDFs are refused, even with an empty user password.
func (l Limits) extractPDF(ctx, parent context.Context, data []byte) (text string, err error) {
	src := &guardedReader{data: data, ctx: ctx, parent: parent, timeout: l.PDFTimeout}
	defer func() {
		if r := recover(); r != nil {
			text, err = "", src.explain(r)
		}
	}()
	if err := checkNumbers(data); err != nil {
		return "", err
	}
	if err := checkXrefTables(data); err != nil {
		return "", err
	}

	r, err := pdf.NewReader(src, int64(len(data)))
	if err != nil {
		if stop := src.stopped(); stop != nil {
			return "", stop
		}
		if errors.Is(err, pdf.ErrInvalidPassword) || bytes.Contains(data, []byte("/Encrypt")) {
			return "", ErrEncrypted
		}
		return "", fmt.Errorf("%w: %s", ErrMalformed, excerpt(err.Error()))
	}
	if r.Trailer().Key("Encrypt").Kind() != pdf.Null {
		return "", ErrEncrypted
	}
	if err := scanStreams(data, l.MaxPDFInflatedBytes); err != nil {
		return "", err
	}
	pages, err := pageList(r, l.MaxPDFPages)
	if err != nil {
		return "", err
	}
	w := &pdfWriter{max: l.MaxOutputBytes, src: src}
	failed := 0
	var firstErr error
	for i, page := range pages {
		if err := w.page(pdf.Page{V: page}, l.MaxPDFPageContentBytes); err != nil {
			if errors.Is(err, ErrTooLarge) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return "", fmt.Errorf("page %d: %w", i+1, err)
			}
			// One unreadable page does not lose the rest of the document.
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("page %d: %w", i+1, err)
			}
			continue
		}
		w.paragraph()
	}
	if failed > 0 && failed == len(pages) {
		return "", fmt.Errorf("%w: no page could be read: %w", ErrMalformed, firstErr)
	}
	return w.b.String(), nil
}

// timeoutError is the error of a PDF that took longer than its time limit:
// an ErrTooLarge, like every limit, and a context.DeadlineExceeded, for
// callers that tell time from size.
type timeoutError struct{ limit time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("%v: PDF extraction took longer than %s", ErrTooLarge, e.limit)
}

func (timeoutError) Unwrap() []error { return []error{ErrTooLarge, context.DeadlineExceeded} }

// guardedReader serves the PDF's bytes to the library and stops it when
// time is up: every read after that panics with a stopReading, which the
// library's own recovers turn into an error or which reaches pdfText's.
type guardedReader struct {
	data    []byte
	ctx     context.Context // with the extraction timeout
	parent  context.Context // the caller's
	timeout time.Duration
	err     error
}

// stopReading is the panic value that aborts the library. It claims to be
// a runtime error because the library's content interpreter swallows other
// panics from operand parsing and carries on.
type stopReading struct{ err error }

func (s stopReading) Error() string { return s.err.Error() }
func (stopReading) RuntimeError()   {}

func (g *guardedReader) check() {
	if g.err == nil {
		switch {
		case g.parent.Err() != nil:
			g.err = g.parent.Err()
		case g.ctx.Err() != nil:
			g.err = timeoutError{g.timeout}
		}
	}
	if g.err != nil {
		panic(stopReading{g.err})
	}
}

func (g *guardedReader) ReadAt(p []byte, off int64) (int, error) {
	g.check()
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(g.data)) {
		return 0, io.EOF
	}
	n := copy(p, g.data[off:])
	// The library reads "%PDF-1.x" headers only; PDF 2.0 files have the same
	// structure, so they are shown to it as 1.7.
	if bytes.HasPrefix(g.data, []byte("%PDF-2.")) {
		for i, b := range []byte("%PDF-1.7") {
			if pos := int64(i) - off; pos >= 0 && pos < int64(n) {
				p[pos] = b
			}
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (g *guardedReader) stopped() error { return g.err }

// explain turns a recovered panic into an error.
func (g *guardedReader) explain(r any) error {
	if g.err != nil {
		return g.err
	}
	if e, ok := r.(stopReading); ok {
		return e.err
	}
	return fmt.Errorf("%w: %s", ErrMalformed, excerpt(fmt.Sprint(r)))
}

func excerpt(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// maxObjects bounds object numbers, object counts and cross-reference
// sizes: the PDF specification's own limit on indirect objects. The
// library allocates its cross-reference table by such numbers.
const maxObjects = 1 << 23

// checkNumbers refuses absurd values of the direct integers the library
// allocates or loops by: a cross-reference stream's /Size, /Index and /W,
// an object stream's object count /N, and a predictor's row width
// /Columns. Wherever else /Size, /Index, /N and /Columns appear, their
// integers are far below the limits; fonts' /W arrays hold glyph widths,
// so /W is only checked near "/XRef".
func checkNumbers(data []byte) error {
	for _, c := range []struct {
		key   string
		limit int64
	}{{"/Size", maxObjects}, {"/Index", maxObjects}, {"/N", maxObjects}, {"/Columns", 1 << 20}} {
		if err := checkKey(data, c.key, c.limit); err != nil {
			return err
		}
	}
	for _, r := range xrefRegions(data) {
		if err := checkKey(data[r[0]:r[1]], "/W", 8); err != nil { // bytes per field
			return err
		}
	}
	return nil
}

// checkKey refuses an integer above limit written right after key, a PDF
// name, or in an array right after it.
func checkKey(data []byte, key string, limit int64) error {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(key))
		if j < 0 {
			return nil
		}
		p := i + j + len(key)
		i = p
		if p < len(data) && !isPDFSpace(data[p]) && !isPDFDelimiter(data[p]) {
			continue // a longer name
		}
		for p < len(data) && isPDFSpace(data[p]) {
			p++
		}
		array := p < len(data) && data[p] == '['
		if array {
			p++
		}
		for range 64 {
			for p < len(data) && isPDFSpace(data[p]) {
				p++
			}
			q := p
			for q < len(data) && data[q] >= '0' && data[q] <= '9' {
				q++
			}
			if q == p {
				break
			}
			if n, err := strconv.ParseInt(string(data[p:q]), 10, 64); err != nil || n > limit {
				return fmt.Errorf("%w: %s %s", ErrMalformed, key, excerpt(string(data[p:q])))
			}
			if p = q; !array {
				break
			}
		}
	}
}

// xrefRegions returns where the dictionaries of cross-reference streams
// may be. Such a dictionary is never compressed: it lies between its "obj"
// and its "stream", near its /Type /XRef. Each region runs from the "obj"
// before a "/XRef" to the "stream" after it, at most 4 KiB either way;
// overlapping regions are merged, and no byte is searched twice.
func xrefRegions(data []byte) [][2]int {
	const reach = 4 << 10
	var regions [][2]int
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("/XRef"))
		if j < 0 {
			return regions
		}
		at := i + j
		i = at + len("/XRef")
		last := 0
		if n := len(regions); n > 0 {
			last = regions[n-1][1]
		}
		from := max(at-reach, last)
		if from < at {
			if k := bytes.LastIndex(data[from:at], []byte("obj")); k >= 0 {
				from += k
			}
		}
		ahead := max(at, last)
		to := max(min(at+reach, len(data)), ahead)
		if k := bytes.Index(data[ahead:to], []byte("stream")); k >= 0 {
			to = ahead + k
		}
		if n := len(regions); n > 0 && from <= last {
			regions[n-1][1] = max(last, to)
		} else {
			regions = append(regions, [2]int{from, to})
		}
	}
}

// checkXrefTables refuses classic cross-reference tables with subsections
// beyond maxObjects, which the library would grow its table to. Each
// "xref" keyword starts a scan of subsection headers and entries that ends
// at the first token fitting neither, so no byte is scanned twice for long.
func checkXrefTables(data []byte) error {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("xref"))
		if j < 0 {
			return nil
		}
		at := i + j
		i = at + len("xref")
		if at >= 5 && string(data[at-5:at]) == "start" {
			continue
		}
		toks := tokens{data: data, pos: i}
		for {
			start, ok1 := toks.integer()
			count, ok2 := toks.integer()
			if !ok1 || !ok2 {
				break // "trailer", or something the library will refuse
			}
			if start > maxObjects || count > maxObjects-start {
				return fmt.Errorf("%w: cross-reference subsection %d %d", ErrMalformed, start, count)
			}
			for range count {
				_, ok1 := toks.integer()
				_, ok2 := toks.integer()
				if kind := toks.next(); !ok1 || !ok2 || (kind != "n" && kind != "f") {
					break
				}
			}
		}
		i = max(i, toks.pos)
	}
}

// tokens splits PDF text at white space, enough for cross-reference tables.
type tokens struct {
	data []byte
	pos  int
}

func (t *tokens) next() string {
	for t.pos < len(t.data) && isPDFSpace(t.data[t.pos]) {
		t.pos++
	}
	start := t.pos
	for t.pos < len(t.data) && !isPDFSpace(t.data[t.pos]) && t.pos-start < 32 {
		t.pos++
	}
	return string(t.data[start:t.pos])
}

// integer reads a non-negative integer token; the position moves on even
// when the token is something else.
func (t *tokens) integer() (int64, bool) {
	s := t.next()
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return maxObjects + 1, true // too many digits: certainly too large
	}
	return n, true
}

func isPDFSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isPDFDelimiter(c byte) bool {
	return strings.IndexByte("()<>[]{}/%", c) >= 0
}

// scanStreams decodes every stream in the file, however it is referenced,
// and refuses the file when all of them together decode to more than
// budget bytes. Each layer of decoding counts (a stream compressed twice
// counts its middle form too), so the work here is bounded by the budget
// as well.
func scanStreams(data []byte, budget int64) error {
	var total int64
	for i := 0; i < len(data); {
		j := bytes.Index(data[i:], []byte("stream"))
		if j < 0 {
			break
		}
		k := i + j
		i = k + len("stream")
		if k >= 3 && string(data[k-3:k]) == "end" {
			continue
		}
		p := i
		if p < len(data) && data[p] == '\r' {
			p++
		}
		if p < len(data) && data[p] == '\n' {
			p++
		}
		if p == i {
			continue // not the stream keyword
		}
		total += decodedSize(data[p:], budget-total)
		if total > budget {
			return fmt.Errorf("%w: PDF streams decode to more than %d bytes", ErrTooLarge, budget)
		}
	}
	return nil
}

var errBudget = errors.New("budget exceeded")

type countingReader struct {
	r     io.Reader
	n     *int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if *c.n > c.limit {
		return 0, errBudget
	}
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// decodedSize counts the bytes the stream starting at b decodes to through
// up to four layers of the filters the library applies (FlateDecode and
// ASCII85Decode), recognising each layer by its content rather than
// trusting the stream's dictionary.
func decodedSize(b []byte, budget int64) int64 {
	var (
		n     int64
		r     io.Reader = bytes.NewReader(b)
		layer bool
	)
	for range 4 {
		br := bufio.NewReaderSize(r, 64)
		head, _ := br.Peek(32)
		if isZlibHeader(head) {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return n
			}
			r = &countingReader{r: zr, n: &n, limit: budget}
			layer = true
			continue
		}
		// ASCII85 as the library reads it: bytes outside its alphabet
		// skipped, not refused. Judged on the raw bytes, a prefix of such
		// bytes hid a compressed layer from the budget that the library
		// then inflated whole.
		fr := bufio.NewReaderSize(&ascii85Alphabet{r: br}, 64)
		if head, _ = fr.Peek(32); !isASCII85Zlib(head) {
			break
		}
		r = &countingReader{r: ascii85.NewDecoder(fr), n: &n, limit: budget}
		layer = true
	}
	if layer {
		_, _ = io.Copy(io.Discard, r)
	}
	return n
}

func isZlibHeader(h []byte) bool {
	if len(h) < 2 {
		return false
	}
	cmf, flg := h[0], h[1]
	return cmf&0x0f == 8 && cmf>>4 <= 7 && (uint16(cmf)<<8|uint16(flg))%31 == 0
}

// ascii85Alphabet passes on the bytes of r that ASCII85 encodes with ('!'
// to 'u', and 'z') and ends at '~', the start of its end marker: what the
// PDF library decodes, whatever else the stream holds.
type ascii85Alphabet struct {
	r    io.Reader
	done bool
}

func (a *ascii85Alphabet) Read(p []byte) (int, error) {
	for {
		if a.done {
			return 0, io.EOF
		}
		n, err := a.r.Read(p)
		kept := 0
		for _, c := range p[:n] {
			if c == '~' {
				a.done = true
				break
			}
			if c >= '!' && c <= 'u' || c == 'z' {
				p[kept] = c
				kept++
			}
		}
		if kept > 0 || err != nil {
			return kept, err
		}
	}
}

// isASCII85Zlib reports whether h is ASCII85 text whose decoding starts
// with a zlib header: only then can the layer expand.
func isASCII85Zlib(h []byte) bool {
	dst := make([]byte, 32)
	n, _, err := ascii85.Decode(dst, h, false)
	return err == nil && isZlibHeader(dst[:n])
}

// pageList walks the page tree depth-first, in document order. A tree that
// nests too deeply, or needs more visits than a tree of maxPages pages
// could (a cycle), is malformed; more than maxPages pages is too large.
func pageList(r *pdf.Reader, maxPages int) ([]pdf.Value, error) {
	root := r.Trailer().Key("Root").Key("Pages")
	if root.Kind() != pdf.Dict {
		return nil, fmt.Errorf("%w: no page tree", ErrMalformed)
	}
	type node struct {
		v     pdf.Value
		depth int
	}
	budget := 4*maxPages + 64
	stack := []node{{root, 0}}
	var pages []pdf.Value
	for visits := 0; len(stack) > 0; visits++ {
		if visits > budget {
			return nil, fmt.Errorf("%w: page tree too large or cyclic", ErrMalformed)
		}
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids := n.v.Key("Kids")
		typ := n.v.Key("Type").Name()
		if typ == "Pages" || (typ != "Page" && kids.Kind() == pdf.Array) {
			if n.depth >= 64 {
				return nil, fmt.Errorf("%w: page tree too deep", ErrMalformed)
			}
			count := kids.Len()
			if len(stack)+count > budget {
				return nil, fmt.Errorf("%w: more than %d pages", ErrTooLarge, maxPages)
			}
			for i := count - 1; i >= 0; i-- {
				if kid := kids.Index(i); kid.Kind() == pdf.Dict {
					stack = append(stack, node{kid, n.depth + 1})
				}
			}
			continue
		}
		pages = append(pages, n.v)
		if len(pages) > maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrTooLarge, maxPages)
		}
	}
	return pages, nil
}

// pdfWriter accumulates the text of all pages.
type pdfWriter struct {
	b   strings.Builder
	max int
	src *guardedReader
}

// outputFull aborts interpretation once the text exceeds the limit.
type outputFull struct{}

func (outputFull) Error() string { return "output limit" }
func (outputFull) RuntimeError() {}

func (w *pdfWriter) page(p pdf.Page, maxContent int64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch {
			case w.src.stopped() != nil:
				err = w.src.stopped()
			case r == outputFull{}:
				err = fmt.Errorf("%w: text exceeds %d bytes", ErrTooLarge, w.max)
			default:
				if e, ok := r.(stopReading); ok {
					err = e.err
				} else {
					err = fmt.Errorf("%w: %s", ErrMalformed, excerpt(fmt.Sprint(r)))
				}
			}
		}
	}()
	contents := p.V.Key("Contents")
	if size := contentSize(contents, maxContent); size > maxContent {
		return fmt.Errorf("%w: page content decodes to more than %d bytes", ErrTooLarge, maxContent)
	}
	if contents.Kind() != pdf.Stream && contents.Kind() != pdf.Array {
		return nil // a blank page
	}
	resources := inherited(p.V, "Resources")
	encoders := map[string]pdf.TextEncoding{}
	var (
		enc   pdf.TextEncoding = latin1Encoder{} // text shown before any font
		lastY float64
		haveY bool
		args  []pdf.Value
	)
	pdf.Interpret(contents, func(stk *pdf.Stack, op string) {
		// Operands come off the stack last first: args[0] is the last one.
		args = args[:0]
		for stk.Len() > 0 {
			args = append(args, stk.Pop())
		}
		w.src.check()
		switch op {
		case "Tf":
			if len(args) < 2 {
				return
			}
			name := args[1].Name()
			e, ok := encoders[name]
			if !ok {
				e = fontEncoder(resources.Key("Font").Key(name))
				encoders[name] = e
			}
			enc = e
		case "Tj":
			if len(args) > 0 {
				w.show(enc, args[0].RawString())
			}
		case "'", "\"":
			w.newline()
			if len(args) > 0 {
				w.show(enc, args[0].RawString())
			}
		case "TJ":
			if len(args) == 0 {
				return
			}
			arr := args[0]
			for i := range arr.Len() {
				x := arr.Index(i)
				switch x.Kind() {
				case pdf.String:
					w.show(enc, x.RawString())
				case pdf.Integer, pdf.Real:
					// A shift left of more than a fifth of an em is a
					// word space that the producer did not write as one.
					if x.Float64() < -200 {
						w.space()
					}
				}
			}
		case "Td", "TD":
			if len(args) < 2 {
				return
			}
			if args[0].Float64() != 0 { // ty: a new line
				w.newline()
			} else {
				w.space()
			}
		case "T*":
			w.newline()
		case "Tm":
			if len(args) < 6 {
				return
			}
			y := args[0].Float64()
			if haveY && y != lastY {
				w.newline()
			} else {
				w.space()
			}
			lastY, haveY = y, true
		case "ET":
			w.space()
		}
	})
	return nil
}

// inherited looks key up on a page and its ancestors, like the library's
// own lookup but with a bound, since a Parent cycle would loop forever.
func inherited(v pdf.Value, key string) pdf.Value {
	for range 64 {
		if v.IsNull() {
			break
		}
		if r := v.Key(key); !r.IsNull() {
			return r
		}
		v = v.Key("Parent")
	}
	return pdf.Value{}
}

// Limits on fonts, far above what real fonts use, below what makes the
// library's decoders slow: each decodes a string in time proportional to
// its length times the size of its table, and the CMap parser trusts the
// entry counts it reads.
const (
	maxDifferences = 1024
	maxCMapBytes   = 1 << 20
	decodePiece    = 1024
)

var hugeInteger = regexp.MustCompile(`(?:^|[\s\[\](){}/%])\d{6,}(?:$|[\s\[\](){}/%])`)

// fontEncoder returns the decoder for a font: the library's, once the
// font's tables are checked, or one that drops the text when they are not
// safe to use (the text could not be decoded correctly without them).
func fontEncoder(v pdf.Value) pdf.TextEncoding {
	if v.Kind() != pdf.Dict {
		return latin1Encoder{}
	}
	font := pdf.Font{V: v}
	encoding := v.Key("Encoding")
	switch encoding.Kind() {
	case pdf.Dict:
		if encoding.Key("Differences").Len() > maxDifferences {
			return dropEncoder{}
		}
		return &byteMemo{enc: font.Encoder()}
	case pdf.Name:
		if encoding.Name() != "Identity-H" {
			return font.Encoder() // fixed tables, linear
		}
	}
	if toUnicode := v.Key("ToUnicode"); toUnicode.Kind() == pdf.Stream {
		cmap, _ := io.ReadAll(io.LimitReader(toUnicode.Reader(), maxCMapBytes+1))
		if len(cmap) > maxCMapBytes || hugeInteger.Match(cmap) {
			return dropEncoder{}
		}
	}
	return font.Encoder()
}

// byteMemo caches a single-byte encoding's decoding of each byte.
type byteMemo struct {
	enc   pdf.TextEncoding
	table [256]string
	done  [256]bool
}

func (m *byteMemo) Decode(raw string) string {
	var b strings.Builder
	for i := range len(raw) {
		c := raw[i]
		if !m.done[c] {
			m.table[c], m.done[c] = m.enc.Decode(raw[i:i+1]), true
		}
		b.WriteString(m.table[c])
	}
	return b.String()
}

type latin1Encoder struct{}

func (latin1Encoder) Decode(raw string) string {
	r := make([]rune, len(raw))
	for i := range len(raw) {
		r[i] = rune(raw[i])
	}
	return string(r)
}

type dropEncoder struct{}

func (dropEncoder) Decode(string) string { return "" }

// contentSize decodes a page's content streams, stopping past limit.
func contentSize(contents pdf.Value, limit int64) int64 {
	var streams []pdf.Value
	switch contents.Kind() {
	case pdf.Stream:
		streams = []pdf.Value{contents}
	case pdf.Array:
		for i := range contents.Len() {
			streams = append(streams, contents.Index(i))
		}
	}
	var total int64
	for _, s := range streams {
		n, _ := io.Copy(io.Discard, io.LimitReader(s.Reader(), limit-total+1))
		total += n
		if total > limit {
			break
		}
	}
	return total
}

func (w *pdfWriter) show(enc pdf.TextEncoding, raw string) {
	// Long strings are decoded in pieces, checking the deadline between
	// them. A piece boundary may split a multi-byte code, which only
	// happens in strings far longer than any real text run.
	for len(raw) > 0 {
		n := min(len(raw), decodePiece)
		w.b.WriteString(enc.Decode(raw[:n]))
		raw = raw[n:]
		if w.b.Len() > w.max {
			panic(outputFull{})
		}
		if len(raw) > 0 {
			w.src.check()
		}
	}
}

func (w *pdfWriter) last() byte {
	s := w.b.String()
	if s == "" {
		return '\n'
	}
	return s[len(s)-1]
}

func (w *pdfWriter) space() {
	if c := w.last(); c != ' ' && c != '\n' {
		w.b.WriteByte(' ')
	}
}

func (w *pdfWriter) newline() {
	if w.last() != '\n' {
		w.b.WriteByte('\n')
	}
}

func (w *pdfWriter) paragraph() {
	w.newline()
	if s := w.b.String(); len(s) > 1 && s[len(s)-2] != '\n' {
		w.b.WriteByte('\n')
	}
}
