// Package extract owns turning an uploaded document (plain text, markdown,
// HTML or PDF) into the plain text that knowledge bases chunk and embed,
// and decoding an upload from a multipart form.
//
// Its output is plain UTF-8 text with markdown-style structure only:
// headings as lines starting with '#', paragraphs separated by blank
// lines, list items as "- " lines. Every input is treated as hostile: work
// and memory are bounded by [Limits], invalid or binary input is refused
// with a typed error, and HTML script, style and similar content never
// reaches the output. The package never fetches, renders or stores
// anything and runs no JavaScript. Its one subprocess is the PDF reader
// that [SubprocessPDF] starts when a caller asks for it, fed through a
// pipe: a crafted PDF can crash the process that parses it, and that
// process had better not be the server.
package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
	xunicode "golang.org/x/text/encoding/unicode"
)

// Canonical content types, the ones Text accepts (with their aliases).
const (
	PlainText = "text/plain"
	Markdown  = "text/markdown"
	HTML      = "text/html"
	PDF       = "application/pdf"
)

var (
	// ErrTooLarge means the input, its decoded form or its text exceeds a
	// limit (HTTP 413).
	ErrTooLarge = errors.New("extract: document too large")
	// ErrUnsupportedType means the content type (or charset) is not one
	// this package reads (HTTP 415).
	ErrUnsupportedType = errors.New("extract: unsupported document type")
	// ErrNotText means a text document is not valid text in its charset:
	// invalid UTF-8, or binary data (HTTP 422).
	ErrNotText = errors.New("extract: document is not valid text")
	// ErrEncrypted means a PDF is encrypted or password-protected (HTTP 422).
	ErrEncrypted = errors.New("extract: PDF is encrypted or password-protected")
	// ErrMalformed means a PDF could not be read (HTTP 422).
	ErrMalformed = errors.New("extract: malformed PDF")
)

// Limits bound the work done on one document. Zero values mean the
// defaults.
type Limits struct {
	// MaxInputBytes is the largest document accepted. Default 32 MiB.
	MaxInputBytes int64
	// MaxOutputBytes is the largest text returned. Default 8 MiB.
	MaxOutputBytes int
	// MaxPDFPages is the most pages a PDF may have. Default 2000.
	MaxPDFPages int
	// MaxPDFInflatedBytes bounds the bytes all of a PDF's compressed
	// streams decode to, images included. Default 256 MiB.
	MaxPDFInflatedBytes int64
	// MaxPDFPageContentBytes bounds one page's decoded content streams.
	// Default 16 MiB.
	MaxPDFPageContentBytes int64
	// PDFTimeout bounds the time spent on one PDF. Default 20s. A PDF
	// that takes longer fails with an error that is both ErrTooLarge and
	// context.DeadlineExceeded.
	PDFTimeout time.Duration
	// PDF reads PDFs. Nil means the in-process engine, which applies the
	// PDF limits above; that engine guards against what it can, but some
	// crafted PDFs still crash the process running it (see [PDFExtractor]),
	// so a server should set [SubprocessPDF] here. MaxInputBytes and
	// MaxOutputBytes apply whichever reads the PDF. When the in-process
	// engine's time is up, Text returns at once but the engine may read
	// the data a little longer: do not modify it after a call.
	PDF PDFExtractor
}

// PDFExtractor returns the text of a PDF, which Text has checked starts
// with a PDF header and fits MaxInputBytes. It returns errors wrapping
// ErrMalformed, ErrEncrypted or ErrTooLarge, or the context's error.
//
// The in-process engine is github.com/ledongthuc/pdf, with the limits this
// package adds around it. Some inputs defeat any wrapper: a PDF whose
// object streams contain each other makes the library recurse until the
// Go runtime aborts the whole process on stack overflow, and cross
// reference data can ask for allocations the runtime cannot satisfy, which
// is also fatal. recover catches neither. [SubprocessPDF] runs the engine
// in a child process instead, where such a crash costs one upload.
type PDFExtractor func(ctx context.Context, data []byte) (string, error)

func (l Limits) withDefaults() Limits {
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = 32 << 20
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 8 << 20
	}
	if l.MaxPDFPages <= 0 {
		l.MaxPDFPages = 2000
	}
	if l.MaxPDFInflatedBytes <= 0 {
		l.MaxPDFInflatedBytes = 256 << 20
	}
	if l.MaxPDFPageContentBytes <= 0 {
		l.MaxPDFPageContentBytes = 16 << 20
	}
	if l.PDFTimeout <= 0 {
		l.PDFTimeout = 20 * time.Second
	}
	return l
}

// Text extracts the text of a document with the default [Limits].
func Text(contentType string, data []byte) (string, error) {
	return Limits{}.Text(context.Background(), contentType, data)
}

