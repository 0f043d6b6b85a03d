package knowledge

import (
	"errors"
	"testing"

	"github.com/palisadehq/palisade/domain"
)

// fold applies every event returned by decide to a.
func fold(t *testing.T, a interface{ Apply(domain.Event) }, evs []domain.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	for _, e := range evs {
		a.Apply(e)
	}
}

// fixture returns a base kb-1 with a document doc-1, archived or not.
func fixture(t *testing.T, archived bool) (*KnowledgeBase, *Document) {
	t.Helper()
	kb := &KnowledgeBase{}
	evs, err := CreateKnowledgeBase("kb-1", "Handbook", "", "hashing", 256)
	fold(t, kb, evs, err)
	doc := &Document{}
	evs, err = doc.AddDocument(kb, "doc-1", "Leave", "text/plain", "Ask your manager.")
	fold(t, doc, evs, err)
	if archived {
		evs, err = kb.Archive()
		fold(t, kb, evs, err)
	}
	return kb, doc
}

// TestArchivedBaseIsReadOnly: every write to a knowledge base, and to a
// document in it, succeeds while the base is active and is refused with an
// ArchivedError (a conflict) once it is archived.
func TestArchivedBaseIsReadOnly(t *testing.T) {
	t.Parallel()
	name, desc := "Manual", "How we work"
	for _, tc := range []struct {
		name  string
		write func(kb *KnowledgeBase, doc *Document) ([]domain.Event, error)
	}{
		{"update the name", func(kb *KnowledgeBase, _ *Document) ([]domain.Event, error) { return kb.Update(&name, nil) }},
		{"update the description", func(kb *KnowledgeBase, _ *Document) ([]domain.Event, error) { return kb.Update(nil, &desc) }},
		{"set grants", func(kb *KnowledgeBase, _ *Document) ([]domain.Event, error) {
			return kb.SetGrants([]Grant{{Subject: "role:viewer", Permissions: []string{"kb:read"}}})
		}},
		{"archive", func(kb *KnowledgeBase, _ *Document) ([]domain.Event, error) { return kb.Archive() }},
		{"add a document", func(kb *KnowledgeBase, _ *Document) ([]domain.Event, error) {
			return (&Document{}).AddDocument(kb, "doc-2", "Travel", "text/plain", "Book early.")
		}},
		{"replace a document", func(kb *KnowledgeBase, doc *Document) ([]domain.Event, error) {
			return doc.Replace(kb, "Leave", "text/plain", "Ask your manager first.")
		}},
		{"delete a document", func(kb *KnowledgeBase, doc *Document) ([]domain.Event, error) { return doc.Delete(kb) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kb, doc := fixture(t, false)
			if evs, err := tc.write(kb, doc); err != nil || len(evs) != 1 {
				t.Fatalf("on an active base: %v, %v; want one event", evs, err)
			}
			kb, doc = fixture(t, true)
			evs, err := tc.write(kb, doc)
			var archived *domain.ArchivedError
			if !errors.As(err, &archived) || !errors.Is(err, domain.ErrConflict) || archived.Resource != "knowledge base" || evs != nil {
				t.Fatalf("on an archived base: %v, %v; want an ArchivedError for the knowledge base", evs, err)
			}
		})
	}
}

// TestDocumentOfAnotherBase: a document is only written through its own
// base, which answers like a missing document otherwise.
func TestDocumentOfAnotherBase(t *testing.T) {
	t.Parallel()
	_, doc := fixture(t, false)
	other := &KnowledgeBase{}
	evs, err := CreateKnowledgeBase("kb-2", "Other", "", "hashing", 256)
	fold(t, other, evs, err)
	if _, err := doc.Delete(other); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("delete through another base: %v", err)
	}
	if _, err := doc.Replace(other, "Leave", "text/plain", "x"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("replace through another base: %v", err)
	}
}
