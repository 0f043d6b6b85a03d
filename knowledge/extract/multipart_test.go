package extract_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/knowledge/extract"
)

type formPart struct {
	field, filename, contentType string
	data                         []byte
}

func form(t testing.TB, parts ...formPart) (body []byte, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		disposition := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			disposition += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", disposition)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

func upload(t testing.TB, maxBytes int64, parts ...formPart) (extract.Document, error) {
	t.Helper()
	body, ct := form(t, parts...)
	req := httptest.NewRequest(http.MethodPost, "/documents", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	return extract.FromRequest(req, maxBytes)
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		parts []formPart
		want  extract.Document
	}{
		{"markdown by header", []formPart{{field: "title", data: []byte("  Runbook ")}, {field: "file", filename: "run.md", contentType: "text/markdown", data: []byte("# Hi")}},
			extract.Document{Title: "Runbook", Filename: "run.md", ContentType: "text/markdown", Data: []byte("# Hi")}},
		{"markdown labelled text/plain", []formPart{{field: "file", filename: "notes.MARKDOWN", contentType: "text/plain", data: []byte("x")}},
			extract.Document{Filename: "notes.MARKDOWN", ContentType: "text/markdown", Data: []byte("x")}},
		{"octet-stream falls back to the extension", []formPart{{field: "file", filename: "spec.pdf", contentType: "application/octet-stream", data: helloPDF}},
			extract.Document{Filename: "spec.pdf", ContentType: "application/pdf", Data: helloPDF}},
		{"no header, html by extension", []formPart{{field: "file", filename: "page.htm", data: []byte("<p>x</p>")}},
			extract.Document{Filename: "page.htm", ContentType: "text/html", Data: []byte("<p>x</p>")}},
		{"charset kept", []formPart{{field: "file", filename: "a.txt", contentType: "text/plain; charset=ISO-8859-1", data: []byte("caf\xe9")}},
			extract.Document{Filename: "a.txt", ContentType: "text/plain; charset=ISO-8859-1", Data: []byte("caf\xe9")}},
		{"other fields skipped", []formPart{{field: "kb", data: []byte("kb-1")}, {field: "file", filename: "a.txt", data: []byte("x")}},
			extract.Document{Filename: "a.txt", ContentType: "text/plain", Data: []byte("x")}},
		{"path in file name reduced to its base", []formPart{{field: "file", filename: `../../etc/pass\x01wd.txt`, data: []byte("x")}},
			extract.Document{Filename: "passx01wd.txt", ContentType: "text/plain", Data: []byte("x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := upload(t, 1<<20, tc.parts...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Title != tc.want.Title || got.Filename != tc.want.Filename || got.ContentType != tc.want.ContentType || !bytes.Equal(got.Data, tc.want.Data) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			// What was uploaded extracts.
			if _, err := extract.Text(got.ContentType, got.Data); err != nil {
				t.Fatalf("Text(%s): %v", got.ContentType, err)
			}
		})
	}
}

func TestFromRequestRefuses(t *testing.T) {
	t.Parallel()
	file := formPart{field: "file", filename: "a.txt", data: []byte("hello")}
	for _, tc := range []struct {
		name     string
		maxBytes int64
		parts    []formPart
		want     error
	}{
		{"file too large", 4, []formPart{file}, extract.ErrTooLarge},
		{"exactly the limit is fine", 5, []formPart{file}, nil},
		{"unknown extension", 1 << 20, []formPart{{field: "file", filename: "a.docx", data: []byte("x")}}, extract.ErrUnsupportedType},
		{"explicit unsupported type", 1 << 20, []formPart{{field: "file", filename: "a.pdf", contentType: "image/png", data: []byte("x")}}, extract.ErrUnsupportedType},
		{"no file", 1 << 20, []formPart{{field: "title", data: []byte("t")}}, extract.ErrBadUpload},
		{"two files", 1 << 20, []formPart{file, file}, extract.ErrBadUpload},
		{"title too long", 1 << 20, []formPart{{field: "title", data: bytes.Repeat([]byte("t"), 2000)}, file}, extract.ErrBadUpload},
		{"title with a newline", 1 << 20, []formPart{{field: "title", data: []byte("a\nb")}, file}, extract.ErrBadUpload},
		{"title not UTF-8", 1 << 20, []formPart{{field: "title", data: []byte("\xff")}, file}, extract.ErrBadUpload},
		{"too many fields", 1 << 20, append(make20(), file), extract.ErrBadUpload},
		{"huge other field", 1 << 10, []formPart{{field: "junk", data: bytes.Repeat([]byte("j"), 200<<10)}, file}, extract.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := upload(t, tc.maxBytes, tc.parts...)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func make20() []formPart {
	parts := make([]formPart, 20)
	for i := range parts {
		parts[i] = formPart{field: fmt.Sprint("f", i), data: []byte("x")}
	}
	return parts
}

func TestFromRequestNotMultipart(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "/documents", strings.NewReader(`{"text":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	if _, err := extract.FromRequest(req, 1<<20); !errors.Is(err, extract.ErrUnsupportedType) {
		t.Fatalf("err = %v, want ErrUnsupportedType", err)
	}
	body, ct := form(t, formPart{field: "file", filename: "a.txt", data: []byte("x")})
	req = httptest.NewRequest(http.MethodPost, "/documents", bytes.NewReader(body[:len(body)/2]))
	req.Header.Set("Content-Type", ct)
	if _, err := extract.FromRequest(req, 1<<20); !errors.Is(err, extract.ErrBadUpload) {
		t.Fatalf("truncated body: err = %v, want ErrBadUpload", err)
	}
}

// A declared Content-Length over the limit is refused before any read.
func TestFromRequestChecksContentLength(t *testing.T) {
	t.Parallel()
	body, ct := form(t, formPart{field: "file", filename: "a.txt", data: bytes.Repeat([]byte("x"), 300<<10)})
	req := httptest.NewRequest(http.MethodPost, "/documents", &failingReader{})
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", ct)
	if _, err := extract.FromRequest(req, 1<<10); !errors.Is(err, extract.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
