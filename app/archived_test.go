package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestArchivedIsReadOnly: once a knowledge base or a bot is archived,
// every write to it, and to the documents of an archived base, answers 409
// with a conflict problem, and changes nothing that can be read back.
func TestArchivedIsReadOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")

	var kb, doc struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Handbook"}).json(t, &kb)
	base := "/v1/knowledge-bases/" + kb.ID
	h.must(http.StatusCreated, http.MethodPost, base+"/documents", owner,
		map[string]any{"title": "Leave", "content": "Ask your manager."}).json(t, &doc)
	h.must(http.StatusNoContent, http.MethodDelete, base, owner, nil)

	bot := h.createBot(owner, "Helpdesk")
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/bots/"+bot, owner, nil)

	for _, w := range []struct {
		name, method, path string
		body               any
	}{
		{"rename the base", http.MethodPatch, base, map[string]any{"name": "Manual"}},
		{"describe the base", http.MethodPatch, base, map[string]any{"description": "How we work"}},
		{"set the base's grants", http.MethodPut, base + "/grants", map[string]any{"grants": []map[string]any{{"subject": "role:viewer", "permissions": []string{"kb:read"}}}}},
		{"clear the base's grants", http.MethodPut, base + "/grants", map[string]any{"grants": []any{}}},
		{"archive the base again", http.MethodDelete, base, nil},
		{"add a document", http.MethodPost, base + "/documents", map[string]any{"title": "Travel", "content": "Book early."}},
		{"replace a document", http.MethodPut, base + "/documents/" + doc.ID, map[string]any{"title": "Leave", "content": "Ask first."}},
		{"delete a document", http.MethodDelete, base + "/documents/" + doc.ID, nil},
		{"rename the bot", http.MethodPatch, "/v1/bots/" + bot, map[string]any{"name": "Desk"}},
		{"give the bot the same name", http.MethodPatch, "/v1/bots/" + bot, map[string]any{"name": "Helpdesk"}},
		{"archive the bot again", http.MethodDelete, "/v1/bots/" + bot, nil},
	} {
		got := h.do(w.method, w.path, owner, w.body)
		if got.status != http.StatusConflict || got.header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(got.body), `"type":"https://palisade.dev/problems/conflict"`) ||
			!strings.Contains(string(got.body), "archived") {
			t.Errorf("%s: %s %s = %d %s, want 409 saying it is archived", w.name, w.method, w.path, got.status, got.body)
		}
	}

	// Nothing changed: the document is still there, the base and the bot
	// keep their names.
	var gotDoc struct {
		Title   string `json:"title"`
		Version int    `json:"version"`
	}
	h.must(http.StatusOK, http.MethodGet, base+"/documents/"+doc.ID, owner, nil).json(t, &gotDoc)
	if gotDoc.Title != "Leave" || gotDoc.Version != 1 {
		t.Errorf("document of the archived base = %+v, want version 1 titled Leave", gotDoc)
	}
	var gotKB struct {
		Name   string `json:"name"`
		Grants []any  `json:"grants"`
	}
	var gotBot struct {
		Name string `json:"name"`
	}
	h.must(http.StatusOK, http.MethodGet, base, owner, nil).json(t, &gotKB)
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+bot, owner, nil).json(t, &gotBot)
	if gotKB.Name != "Handbook" || len(gotKB.Grants) != 0 || gotBot.Name != "Helpdesk" {
		t.Errorf("after refused writes: base %+v, bot %+v", gotKB, gotBot)
	}
}
