package extract

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// dropped are elements whose content is never document text: code, styling,
// embedded or alternative content, form-control values, metadata. Raw-text
// elements among them (script, style, textarea, title, xmp, iframe,
// noembed, noframes, noscript, plaintext) reach the tokenizer as a single
// text token, so nothing inside them is ever seen as markup or text.
var dropped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Iframe: true, atom.Svg: true, atom.Math: true,
	atom.Title: true, atom.Textarea: true, atom.Xmp: true, atom.Plaintext: true,
	atom.Noembed: true, atom.Noframes: true, atom.Object: true, atom.Embed: true,
	atom.Canvas: true, atom.Audio: true, atom.Video: true, atom.Select: true,
	atom.Datalist: true, atom.Frameset: true,
}

// foreign elements honour a self-closing slash (<svg/> has no content); for
// every other element HTML ignores it, so <script/> still opens a script.
var foreign = map[atom.Atom]bool{atom.Svg: true, atom.Math: true}

// blockBreak is how many line breaks an element puts around its content:
// 2 for paragraph-like blocks, 1 for lines.
var blockBreak = map[atom.Atom]int{
	atom.P: 2, atom.Div: 1, atom.Section: 2, atom.Article: 2, atom.Main: 2,
	atom.Header: 2, atom.Footer: 2, atom.Nav: 2, atom.Aside: 2, atom.Blockquote: 2,
	atom.Pre: 2, atom.Ul: 2, atom.Ol: 2, atom.Dl: 2, atom.Table: 2, atom.Figure: 2,
	atom.Figcaption: 1, atom.Address: 2, atom.Details: 2, atom.Summary: 1,
	atom.Form: 2, atom.Fieldset: 2, atom.Legend: 1, atom.Caption: 1, atom.Dt: 1,
	atom.Dd: 1, atom.Tr: 1, atom.Thead: 1, atom.Tbody: 1, atom.Tfoot: 1,
	atom.Hr: 2, atom.Br: 1, atom.Center: 2, atom.Body: 2, atom.Html: 2,
	atom.Option: 1, atom.Hgroup: 2, atom.Menu: 2, atom.Dialog: 2,
}

var headingLevel = map[atom.Atom]int{
	atom.H1: 1, atom.H2: 2, atom.H3: 3, atom.H4: 4, atom.H5: 5, atom.H6: 6,
}

// htmlToText streams the document through the x/net/html tokenizer, so
// memory stays proportional to the output however deeply the input nests.
// Headings become "# …" lines, list items "- …" lines, table cells are
// joined with " | ", entities are decoded, whitespace collapses outside
// <pre>, and images, links' targets and attributes are dropped.
//
// Content of a dropped element is skipped up to its matching end tag; an
// element left open skips to the end of the document, which loses text
// rather than letting hidden content through.
func htmlToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	w := &textWriter{}
	var (
		skip      atom.Atom // the dropped element being skipped, or 0
		skipDepth int
		pre       int // depth of <pre> elements
		heading   int // level of the open heading, or 0
		cells     int // cells written in the current table row
	)
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return w.String() // io.EOF, or the only other error: none, since no max buffer is set
		}
		if skip != 0 {
			if tt == html.StartTagToken || tt == html.EndTagToken {
				name, _ := z.TagName()
				if atom.Lookup(name) == skip {
					if tt == html.StartTagToken {
						skipDepth++
					} else {
						skipDepth--
					}
					if skipDepth == 0 {
						skip = 0
					}
				}
			}
			continue
		}
		switch tt {
		case html.TextToken:
			text := string(z.Text())
			if pre > 0 && heading == 0 {
				w.raw(text)
			} else {
				w.inline(collapse(text))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if dropped[a] && !(tt == html.SelfClosingTagToken && foreign[a]) {
				skip, skipDepth = a, 1
				continue
			}
			if level := headingLevel[a]; level > 0 {
				w.breakLines(2)
				w.raw(strings.Repeat("#", level) + " ")
				heading = level
				continue
			}
			if heading > 0 && blockBreak[a] > 0 && a != atom.Br {
				heading = 0 // a block inside a heading ends it, as far as text goes
				w.breakLines(2)
			}
			switch a {
			case atom.Li:
				w.breakLines(1)
				w.raw("- ")
			case atom.Tr:
				w.breakLines(1)
				cells = 0
			case atom.Td, atom.Th:
				if cells > 0 {
					w.raw(" | ")
				}
				cells++
			case atom.Pre:
				pre++
				w.breakLines(2)
			case atom.Br:
				if heading > 0 {
					w.inline(" ")
				} else {
					w.breakLines(1)
				}
			default:
				if n := blockBreak[a]; n > 0 {
					w.breakLines(n)
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if headingLevel[a] > 0 && heading > 0 {
				heading = 0
				w.breakLines(2)
				continue
			}
			switch {
			case a == atom.Pre:
				pre = max(pre-1, 0)
				w.breakLines(2)
			case a == atom.Li:
				w.breakLines(1)
			case blockBreak[a] > 0:
				w.breakLines(blockBreak[a])
			}
		}
	}
}

// collapse turns each run of HTML whitespace into one space.
func collapse(s string) string {
	if !strings.ContainsAny(s, " \t\n\r\f") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r', '\f':
			space = true
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteByte(c)
		}
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// textWriter accumulates output, tracking pending line breaks so that
// nested blocks do not pile up blank lines.
type textWriter struct {
	b       strings.Builder
	pending int  // line breaks owed before the next text
	last    byte // the last byte written
}

func (w *textWriter) breakLines(n int) {
	if w.b.Len() > 0 {
		w.pending = max(w.pending, n)
	}
}

// inline writes collapsed text; a leading space is dropped at a line start.
func (w *textWriter) inline(s string) {
	if s == "" {
		return
	}
	if w.pending > 0 || w.b.Len() == 0 || w.last == ' ' {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return
		}
	}
	w.write(s)
}

func (w *textWriter) raw(s string) {
	if s == "" {
		return
	}
	w.write(s)
}

func (w *textWriter) write(s string) {
	if w.pending > 0 {
		w.b.WriteString("\n\n"[:w.pending])
		w.pending = 0
	}
	w.b.WriteString(s)
	w.last = s[len(s)-1]
}

func (w *textWriter) String() string { return w.b.String() }
