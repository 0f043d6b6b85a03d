package extract_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/ascii85"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/knowledge/extract"
)

// pdfFile writes a PDF by hand: numbered objects, a classic cross-reference
// table with exact offsets, and a trailer. Object 1 must be the catalog.
func pdfFile(header string, objects []string, trailerExtra string) []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects)+1)
	for i, o := range objects {
		offsets[i+1] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets[1:] {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, trailerExtra, xref)
	return b.Bytes()
}

func streamObject(dict string, data []byte) string {
	return fmt.Sprintf("<< %s /Length %d >>\nstream\n%s\nendstream", dict, len(data), data)
}

func deflate(data []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// textPDF makes a PDF with one page per content stream, all using
// Helvetica as /F1.
func textPDF(contents ...string) []byte {
	n := len(contents)
	objects := []string{"<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
	var kids []string
	for i, c := range contents {
		page, content := 4+2*i, 5+2*i
		kids = append(kids, fmt.Sprintf("%d 0 R", page))
		objects = append(objects,
			fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", content),
			streamObject("", []byte(c)))
	}
	objects[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n)
	return pdfFile("%PDF-1.4", objects, "")
}

// helloPDF is the smallest useful PDF: one page saying "Hello PDF".
var helloPDF = textPDF("BT /F1 24 Tf 72 720 Td (Hello PDF) Tj ET")

func TestPDFHello(t *testing.T) {
	t.Parallel()
	got, err := extract.Text("application/pdf", helloPDF)
	if err != nil {
		t.Fatal(err)
	}
	if got != "Hello PDF" {
		t.Fatalf("text = %q, want %q", got, "Hello PDF")
	}
}

func TestPDFText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pdf  []byte
		want string
	}{
		{"kerning as word spaces", textPDF("BT /F1 12 Tf 72 720 Td [(Retrieval)-333(augmented)-300(gen)-10(eration)] TJ ET"),
			"Retrieval augmented generation"},
		{"lines", textPDF("BT /F1 12 Tf 72 720 Td (First line) Tj 0 -14 Td (Second line) Tj T* (Third) Tj ET"),
			"First line\nSecond line\nThird"},
		{"pages are paragraphs", textPDF("BT /F1 12 Tf (Page one) Tj ET", "BT /F1 12 Tf (Page two) Tj ET"),
			"Page one\n\nPage two"},
		{"escaped string", textPDF(`BT /F1 12 Tf (Parens \(and\) backslash \\ ok) Tj ET`),
			`Parens (and) backslash \ ok`},
		{"PDF 2.0 header", bytes.Replace(helloPDF, []byte("%PDF-1.4"), []byte("%PDF-2.0"), 1), "Hello PDF"},
		{"blank page", textPDF(""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := extract.Text("application/pdf", tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("text = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPDFCompressedContent(t *testing.T) {
	t.Parallel()
	content := deflate([]byte("BT /F1 12 Tf 72 720 Td (Compressed hello) Tj ET"))
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
		streamObject("/Filter /FlateDecode", content),
	}
	got, err := extract.Text("application/pdf", pdfFile("%PDF-1.5", objects, ""))
	if err != nil || got != "Compressed hello" {
		t.Fatalf("text = %q, err = %v", got, err)
	}
}

func TestPDFRefused(t *testing.T) {
	t.Parallel()
	bomb := deflate(bytes.Repeat([]byte(" "), 8<<20))
	bombPDF := pdfFile("%PDF-1.5", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
		streamObject("/Filter /FlateDecode", bomb),
	}, "")
	// The same bomb under an ASCII85 layer, plainly and after bytes the
	// library's ASCII85 reader skips (which the standard decoder refuses).
	ascii85Bomb := func(prefix string) []byte {
		enc := make([]byte, ascii85.MaxEncodedLen(len(bomb)))
		enc = enc[:ascii85.Encode(enc, bomb)]
		return pdfFile("%PDF-1.5", []string{
			"<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
			streamObject("/Filter [/ASCII85Decode /FlateDecode]", append([]byte(prefix), append(enc, "~>"...)...)),
		}, "")
	}
	cyclic := pdfFile("%PDF-1.4", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
		"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
	}, "")
	encrypted := pdfFile("%PDF-1.4", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [] /Count 0 >>",
		"<< /Filter /Standard /V 1 /R 2 /O <" + strings.Repeat("ab", 32) + "> /U <" + strings.Repeat("cd", 32) + "> /P -4 >>",
	}, "/Encrypt 3 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] ")
	manyPages := textPDF(strings.Split(strings.Repeat("BT ET,", 5), ",")[:5]...)
	hugeCMapCount := pdfFile("%PDF-1.4", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /ToUnicode 6 0 R >>",
		streamObject("", []byte("BT /F1 12 Tf <0041> Tj ET")),
		streamObject("", []byte("/CIDInit /ProcSet findresource begin 12 dict begin begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange 100000000000 beginbfchar endbfchar endcmap end end")),
	}, "")

	predictorPDF := pdfFile("%PDF-1.5", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
		streamObject("/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 99999999999 >>", deflate([]byte("\x02BT"))),
	}, "")

	for _, tc := range []struct {
		name   string
		data   []byte
		limits extract.Limits
		want   error
	}{
		{"not a PDF", []byte("hello"), extract.Limits{}, extract.ErrMalformed},
		{"truncated", helloPDF[:len(helloPDF)/2], extract.Limits{}, extract.ErrMalformed},
		{"no trailer", []byte("%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n"), extract.Limits{}, extract.ErrMalformed},
		{"encrypted", encrypted, extract.Limits{}, extract.ErrEncrypted},
		{"decompression bomb", bombPDF, extract.Limits{MaxPDFInflatedBytes: 1 << 20}, extract.ErrTooLarge},
		{"decompression bomb under ASCII85", ascii85Bomb(""), extract.Limits{MaxPDFInflatedBytes: 1 << 20}, extract.ErrTooLarge},
		{"decompression bomb under ASCII85 after skipped bytes", ascii85Bomb(strings.Repeat("{", 40) + "\n\t|vwxy"), extract.Limits{MaxPDFInflatedBytes: 1 << 20}, extract.ErrTooLarge},
		{"page content too large", bombPDF, extract.Limits{MaxPDFPageContentBytes: 1 << 20}, extract.ErrTooLarge},
		{"cyclic page tree", cyclic, extract.Limits{}, extract.ErrMalformed},
		{"too many pages", manyPages, extract.Limits{MaxPDFPages: 4}, extract.ErrTooLarge},
		{"output too large", textPDF("BT /F1 12 Tf (" + strings.Repeat("x", 3000) + ") Tj ET"), extract.Limits{MaxOutputBytes: 1000}, extract.ErrTooLarge},
		{"absurd predictor columns", predictorPDF, extract.Limits{}, extract.ErrMalformed},
		// The library would loop 10^11 times; the font is refused instead
		// and its text dropped, so the page is empty rather than an error.
		{"CMap entry count", hugeCMapCount, extract.Limits{}, nil},
		// The pre-checks refuse these before the library allocates or
		// loops by them. (Object streams inside each other cannot be
		// caught in process: see TestSubprocessPDFSurvivesCrash.)
		{"huge xref stream Size", xrefStreamPDF("/Size 1000000000000", nil), extract.Limits{}, extract.ErrMalformed},
		{"huge xref stream Index", xrefStreamPDF("/Size 3 /Index [1000000000000 2]", nil), extract.Limits{}, extract.ErrMalformed},
		{"huge xref stream W", xrefStreamPDF("/Size 3 /W [1 1000000000000 1]", nil), extract.Limits{}, extract.ErrMalformed},
		{"huge xref table subsection", hugeXrefTable(), extract.Limits{}, extract.ErrMalformed},
		{"object stream claiming 10^12 objects", objectStreamN(), extract.Limits{}, extract.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := tc.limits.Text(context.Background(), "application/pdf", tc.data)
			t.Logf("err = %v", err)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestPDFHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := extract.Limits{}.Text(ctx, "application/pdf", helloPDF)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A parent cycle makes the library's own inheritance lookup loop forever;
// the bounded lookup and the read deadline must end it.
func TestPDFParentCycleEnds(t *testing.T) {
	t.Parallel()
	data := pdfFile("%PDF-1.4", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 3 0 R >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
		streamObject("", []byte("BT /F1 12 Tf (cyclic parents) Tj ET")),
	}, "")
	start := time.Now()
	got, err := extract.Limits{PDFTimeout: 2 * time.Second}.Text(context.Background(), "application/pdf", data)
	if err != nil && !errors.Is(err, extract.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	t.Logf("text %q, err %v", got, err)
}

// cidPDF shows <0041 0042> in an Identity-H font whose ToUnicode CMap is
// cmap.
func cidPDF(cmap string) []byte {
	return pdfFile("%PDF-1.4", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /ToUnicode 6 0 R >>",
		streamObject("", []byte("BT /F1 12 Tf <00410042> Tj ET")),
		streamObject("", []byte(cmap)),
	}, "")
}

func TestPDFCIDFont(t *testing.T) {
	t.Parallel()
	const cmap = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange " +
		"2 beginbfchar <0041> <0048> <0042> <0069> endbfchar endcmap end end"
	got, err := extract.Text("application/pdf", cidPDF(cmap))
	if err != nil || got != "Hi" {
		t.Fatalf("text = %q, err = %v; want \"Hi\"", got, err)
	}
	// The same font with an entry count the library would loop on is not
	// used: its text is dropped, the rest of the document survives.
	bad := strings.Replace(cmap, "2 beginbfchar", "100000000000 beginbfchar", 1)
	got, err = extract.Text("application/pdf", cidPDF(bad))
	if err != nil || got != "" {
		t.Fatalf("text = %q, err = %v; want the font's text dropped", got, err)
	}
}

// The pre-checks look for a few keys anywhere in the file; where those
// keys mean something else, real values must pass.
func TestPDFPreChecksPassRealFiles(t *testing.T) {
	t.Parallel()
	const cmap = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap 1 begincodespacerange <0000> <FFFF> endcodespacerange " +
		"2 beginbfchar <0041> <0048> <0042> <0069> endbfchar endcmap end end"
	data := pdfFile("%PDF-1.5", []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /ToUnicode 6 0 R /DescendantFonts [7 0 R] >>",
		streamObject("", []byte("BT /F1 12 Tf <00410042> Tj ET")),
		streamObject("", []byte(cmap)),
		// Glyph widths in both of /W's forms, and an ICC profile's /N.
		"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /X /DW 1000 /W [65 [500 600] 100 200 750] " +
			"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 8 0 R >>",
		"<< /Type /FontDescriptor /FontName /X /Flags 4 /FontBBox [0 0 1000 1000] /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>",
		streamObject("/N 3", []byte("icc")),
	}, "")
	got, err := extract.Text("application/pdf", data)
	if err != nil || got != "Hi" {
		t.Fatalf("text = %q, err = %v; want \"Hi\"", got, err)
	}
}