// Text extracts the text of data, whose type is given by contentType (a
// media type with optional parameters; a charset parameter is honoured for
// text types). The context bounds PDF extraction, which is the only
// extraction that may take long.
func (l Limits) Text(ctx context.Context, contentType string, data []byte) (string, error) {
	l = l.withDefaults()
	if int64(len(data)) > l.MaxInputBytes {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), l.MaxInputBytes)
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("%w: content type %q", ErrUnsupportedType, contentType)
	}
	kind := canonicalType(mediaType)
	if kind == "" {
		return "", fmt.Errorf("%w: %s", ErrUnsupportedType, mediaType)
	}
	var text string
	if kind == PDF {
		text, err = l.readPDF(ctx, data)
	} else {
		var src string
		src, err = decodeText(data, params["charset"], l.MaxInputBytes)
		if err != nil {
			return "", err
		}
		switch kind {
		case PlainText:
			text = src
		case Markdown:
			text = markdownToText(src)
		case HTML:
			text = htmlToText(src)
		}
	}
	if err != nil {
		return "", err
	}
	text = normalize(text)
	if len(text) > l.MaxOutputBytes {
		return "", fmt.Errorf("%w: text is %d bytes, limit %d", ErrTooLarge, len(text), l.MaxOutputBytes)
	}
	return text, nil
}

// Kind returns the kind of document contentType names (PlainText,
// Markdown, HTML or PDF, whichever alias or case it is spelled in), or ""
// for a type it cannot read.
func Kind(contentType string) string {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return canonicalType(mediaType)
}

// canonicalType maps a media type and its common aliases to one of the
// constants above, or "" for a type this package does not read.
func canonicalType(mediaType string) string {
	switch strings.ToLower(mediaType) {
	case "text/plain":
		return PlainText
	case "text/markdown", "text/x-markdown", "text/x-gfm":
		return Markdown
	case "text/html", "application/xhtml+xml":
		return HTML
	case "application/pdf", "application/x-pdf":
		return PDF
	}
	return ""
}

// decodeText returns data as a UTF-8 string: decoded from its declared
// charset or its byte-order mark, and refused if it is not valid UTF-8 or
// holds NUL bytes, which text never does and binary files nearly always do.
func decodeText(data []byte, charset string, maxBytes int64) (string, error) {
	charset = strings.ToLower(strings.TrimSpace(charset))
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		data = data[3:]
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		dec := xunicode.UTF16(xunicode.BigEndian, xunicode.ExpectBOM).NewDecoder()
		out, err := dec.Bytes(data)
		if err != nil {
			return "", fmt.Errorf("%w: invalid UTF-16", ErrNotText)
		}
		data = out
	case charset == "" || charset == "utf-8" || charset == "utf8" || charset == "us-ascii" || charset == "ascii":
	case !knownCharset(charset):
		return "", fmt.Errorf("%w: charset %q", ErrUnsupportedType, charset)
	default:
		enc, _ := htmlindex.Get(charset)
		out, err := enc.NewDecoder().Bytes(data)
		if err != nil {
			return "", fmt.Errorf("%w: not valid %s", ErrNotText, charset)
		}
		data = out
	}
	if int64(len(data)) > 2*maxBytes {
		return "", fmt.Errorf("%w: decoded text too large", ErrTooLarge)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%w: invalid UTF-8", ErrNotText)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return "", fmt.Errorf("%w: contains NUL bytes (binary data?)", ErrNotText)
	}
	return string(data), nil
}

// knownCharset reports whether decodeText can decode charset.
func knownCharset(charset string) bool {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	_, err := htmlindex.Get(charset)
	return err == nil
}

// normalize makes the output predictable for chunking: "\n" line ends,
// no control or invisible formatting characters, other spaces as ' ', no
// trailing spaces, at most one blank line in a row, no surrounding blank
// space. Invalid UTF-8 (possible from PDF text) becomes U+FFFD.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	blank := 0      // newlines written since the last text
	lineSpaces := 0 // spaces held back until more text follows on the line
	started := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				continue
			}
			r = '\n'
		case r == '\u2028' || r == '\u2029' || r == '\f' || r == '\v':
			r = '\n'
		case r == '\t' || r == '\n':
		case r == utf8.RuneError && size == 1:
		case unicode.IsSpace(r):
			r = ' '
		case unicode.IsControl(r) || r == '\u00AD' || r == '\u200B' || r == '\uFEFF' || r == '\u2060':
			continue // invisible: drop
		}
		switch r {
		case '\n':
			lineSpaces = 0
			if started {
				blank++
			}
		case ' ', '\t':
			if started && blank == 0 {
				lineSpaces++
			}
			if blank > 0 {
				// Indentation at the start of a line is kept, for code.
				lineSpaces++
			}
		default:
			if blank > 0 {
				b.WriteString("\n\n"[:min(blank, 2)])
				blank = 0
			}
			if lineSpaces > 0 {
				b.WriteString(strings.Repeat(" ", lineSpaces))
				lineSpaces = 0
			}
			if r == utf8.RuneError && size == 1 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.WriteRune(r)
			}
			started = true
		}
	}
	return b.String()
}
