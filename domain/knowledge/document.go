package knowledge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/palisadehq/palisade/domain"
)

// Limits of a document.
const (
	// MaxContentBytes bounds a document's extracted text.
	MaxContentBytes = 1 << 20
	MaxChunks       = 10_000
)

// ContentTypes are the content types a document's text may come from.
var contentTypes = map[string]bool{"text/plain": true, "text/markdown": true, "text/html": true, "application/pdf": true}

// Document is the aggregate that guards one document.
type Document struct {
	id          string
	kbID        string
	title       string
	contentType string
	version     int
	contentHash string
	deleted     bool
	// settled is true once the current version was chunked or failed,
	// with its chunk count or the reason it failed.
	settled bool
	chunks  int
	failure string
}

// Exists reports whether the document was added and not deleted.
func (d *Document) Exists() bool { return d.id != "" && !d.deleted }

// KnowledgeBaseID returns the base the document belongs to.
func (d *Document) KnowledgeBaseID() string { return d.kbID }

// Version returns the current content version.
func (d *Document) Version() int { return d.version }

// Settled reports whether the current version's ingestion has an
// outcome: its chunk count, or the reason it failed.
func (d *Document) Settled() (settled bool, chunks int, failure string) {
	return d.settled, d.chunks, d.failure
}

// Awaits reports whether version is the current version and has no outcome
// yet, so that work towards one (chunking, embedding) is worth doing.
func (d *Document) Awaits(version int) bool {
	return d.Exists() && version == d.version && !d.settled
}

// Apply folds one recorded event into the aggregate.
func (d *Document) Apply(e domain.Event) {
	switch e := e.(type) {
	// The hash that Replace compares is computed from the content, not
	// read from the event: what the log records is keyed (see
	// events.DeclareDigest), and so never equals a plain hash.
	case *DocumentAdded:
		d.id, d.kbID, d.version, d.contentHash, d.settled, d.deleted = e.ID, e.KnowledgeBaseID, e.Version, ContentHash(e.Content), false, false
		d.title, d.contentType = e.Title, e.ContentType
	case *DocumentReplaced:
		d.version, d.contentHash, d.settled = e.Version, ContentHash(e.Content), false
		d.title, d.contentType = e.Title, e.ContentType
	case *DocumentChunked:
		d.settled, d.chunks, d.failure = true, len(e.Chunks), ""
	case *DocumentIngestionFailed:
		d.settled, d.chunks, d.failure = true, 0, e.Reason
	case *DocumentDeleted:
		d.deleted = true
	}
}

// ContentHash returns the hex SHA-256 of content. It is what a decision
// records; the log keeps it keyed (events.DeclareDigest).
func ContentHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// AddDocument decides a new document in the base kb (which must accept
// documents). A document added again after it was deleted continues its
// version numbers.
func (d *Document) AddDocument(kb *KnowledgeBase, id, title, contentType, content string) ([]domain.Event, error) {
	if d.Exists() {
		return nil, fmt.Errorf("%w: document exists", domain.ErrConflict)
	}
	if err := kb.MustAcceptDocuments(); err != nil {
		return nil, err
	}
	if err := checkDocument(title, contentType, content); err != nil {
		return nil, err
	}
	return []domain.Event{&DocumentAdded{
		ID: id, KnowledgeBaseID: kb.id, Title: title, ContentType: contentType,
		Content: content, ContentHash: ContentHash(content), Version: d.version + 1,
	}}, nil
}

// Replace decides a new version of the document's content; identical
// content changes nothing.
func (d *Document) Replace(kb *KnowledgeBase, title, contentType, content string) ([]domain.Event, error) {
	if err := d.mustBeWritable(kb); err != nil {
		return nil, err
	}
	if err := checkDocument(title, contentType, content); err != nil {
		return nil, err
	}
	if ContentHash(content) == d.contentHash && title == d.title && contentType == d.contentType {
		return nil, nil
	}
	return []domain.Event{&DocumentReplaced{
		Title: title, ContentType: contentType, Content: content,
		ContentHash: ContentHash(content), Version: d.version + 1,
	}}, nil
}

// RecordChunks decides recording the chunks of version. A version that is
// no longer current, or was already settled, records nothing: a
// redelivered ingestion changes nothing.
func (d *Document) RecordChunks(version int, chunks []Chunk) ([]domain.Event, error) {
	if !d.Exists() || version != d.version || d.settled {
		return nil, nil
	}
	if len(chunks) > MaxChunks {
		return d.Fail(version, fmt.Sprintf("document has more than %d chunks", MaxChunks))
	}
	return []domain.Event{&DocumentChunked{KnowledgeBaseID: d.kbID, Version: version, Chunks: chunks}}, nil
}

// Fail decides recording that version could not be ingested.
func (d *Document) Fail(version int, reason string) ([]domain.Event, error) {
	if !d.Exists() || version != d.version || d.settled {
		return nil, nil
	}
	return []domain.Event{&DocumentIngestionFailed{Version: version, Reason: reason}}, nil
}

// Delete decides deleting the document from its base kb.
func (d *Document) Delete(kb *KnowledgeBase) ([]domain.Event, error) {
	if err := d.mustBeWritable(kb); err != nil {
		return nil, err
	}
	return []domain.Event{&DocumentDeleted{}}, nil
}

// mustBeWritable is the document's one rule for changes by a client: it
// exists in kb, and kb accepts writes (an archived base's documents are
// read-only). Recording the outcome of an ingestion is not a client write
// and does not ask.
func (d *Document) mustBeWritable(kb *KnowledgeBase) error {
	if !d.Exists() || d.kbID != kb.id {
		return fmt.Errorf("%w: document", domain.ErrNotFound)
	}
	return kb.mustBeActive()
}

func checkDocument(title, contentType, content string) error {
	if err := domain.CheckName("title", title); err != nil {
		return err
	}
	if !contentTypes[contentType] {
		return fmt.Errorf("%w: content_type must be text/plain, text/markdown, text/html or application/pdf", domain.ErrInvalid)
	}
	if len(content) > MaxContentBytes {
		return fmt.Errorf("%w: document text is larger than %d bytes", domain.ErrTooLarge, MaxContentBytes)
	}
	if err := domain.CheckText("content", content, MaxContentBytes); err != nil {
		return err
	}
	return nil
}
