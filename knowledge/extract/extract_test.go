package extract_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/knowledge/extract"
)

func TestPlainText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contentType string
		data              []byte
		want              string
	}{
		{"as is", "text/plain", []byte("Hello.\n\nWorld."), "Hello.\n\nWorld."},
		{"CRLF and trailing spaces", "text/plain; charset=utf-8", []byte("a  \r\nb\t\r\n\r\n\r\n\r\nc\r"), "a\nb\n\nc"},
		{"byte-order mark", "text/plain", []byte("\xEF\xBB\xBFhello"), "hello"},
		{"UTF-16 with BOM", "text/plain", []byte{0xFF, 0xFE, 'h', 0, 'i', 0}, "hi"},
		{"Latin-1 by charset", "text/plain; charset=ISO-8859-1", []byte("caf\xe9"), "café"},
		{"Windows-1252 by charset", "text/plain; charset=windows-1252", []byte("\x93quoted\x94"), "\u201cquoted\u201d"},
		{"invisible characters dropped", "text/plain", []byte("soft\u00ADhyphen zero\u200Bwidth bell\a"), "softhyphen zerowidth bell"},
		{"odd spaces become spaces", "text/plain", []byte("non\u00A0breaking\u2003em"), "non breaking em"},
		{"leading blank lines and indentation", "text/plain", []byte("\n\n  indented\n    code"), "indented\n    code"},
		{"heading lines kept", "text/plain", []byte("# Title\nbody"), "# Title\nbody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := extract.Text(tc.contentType, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Text = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTextRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contentType string
		data              []byte
		limits            extract.Limits
		want              error
	}{
		{"invalid UTF-8", "text/plain", []byte("ok \xff\xfe\xfd"), extract.Limits{}, extract.ErrNotText},
		{"binary with NUL", "text/markdown", []byte("PK\x03\x04\x00\x00"), extract.Limits{}, extract.ErrNotText},
		{"image type", "image/png", []byte("x"), extract.Limits{}, extract.ErrUnsupportedType},
		{"word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []byte("x"), extract.Limits{}, extract.ErrUnsupportedType},
		{"garbage content type", "text/", []byte("x"), extract.Limits{}, extract.ErrUnsupportedType},
		{"unknown charset", "text/plain; charset=klingon", []byte("x"), extract.Limits{}, extract.ErrUnsupportedType},
		{"input too large", "text/plain", []byte(strings.Repeat("a", 101)), extract.Limits{MaxInputBytes: 100}, extract.ErrTooLarge},
		{"output too large", "text/plain", []byte(strings.Repeat("a", 101)), extract.Limits{MaxOutputBytes: 100}, extract.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.limits.Text(context.Background(), tc.contentType, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestContentTypeAliases(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"TEXT/PLAIN", "text/x-markdown", "application/xhtml+xml", "text/html; charset=UTF-8"} {
		if _, err := extract.Text(ct, []byte("hi")); err != nil {
			t.Errorf("Text(%q): %v", ct, err)
		}
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"headings kept", "# Title\n\nText.\n\n## Sub ##\nMore.", "# Title\n\nText.\n\n## Sub\n\nMore."},
		{"setext headings", "Title\n=====\nText\n\nSub\n---\nMore", "# Title\n\nText\n\n## Sub\n\nMore"},
		{"links become their text", "See [the docs](https://example.com/a_(b)) and [ref][1].\n\n[1]: https://x.test", "See the docs and ref."},
		{"images dropped", "Before ![diagram](img.png \"t\") after", "Before after"},
		{"image inside link", "[![badge](b.svg)](https://ci)", ""},
		{"autolinks", "Mail <ops@example.com> or <https://example.com>", "Mail ops@example.com or https://example.com"},
		{"emphasis stripped", "Some **bold**, _italic_, ~~gone~~ and ***both***.", "Some bold, italic, gone and both."},
		{"intraword and arithmetic kept", "snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"},
		{"inline code verbatim", "Run `make **all**` now", "Run make **all** now"},
		{"escapes", `Not \*emphasis\* nor \[link\](x)`, "Not *emphasis* nor [link](x)"},
		{"code fence kept with fences", "```go\n# not a heading\nfmt.Println(\"[x](y)\")\n```\nafter", "```go\n# not a heading\nfmt.Println(\"[x](y)\")\n```\nafter"},
		{"lists", "- one\n* two\n+ [x] three\n1. first\n2) second", "- one\n- two\n- three\n1. first\n2) second"},
		{"block quotes", "> quoted **text**\n> > nested", "quoted text\nnested"},
		{"tables", "| a | b |\n|---|:-:|\n| **1** | 2 |", "a | b\n1 | 2"},
		{"thematic break", "above\n\n***\n\nbelow", "above\n\nbelow"},
		{"front matter dropped", "---\ntitle: x\ntags: [a]\n---\n# Real", "# Real"},
		{"inline html stripped", "Press <kbd>Ctrl</kbd>+<kbd>C</kbd><br/>", "Press Ctrl+C"},
		{"inline script dropped", "a <script>alert('SECRET')</script> b", "a b"},
		{"html block", "<div>\n<p>Para <b>one</b></p>\n</div>\n\ntext", "Para one\n\ntext"},
		{"script block across blank lines", "<script>\n\nSECRET\n\n</script>\nafter", "after"},
		{"html comment block", "<!--\n\nSECRET\n\n-->\nafter", "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := extract.Text("text/markdown", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Text =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestHTML(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"document", `<!doctype html><html><head><title>T</title><meta charset="utf-8"><style>p{color:red}</style></head>
<body><h1>Main  title</h1><p>First   paragraph
with <a href="/x">a link</a> &amp; entities&nbsp;&eacute;.</p><p>Second.</p></body></html>`,
			"# Main title\n\nFirst paragraph with a link & entities é.\n\nSecond."},
		{"lists and headings", "<h2>Steps</h2><ul><li>One</li><li>Two <b>bold</b></li></ul><h3>Next</h3>", "## Steps\n\n- One\n- Two bold\n\n### Next"},
		{"table", "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>", "k | v\na | 1"},
		{"pre keeps lines", "<pre>line 1\n  line 2</pre>", "line 1\n  line 2"},
		{"br", "a<br>b<br/>c", "a\nb\nc"},
		{"images dropped", `<p>x <img src="a.png" alt="ALT"> y</p>`, "x y"},
		{"script, style and friends dropped", `<p>keep</p><script>var SECRET=1</script><style>.SECRET{}</style><noscript>SECRET</noscript>
<template><p>SECRET</p></template><iframe>SECRET</iframe><svg><text>SECRET</text></svg><math><mi>SECRET</mi></math>
<textarea>SECRET</textarea><select><option>SECRET</option></select><object>SECRET</object><p>end</p>`, "keep\n\nend"},
		{"script variants", `<SCRIPT type="x">SECRET</SCRIPT><script/>SECRET</script><script>"</script>"SECRET</script>ok`, "\"SECRETok"},
		{"script escapes", "<script><!--<script>SECRET</script>SECRET--></script>after", "after"},
		{"nested svg", "<svg><svg></svg>SECRET</svg>after", "after"},
		{"unclosed dropped element drops the rest", "<p>before</p><template><p>SECRET", "before"},
		{"self-closing svg has no content", "<svg/>visible", "visible"},
		{"comments dropped", "a<!-- SECRET -->b", "ab"},
		{"heading with break", "<h1>One<br>Two</h1>", "# One Two"},
		{"no markup", "just text", "just text"},
		{"text in head is text", "<head>Visible</head>", "Visible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := extract.Text("text/html", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Text =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
