package app

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/palisadehq/palisade/commands"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/knowledge/extract"
	"github.com/palisadehq/palisade/quota"
)

// pdfChildTimeout bounds one PDF child process. The child gives up by
// itself after extract's PDFTimeout (20s); this is for a child that cannot.
const pdfChildTimeout = 30 * time.Second

// documentExtractor turns uploads into text for the HTTP layer, through
// knowledge/extract, and maps its errors to the HTTP layer's.
type documentExtractor struct {
	limits extract.Limits
}

// workSlots bounds concurrent work per organization and in all.
type workSlots interface {
	Acquire(ctx context.Context, org, kind string) (release func(), err error)
}

// newDocumentExtractor reads PDFs in a child process running pdfCommand
// (Config.PDFCommand), or in process when pdfCommand is empty; either way
// each parse first takes a PDF slot of the uploading organization and of
// the deployment from slots, so that one tenant's PDFs cannot take every
// core (a refusal is a 429).
func newDocumentExtractor(pdfCommand []string, slots workSlots) documentExtractor {
	var d documentExtractor
	parse := extract.InProcessPDF(d.limits)
	if len(pdfCommand) > 0 {
		parse = extract.SubprocessPDF(pdfCommand, pdfChildTimeout, 0)
	}
	d.limits.PDF = func(ctx context.Context, data []byte) (string, error) {
		release, err := slots.Acquire(ctx, httpapi.PrincipalFrom(ctx).OrgID, quota.WorkPDFParses)
		if err != nil {
			return "", err
		}
		defer release()
		return parse(ctx, data)
	}
	return d
}

// Text extracts a JSON body's content, refusing a PDF under any of its
// media types (httpapi.ErrPDFAsJSON).
func (d documentExtractor) Text(ctx context.Context, contentType string, data []byte) (string, error) {
	if extract.Kind(contentType) == extract.PDF {
		return "", httpapi.ErrPDFAsJSON
	}
	return d.text(ctx, contentType, data)
}

func (d documentExtractor) text(ctx context.Context, contentType string, data []byte) (string, error) {
	text, err := d.limits.Text(ctx, contentType, data)
	if err != nil {
		return "", extractionError(err)
	}
	return cleanText(text), nil
}

func (d documentExtractor) Upload(r *http.Request, maxBytes int64) (commands.DocumentInput, error) {
	doc, err := extract.FromRequest(r, maxBytes)
	if err != nil {
		return commands.DocumentInput{}, extractionError(err)
	}
	// The request's context: a client that hangs up stops the extraction
	// (and its child process).
	text, err := d.text(r.Context(), doc.ContentType, doc.Data)
	if err != nil {
		return commands.DocumentInput{}, err
	}
	title := doc.Title
	if title == "" {
		title = strings.TrimSuffix(doc.Filename, path.Ext(doc.Filename))
	}
	if title == "" {
		title = "Untitled"
	}
	mediaType, _, _ := mime.ParseMediaType(doc.ContentType)
	return commands.DocumentInput{Title: title, ContentType: mediaType, Content: text}, nil
}

// extractionError maps extract's errors to the HTTP layer's: too large
// (413) and unsupported type (415) by their sentinels; everything else is
// answered 422 with the error's message as the detail, so those messages
// are rewritten here to say what is wrong with the document without the
// package's prefixes. The original error stays wrapped.
func extractionError(err error) error {
	switch {
	case errors.Is(err, extract.ErrTooLarge) && errors.Is(err, context.DeadlineExceeded):
		// A time limit, not a size: 413's "documents are limited to N
		// bytes" would mislead.
		return documentError("", err, extract.ErrTooLarge)
	case errors.Is(err, extract.ErrTooLarge):
		return fmt.Errorf("%w: %v", httpapi.ErrUploadTooLarge, err)
	case errors.Is(err, extract.ErrUnsupportedType):
		return fmt.Errorf("%w: %v", httpapi.ErrUnsupportedType, err)
	case errors.Is(err, extract.ErrBadUpload):
		return documentError("malformed upload", err, extract.ErrBadUpload)
	case errors.Is(err, extract.ErrNotText):
		return documentError("not valid text", err, extract.ErrNotText)
	case errors.Is(err, extract.ErrEncrypted):
		return documentError("the PDF is encrypted or password-protected", err, extract.ErrEncrypted)
	case errors.Is(err, extract.ErrMalformed):
		return documentError("malformed PDF", err, extract.ErrMalformed)
	}
	return err
}

// unreadableDocument is an extraction error with a message for the client.
type unreadableDocument struct {
	msg string
	err error
}

func (e *unreadableDocument) Error() string { return e.msg }
func (e *unreadableDocument) Unwrap() error { return e.err }

// documentError says summary, followed by what err adds to sentinel's own
// text, if anything. (The HTTP layer puts "the document could not be
// read: " before it.)
func documentError(summary string, err, sentinel error) error {
	detail := strings.Replace(err.Error(), sentinel.Error(), "", 1)
	detail = strings.ReplaceAll(detail, "extract: ", "")
	detail = strings.Trim(detail, ": ")
	msg := summary
	switch {
	case msg == "":
		msg = detail
	case detail != "":
		msg += ": " + detail
	}
	return &unreadableDocument{msg: msg, err: err}
}

// cleanText replaces control characters that documents (PDFs above all)
// carry but text fields refuse — form feeds, vertical tabs — with spaces.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return ' '
		}
		return r
	}, s)
}
