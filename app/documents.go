package app

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode"

	"github.com/palisadehq/palisade/commands"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/knowledge/extract"
)

// documentExtractor turns uploads into text for the HTTP layer, through
// knowledge/extract, and maps its errors to the HTTP layer's.
type documentExtractor struct{}

func (documentExtractor) Text(contentType string, data []byte) (string, error) {
	text, err := extract.Text(contentType, data)
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
	text, err := d.Text(doc.ContentType, doc.Data)
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

func extractionError(err error) error {
	switch {
	case errors.Is(err, extract.ErrTooLarge):
		return fmt.Errorf("%w: %v", httpapi.ErrUploadTooLarge, err)
	case errors.Is(err, extract.ErrUnsupportedType):
		return fmt.Errorf("%w: %v", httpapi.ErrUnsupportedType, err)
	}
	return err
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