// The pre-checks scan the whole file; keywords repeated over and over must
// not make them slow.
func TestPDFPreChecksAreLinear(t *testing.T) {
	t.Parallel()
	for _, filler := range []string{"/XRef ", "xref 0 1 ", "/W [1 2 1] /XRef obj ", "0000000000 65535 f ", "/N 1 /Index [0 1 "} {
		data := append(bytes.Clone(helloPDF[:len(helloPDF)-6]), []byte("\n"+strings.Repeat(filler, (16<<20)/len(filler))+"\n%%EOF\n")...)
		start := time.Now()
		_, err := extract.Text("application/pdf", data)
		t.Logf("%q: %v in %v", filler, err, time.Since(start))
		// A generous bound: it is there to catch quadratic scans (hours on
		// 16 MB), not to time a loaded machine (11 s seen under load 11).
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("%q repeated: took %v", filler, d)
		}
	}
}

func TestPDFTimeout(t *testing.T) {
	t.Parallel()
	_, err := extract.Limits{PDFTimeout: time.Nanosecond}.Text(context.Background(), "application/pdf", helloPDF)
	if !errors.Is(err, extract.ErrTooLarge) || !strings.Contains(err.Error(), "took longer") {
		t.Fatalf("err = %v, want ErrTooLarge for the time limit", err)
	}
}

