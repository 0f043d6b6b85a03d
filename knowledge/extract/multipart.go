package extract

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadUpload means a multipart upload is malformed: not multipart, no
// "file" part, more than one, too many parts, or an invalid title (HTTP
// 400).
var ErrBadUpload = errors.New("extract: malformed upload")

// Document is one uploaded file, not yet extracted.
type Document struct {
	// Title is the form's "title" field, trimmed; empty when absent.
	Title string
	// Filename is the base name the client gave the file, cleaned of
	// control characters; it is a label, never a path to open.
	Filename string
	// ContentType is PlainText, Markdown, HTML or PDF, with a charset
	// parameter when the client declared one for a text type.
	ContentType string
	Data        []byte
}

const (
	maxTitleBytes    = 1024
	maxFilenameBytes = 255
	maxParts         = 16
	// multipartOverhead is what a form may carry beyond the file itself:
	// boundaries, part headers, the title and small fields.
	multipartOverhead = 64 << 10
)

// FromRequest decodes an upload from a multipart/form-data request body,
// reading at most maxBytes of file and a small allowance for the rest of
// the form. The request body is not closed.
func FromRequest(r *http.Request, maxBytes int64) (Document, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return Document{}, fmt.Errorf("%w: body must be multipart/form-data", ErrUnsupportedType)
	}
	limit := maxBytes + multipartOverhead
	if r.ContentLength > limit {
		return Document{}, fmt.Errorf("%w: upload is %d bytes, limit %d", ErrTooLarge, r.ContentLength, maxBytes)
	}
	body := &limitedReader{r: r.Body, left: limit, limit: maxBytes}
	return FromMultipart(multipart.NewReader(body, params["boundary"]), maxBytes)
}

// FromMultipart decodes the one file part (field "file") of a multipart
// form and its optional "title" field. Other fields are skipped. The
// content type comes from the part's Content-Type header or, when that is
// missing or generic (application/octet-stream), from the file name's
// extension: .txt .text .md .markdown .html .htm .pdf.
func FromMultipart(r *multipart.Reader, maxBytes int64) (Document, error) {
	var (
		doc     Document
		hasFile bool
	)
	for parts := 0; ; parts++ {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Document{}, uploadError(err)
		}
		if parts >= maxParts {
			return Document{}, fmt.Errorf("%w: more than %d form fields", ErrBadUpload, maxParts)
		}
		switch part.FormName() {
		case "file":
			if hasFile {
				return Document{}, fmt.Errorf("%w: more than one file", ErrBadUpload)
			}
			hasFile = true
			contentType := uploadedType(part.Header.Get("Content-Type"), part.FileName())
			if contentType == "" {
				return Document{}, fmt.Errorf("%w: %q (%s)", ErrUnsupportedType,
					cleanFilename(part.FileName()), cleanFilename(part.Header.Get("Content-Type")))
			}
			data, err := io.ReadAll(io.LimitReader(part, maxBytes+1))
			if err != nil {
				return Document{}, uploadError(err)
			}
			if int64(len(data)) > maxBytes {
				return Document{}, fmt.Errorf("%w: file exceeds %d bytes", ErrTooLarge, maxBytes)
			}
			doc.Data, doc.ContentType, doc.Filename = data, contentType, cleanFilename(part.FileName())
		case "title":
			raw, err := io.ReadAll(io.LimitReader(part, maxTitleBytes+1))
			if err != nil {
				return Document{}, uploadError(err)
			}
			if len(raw) > maxTitleBytes || !utf8.Valid(raw) || strings.ContainsFunc(string(raw), unicode.IsControl) {
				return Document{}, fmt.Errorf("%w: title must be at most %d bytes of text on one line", ErrBadUpload, maxTitleBytes)
			}
			doc.Title = strings.TrimSpace(string(raw))
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return Document{}, uploadError(err)
			}
		}
		_ = part.Close()
	}
	if !hasFile {
		return Document{}, fmt.Errorf("%w: no \"file\" part", ErrBadUpload)
	}
	return doc, nil
}

func uploadError(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %s", ErrBadUpload, excerpt(err.Error()))
}

var typeByExtension = map[string]string{
	".txt": PlainText, ".text": PlainText,
	".md": Markdown, ".markdown": Markdown,
	".html": HTML, ".htm": HTML,
	".pdf": PDF,
}

// uploadedType decides a part's content type; "" means unsupported.
func uploadedType(header, filename string) string {
	byExt := typeByExtension[strings.ToLower(path.Ext(filename))]
	if strings.TrimSpace(header) == "" {
		return byExt
	}
	mediaType, params, err := mime.ParseMediaType(header)
	if err != nil {
		return ""
	}
	kind := canonicalType(mediaType)
	switch {
	case kind == "" && (mediaType == "application/octet-stream" || mediaType == "binary/octet-stream"):
		return byExt
	case kind == "":
		return ""
	case kind == PlainText && byExt == Markdown:
		kind = Markdown // browsers label .md files text/plain
	}
	if cs := params["charset"]; cs != "" && kind != PDF {
		if !knownCharset(cs) {
			return ""
		}
		if formatted := mime.FormatMediaType(kind, map[string]string{"charset": cs}); formatted != "" {
			return formatted
		}
	}
	return kind
}

// cleanFilename keeps a file name fit to show: valid UTF-8, no control
// characters, no directories, bounded.
func cleanFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if len(name) > maxFilenameBytes {
		cut := maxFilenameBytes
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	return name
}

// limitedReader fails with ErrTooLarge once more than left bytes are read.
type limitedReader struct {
	r     io.Reader
	left  int64
	limit int64 // the file limit, for the message
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// At the limit: only the end of the body is acceptable now.
		var probe [1]byte
		n, err := l.r.Read(probe[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: upload exceeds %d bytes", ErrTooLarge, l.limit)
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
