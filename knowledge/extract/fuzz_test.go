package extract_test

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/palisadehq/palisade/knowledge/extract"
)

// fuzzLimits keep each run small and quick, so the fuzzer notices
// slowness. PDFs are read in a child process (this test binary, see
// TestMain): the fuzzer finds inputs that crash the PDF library, which in
// process would end the fuzzing with a fatal error instead of a report.
var fuzzLimits = extract.Limits{
	MaxInputBytes: 1 << 20, MaxOutputBytes: 1 << 20,
	PDF: extract.SubprocessPDF(childCommand("extract-pdf"), 5*time.Second, 1<<20),
}

var secretSeeds = []string{
	"<script>SECRET</script>",
	"<p>ok</p><script>SECRET</script><p>ok</p>",
	"<SCRIPT>SECRET</SCRIPT>",
	"<script/>SECRET</script>",
	"<script type=text/template>SECRET</script>",
	"<script><!--<script>SECRET</script>SECRET--></script>",
	"<style>SECRET{}</style>",
	"<noscript>SECRET</noscript>",
	"<template><b>SECRET</b></template>",
	"<svg><script>SECRET</script></svg>",
	"<svg><style></svg>SECRET</style>",
	"<math><mi>SECRET</mi></math>",
	"<iframe srcdoc='x'>SECRET</iframe>",
	"<textarea>SECRET</textarea>",
	"<title>SECRET</title>",
	"<xmp>SECRET</xmp>",
	"<plaintext>SECRET",
	"<table><script>SECRET</script></table>",
	"<select><script>SECRET</script></select>",
	"<![CDATA[<script>SECRET</script>]]>",
	"<!--<script>-->SECRET</script>",
	"<scr<script>ipt>SECRET</script>",
	"<head><script>SECRET</script></head><body>x</body>",
	"<script>SECRET",
	"<style>SECRET",
}

// visibleText is what a browser-grade parse (the x/net/html tree parser,
// independent of the tokenizer walk under test) shows outside the dropped
// elements: the text nodes, concatenated without separators so that text
// split by markup still counts.
func visibleText(src string) string {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return src // no verdict: treat everything as visible
	}
	hidden := map[atom.Atom]bool{
		atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
		atom.Iframe: true, atom.Svg: true, atom.Math: true, atom.Title: true,
		atom.Textarea: true, atom.Xmp: true, atom.Plaintext: true, atom.Noembed: true,
		atom.Noframes: true, atom.Object: true, atom.Embed: true, atom.Canvas: true,
		atom.Audio: true, atom.Video: true, atom.Select: true, atom.Datalist: true,
		atom.Frameset: true,
	}
	var b strings.Builder
	stack := []*html.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch {
		case n.Type == html.TextNode:
			b.WriteString(n.Data)
			continue
		case n.Type == html.ElementNode && hidden[n.DataAtom]:
			continue
		}
		for c := n.LastChild; c != nil; c = c.PrevSibling {
			stack = append(stack, c)
		}
	}
	return b.String()
}

// checkTextVerdict asserts that a text document was refused exactly when
// it is not UTF-8 text, and reports whether there is output to check.
// Input with a UTF-16 byte-order mark is decoded as UTF-16 first.
func checkTextVerdict(t *testing.T, src string, err error) bool {
	t.Helper()
	if strings.HasPrefix(src, "\xff\xfe") || strings.HasPrefix(src, "\xfe\xff") {
		return err == nil
	}
	if !utf8.ValidString(src) || strings.IndexByte(src, 0) >= 0 {
		if !errors.Is(err, extract.ErrNotText) {
			t.Fatalf("invalid input accepted: err = %v", err)
		}
		return false
	}
	if err != nil {
		t.Fatalf("valid text refused: %v", err)
	}
	return true
}

// withoutInvisible deletes what the output normalisation deletes, so that
// text split only by an invisible character counts as visible text.
func withoutInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		if (unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' && r != '\f' && r != '\v') ||
			r == '\u00AD' || r == '\u200B' || r == '\uFEFF' || r == '\u2060' {
			return -1
		}
		return r
	}, s)
}

func FuzzHTML(f *testing.F) {
	for _, s := range secretSeeds {
		f.Add(s)
	}
	f.Add("<h1>T</h1><ul><li>a<li>b</ul><table><tr><td>1<td>2</table><pre>x\n y</pre>")
	f.Add(strings.Repeat("<div>", 1000) + "deep" + strings.Repeat("</div>", 1000))
	f.Fuzz(func(t *testing.T, src string) {
		out, err := fuzzLimits.Text(context.Background(), "text/html", []byte(src))
		if !checkTextVerdict(t, src, err) {
			return
		}
		if !utf8.ValidString(out) {
			t.Fatalf("output is not UTF-8: %q", out)
		}
		if strings.Contains(out, "SECRET") && !strings.Contains(withoutInvisible(visibleText(src)), "SECRET") {
			t.Fatalf("hidden content leaked: %q -> %q", src, out)
		}
	})
}

