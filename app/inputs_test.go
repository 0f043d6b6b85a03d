package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRepeatedKeysAreRefused: a body whose object, at any depth, holds two
// keys that are equal or differ only in case answers 422 naming the key,
// on every kind of JSON body, and changes nothing.
func TestRepeatedKeysAreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	var kb struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Handbook"}).json(t, &kb)
	bot := h.createBot(owner, "Helpdesk")

	for _, c := range []struct {
		method, path, token, body, key string
	}{
		{http.MethodPost, "/v1/orgs", h.platform, `{"name":"Globex","owner_sub":"bob","owner_sub":"mallory"}`, `\"owner_sub\"`},
		{http.MethodPost, "/v1/orgs", h.platform, `{"name":"Globex","owner_sub":"bob","Owner_Sub":"mallory"}`, `\"Owner_Sub\"`},
		{http.MethodPost, "/v1/members", owner, `{"sub":"bob","roles":["viewer"],"ROLES":["owner"]}`, `\"ROLES\"`},
		{http.MethodPost, "/v1/members", owner, `{"sub":"bob","roles":["viewer"],"\u0072oles":["owner"]}`, `\"roles\"`},
		{http.MethodPut, "/v1/members/alice", owner, `{"roles":["owner"],"Roles":["viewer"]}`, `\"Roles\"`},
		{http.MethodPost, "/v1/bots", owner, `{"name":"B","grants":{"tools":["a"],"Tools":["b"]}}`, `\"Tools\"`},
		{http.MethodPatch, "/v1/bots/" + bot, owner, `{"grants":{"permissions":[],"permissions":["kb:write"]}}`, `\"permissions\"`},
		{http.MethodPatch, "/v1/knowledge-bases/" + kb.ID, owner, "{\"name\":\"A\",\"name\":\"B\"}", `\"name\"`},
		{http.MethodPut, "/v1/knowledge-bases/" + kb.ID + "/grants", owner,
			`{"grants":[{"subject":"role:viewer","permissions":["kb:read"],"SUBJECT":"role:owner"}]}`, `\"SUBJECT\"`},
		{http.MethodPost, "/v1/knowledge-bases/" + kb.ID + "/documents", owner,
			"{\"title\":\"T\",\"content\":\"x\",\"content_type\":\"text/plain\",\"Content_type\":\"text/html\"}", `\"Content_type\"`},
		{http.MethodPost, "/v1/knowledge-bases/search", owner, "{\"query\":\"x\",\"k\":1,\"\u212a\":50}", "\\\"\u212a\\\""},
		{http.MethodPost, "/v1/service-accounts", owner, `{"name":"ci","permissions":["bots:read"],"Name":"other"}`, `\"Name\"`},
	} {
		got := h.do(c.method, c.path, c.token, []byte(c.body))
		if got.status != http.StatusUnprocessableEntity || got.header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(got.body), "problems/invalid") || !strings.Contains(string(got.body), c.key) {
			t.Errorf("%s %s %s = %d %s, want 422 naming %s", c.method, c.path, c.body, got.status, got.body, c.key)
		}
	}

	// Nothing was changed by the refused requests.
	var members struct {
		Items []struct {
			Sub   string   `json:"sub"`
			Roles []string `json:"roles"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/members", owner, nil).json(t, &members)
	if len(members.Items) != 1 || members.Items[0].Sub != "alice" || strings.Join(members.Items[0].Roles, ",") != "owner" {
		t.Errorf("members after refused requests: %+v", members.Items)
	}
	// The rules that were there stay: unknown fields are 400, and so is
	// a body over 1 MiB (413).
	if got := h.do(http.MethodPost, "/v1/members", owner, []byte(`{"sub":"bob","roles":["viewer"],"admin":true}`)); got.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", got.status, got.body)
	}
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `","name":"b"}`
	if got := h.do(http.MethodPost, "/v1/bots", owner, []byte(big)); got.status != http.StatusRequestEntityTooLarge {
		t.Errorf("body over 1 MiB: %d %.200s", got.status, got.body)
	}
}

// TestUnsearchableQueryIsRefusedAndRecorded: a search whose query holds a
// NUL (or another control character, or is empty) answers 422, not 500, on
// every read-model adapter, and is recorded like any other search, with
// the reason it was refused.
func TestUnsearchableQueryIsRefusedAndRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	var kb struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Handbook"}).json(t, &kb)
	// Ingestion is asynchronous: the search below must find the chunk.
	if doc := h.addDoc(owner, kb.ID, "Leave", "text/plain", "Ask your manager about leave."); doc.State != "ready" {
		t.Fatalf("document state %q, want ready", doc.State)
	}

	queries := []string{`"le\u0000ave"`, `"\u0000"`, `"leave\u0007"`, `"   "`}
	for _, q := range queries {
		got := h.do(http.MethodPost, "/v1/knowledge-bases/search", owner, []byte(`{"query":`+q+`}`))
		if got.status != http.StatusUnprocessableEntity || !strings.Contains(string(got.body), "problems/invalid") {
			t.Errorf("query %s: %d %s, want 422", q, got.status, got.body)
		}
	}
	// A query with newlines and tabs is fine.
	// A search is a query: it does not wait for the audit read model, so
	// the audit read passes back the consistency token the search returned.
	var searched struct {
		Consistency string `json:"consistency"`
	}
	h.must(http.StatusOK, http.MethodPost, "/v1/knowledge-bases/search", owner, map[string]any{"query": "leave\n\tmanager"}).json(t, &searched)

	var audit struct {
		Items []struct {
			Actor struct {
				Subject string `json:"subject"`
			} `json:"actor"`
			Data struct {
				Query   string   `json:"query"`
				Refused string   `json:"refused"`
				Hits    []any    `json:"hits"`
				Bases   []string `json:"knowledge_base_ids"`
			} `json:"data"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=KnowledgeSearched&consistency="+url.QueryEscape(searched.Consistency), owner, nil).json(t, &audit)
	if len(audit.Items) != len(queries)+1 {
		t.Fatalf("%d searches recorded, want %d: %+v", len(audit.Items), len(queries)+1, audit.Items)
	}
	for i, want := range []string{"le\x00ave", "\x00", "leave\a", "   "} {
		got := audit.Items[i]
		if got.Data.Query != want || got.Data.Refused == "" || len(got.Data.Hits) != 0 || len(got.Data.Bases) != 0 || got.Actor.Subject != "alice" {
			t.Errorf("record of refused search %q = %+v", want, got)
		}
	}
	if last := audit.Items[len(queries)]; last.Data.Refused != "" || len(last.Data.Hits) == 0 {
		t.Errorf("record of the search that ran = %+v", last)
	}
}