// xrefStreamPDF ends a PDF with a cross-reference stream (W [1 2 1] unless
// extra has a W) whose dictionary carries extra; entries default to a
// catalog at object 1.
func xrefStreamPDF(extra string, build func(b *bytes.Buffer) [][4]byte) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n")
	off1 := b.Len()
	b.WriteString("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	entries := [][4]byte{{0, 0, 0, 0}, {1, byte(off1 >> 8), byte(off1), 0}}
	if build != nil {
		entries = append(entries[:1], build(&b)...)
	}
	xref := b.Len()
	entries = append(entries, [4]byte{1, byte(xref >> 8), byte(xref), 0})
	var data []byte
	for _, e := range entries {
		data = append(data, e[:]...)
	}
	if extra == "" {
		extra = fmt.Sprintf("/Size %d", len(entries))
	}
	if !strings.Contains(extra, "/W") {
		extra += " /W [1 2 1]"
	}
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /XRef %s /Root 1 0 R /Length %d >>\nstream\n", len(entries)-1, extra, len(data))
	b.Write(data)
	fmt.Fprintf(&b, "\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n", xref)
	return b.Bytes()
}

// objectStreamCycle: object 2 lives in object stream 3 and 3 in 2. The
// library recurses until the stack overflows, which kills the process
// however the call is wrapped; only a child process can survive it.
func objectStreamCycle() []byte {
	return xrefStreamPDF("", func(b *bytes.Buffer) [][4]byte {
		off1 := bytes.Index(b.Bytes(), []byte("1 0 obj"))
		return [][4]byte{{1, byte(off1 >> 8), byte(off1), 0}, {2, 0, 3, 0}, {2, 0, 2, 0}}
	})
}

// objectStreamN: page tree object 2 lives in object stream 3, which claims
// 10^12 objects; the library loops that many times without reading.
func objectStreamN() []byte {
	return xrefStreamPDF("", func(b *bytes.Buffer) [][4]byte {
		off1 := bytes.Index(b.Bytes(), []byte("1 0 obj"))
		off3 := b.Len()
		b.WriteString("3 0 obj\n<< /Type /ObjStm /N 1000000000000 /First 4 /Length 3 >>\nstream\n9 0\nendstream\nendobj\n")
		return [][4]byte{{1, byte(off1 >> 8), byte(off1), 0}, {2, 0, 3, 0}, {1, byte(off3 >> 8), byte(off3), 0}}
	})
}

// hugeXrefTable has a classic cross-reference subsection starting at
// object 10^12, which the library grows its table to.
func hugeXrefTable() []byte {
	data := bytes.Clone(helloPDF)
	i := bytes.LastIndex(data, []byte("xref\n0 "))
	return append(data[:i+5], append([]byte("1000000000000 1\n0000000009 00000 n \n"), data[i+5:]...)...)
}