func FuzzMarkdown(f *testing.F) {
	for _, s := range []string{
		"# T\n\npara **b** _i_ [l](u) ![i](s)\n\n- a\n1. b\n> q\n\n| a | b |\n|---|---|\n",
		"```\ncode [x](y)\n```\n~~~\nunclosed",
		"---\ntitle: x\n---\ntext",
		"<div>\n<script>\nSECRET\n</script>\n",
		"[[[[[[[[[[" + strings.Repeat("(", 500) + strings.Repeat("`", 300),
		"\\*a\\* \U000F002A",
		strings.Repeat("*_~", 1000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out, err := fuzzLimits.Text(context.Background(), "text/markdown", []byte(src))
		if !checkTextVerdict(t, src, err) {
			return
		}
		if !utf8.ValidString(out) {
			t.Fatalf("output is not UTF-8: %q", out)
		}
		if len(out) > 2*len(src)+16 {
			t.Fatalf("output of %d bytes from %d", len(out), len(src))
		}
	})
}

// FuzzPDF reads each input in a child process first, then, if the child
// survived, in process. Minimising an input runs the child again each step,
// so fuzz with a short -fuzzminimizetime (say 20x), or every new input
// pauses the fuzzer for a minute.
func FuzzPDF(f *testing.F) {
	f.Add(helloPDF)
	f.Add(textPDF("BT /F1 12 Tf [(a)-300(b)] TJ 0 -14 Td (c) ' ET", "q 1 0 0 1 0 0 cm BT /F1 9 Tf 1 0 0 1 5 5 Tm (d) Tj ET Q"))
	f.Add(cidPDF("begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange 1 beginbfrange <0041> <0042> <0048> endbfrange endcmap"))
	f.Add(pdfFile("%PDF-1.5", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
		streamObject("/Filter /FlateDecode", deflate([]byte("BT (z) Tj ET"))),
	}, ""))
	f.Add([]byte("%PDF-1.7\n%%EOF\n"))
	f.Add(objectStreamCycle())
	f.Add(objectStreamN())
	f.Add(hugeXrefTable())
	f.Add(xrefStreamPDF("", nil))
	// The child's verdict decides whether the input may be read in process
	// too: the fuzzer sees coverage only there, and both must agree.
	inProcess := extract.Limits{MaxInputBytes: fuzzLimits.MaxInputBytes, MaxOutputBytes: fuzzLimits.MaxOutputBytes, PDFTimeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		out, err := fuzzLimits.Text(context.Background(), "application/pdf", data)
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("took %v with a 5s limit", d)
		}
		kind := pdfVerdict(t, out, err)
		if err != nil && (strings.Contains(err.Error(), "crashed") || strings.Contains(err.Error(), "took longer")) {
			// In process, this input would end the fuzzer or leave the
			// library spinning in the background.
			t.Logf("the child did not survive: %v", err)
			return
		}
		inOut, inErr := inProcess.Text(context.Background(), "application/pdf", data)
		inKind := pdfVerdict(t, inOut, inErr)
		if inErr != nil && strings.Contains(inErr.Error(), "took longer") {
			return
		}
		if inKind != kind || inOut != out {
			t.Fatalf("child and in-process engine disagree:\n child: %q, %v\n in process: %q, %v", out, err, inOut, inErr)
		}
	})
}

// pdfVerdict checks that a PDF's extraction gave valid text or a typed
// error, and returns that error's sentinel.
func pdfVerdict(t *testing.T, out string, err error) error {
	t.Helper()
	if err != nil {
		for _, want := range []error{extract.ErrMalformed, extract.ErrEncrypted, extract.ErrTooLarge} {
			if errors.Is(err, want) {
				return want
			}
		}
		t.Fatalf("untyped error: %v", err)
	}
	if !utf8.ValidString(out) {
		t.Fatalf("output is not UTF-8: %q", out)
	}
	return nil
}

func FuzzMultipart(f *testing.F) {
	const boundary = "fuzzboundary"
	seed := func(parts ...formPart) []byte {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.SetBoundary(boundary)
		for _, p := range parts {
			h := make(map[string][]string)
			d := `form-data; name="` + p.field + `"`
			if p.filename != "" {
				d += `; filename="` + p.filename + `"`
			}
			h["Content-Disposition"] = []string{d}
			if p.contentType != "" {
				h["Content-Type"] = []string{p.contentType}
			}
			pw, _ := w.CreatePart(h)
			pw.Write(p.data)
		}
		w.Close()
		return b.Bytes()
	}
	f.Add(seed(formPart{field: "title", data: []byte("T")}, formPart{field: "file", filename: "a.md", data: []byte("# x")}))
	f.Add(seed(formPart{field: "file", filename: "a.pdf", contentType: "application/pdf", data: helloPDF}))
	f.Add(seed(formPart{field: "file", filename: "a.bin", data: []byte{0, 1, 2}}))
	f.Add([]byte("--fuzzboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--fuzzboundary--\r\n"))
	const maxBytes = 4096
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/documents", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		doc, err := extract.FromRequest(req, maxBytes)
		if err != nil {
			for _, want := range []error{extract.ErrBadUpload, extract.ErrTooLarge, extract.ErrUnsupportedType} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("untyped error: %v", err)
		}
		if len(doc.Data) > maxBytes {
			t.Fatalf("%d bytes accepted, limit %d", len(doc.Data), maxBytes)
		}
		if !utf8.ValidString(doc.Title) || len(doc.Title) > 1024 || !utf8.ValidString(doc.Filename) ||
			strings.ContainsAny(doc.Filename, "/\\\x00\n") {
			t.Fatalf("unclean labels: %q %q", doc.Title, doc.Filename)
		}
		if _, err := fuzzLimits.Text(context.Background(), doc.ContentType, doc.Data); errors.Is(err, extract.ErrUnsupportedType) {
			t.Fatalf("accepted content type %q is not extractable: %v", doc.ContentType, err)
		}
	})
}
