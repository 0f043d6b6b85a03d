package extract_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/knowledge/extract"
)

func benchmarkText(b *testing.B, contentType string, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := extract.Text(contentType, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarkdown(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, "## Section %d\n\nSome **bold** text with a [link](https://example.com/%d) and `code`.\n\n- item one\n- item two\n\n```\ncode block\n```\n\n", i, i)
	}
	benchmarkText(b, "text/markdown", []byte(sb.String()))
}

func BenchmarkHTML(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("<html><head><title>t</title><script>var x = 1;</script></head><body>")
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, "<h2>Section %d</h2><p>Some <b>bold</b> text with a <a href=\"/x/%d\">link</a> &amp; entities.</p><ul><li>one</li><li>two</li></ul><script>track(%d)</script>", i, i, i)
	}
	sb.WriteString("</body></html>")
	benchmarkText(b, "text/html", []byte(sb.String()))
}

func BenchmarkPDF(b *testing.B) {
	benchmarkText(b, "application/pdf", benchmarkPDF())
}

// benchmarkPDF has 50 pages of 45 lines.
func benchmarkPDF() []byte {
	pages := make([]string, 50)
	for i := range pages {
		var c strings.Builder
		c.WriteString("BT /F1 11 Tf 72 720 Td ")
		for line := range 45 {
			fmt.Fprintf(&c, "[(Line %d of page %d: retrieval)-300(augmented)-300(generation over tenant documents.)] TJ 0 -14 Td ", line, i)
		}
		c.WriteString("ET")
		pages[i] = c.String()
	}
	return textPDF(pages...)
}

// BenchmarkPDFSubprocess is BenchmarkPDF through a child process (this test
// binary, see TestMain): the price of surviving crashing PDFs.
func BenchmarkPDFSubprocess(b *testing.B) {
	pdf := benchmarkPDF()
	limits := extract.Limits{PDF: extract.SubprocessPDF(childCommand("extract-pdf"), 0, 0)}
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := limits.Text(context.Background(), "application/pdf", pdf); err != nil {
			b.Fatal(err)
		}
	}
}
