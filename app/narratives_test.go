package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

type narrativeBody struct {
	CorrelationID string    `json:"correlation_id"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	Steps         []struct {
		Sequence    uint64 `json:"sequence"`
		Type        string `json:"type"`
		Stream      string `json:"stream"`
		EventID     string `json:"event_id"`
		CausationID string `json:"causation_id"`
		Actor       struct {
			Subject    string   `json:"subject"`
			Kind       string   `json:"kind"`
			Roles      []string `json:"roles"`
			OnBehalfOf []string `json:"on_behalf_of"`
		} `json:"actor"`
		EffectivePermissions struct {
			Roles []string `json:"roles"`
		} `json:"effective_permissions"`
		Decision  string `json:"decision"`
		Resources []struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
		} `json:"resources"`
		Details map[string]any  `json:"details"`
		Summary string          `json:"summary"`
		Data    json.RawMessage `json:"data"`
	} `json:"steps"`
}

func (n narrativeBody) types() []string {
	var out []string
	for _, s := range n.Steps {
		out = append(out, s.Type)
	}
	return out
}

// waitNarrative reads the narrative of correlation until it holds every
// type of want (processes finish after the request answered).
func (h *harness) waitNarrative(token, correlation string, want ...string) narrativeBody {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n narrativeBody
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/narratives/"+correlation, token, nil).json(h.t, &n)
		complete := true
		for _, w := range want {
			complete = complete && slices.Contains(n.types(), w)
		}
		if complete || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNarrativeOfAnIngestion: adding a document is one request whose
// narrative holds the command and everything the ingestion process did
// for it, in order, each step caused by the one before it in the chain;
// another organization's auditor cannot tell the correlation id exists.
func TestNarrativeOfAnIngestion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "olivia")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	viewer := h.addMember(org, owner, "vic", "viewer")
	kb := h.createKB(owner, "Handbook")
	var doc struct{ ID string }
	r := h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner,
		map[string]any{"title": "Leave", "content_type": "text/plain", "content": "Every employee gets 25 days of paid vacation per year."})
	r.json(t, &doc)
	correlation := r.header.Get("X-Correlation-ID")

	n := h.waitNarrative(auditor, correlation, "DocumentChunked", "JobSucceeded")
	want := []string{"DocumentAdded", "JobSubmitted", "JobStarted", "DocumentChunked", "JobSucceeded"}
	if got := n.types(); !slices.Equal(got, want) {
		t.Fatalf("narrative types %v, want %v", got, want)
	}
	if n.CorrelationID != correlation || n.StartedAt.IsZero() || n.EndedAt.Before(n.StartedAt) {
		t.Fatalf("narrative %s from %v to %v", n.CorrelationID, n.StartedAt, n.EndedAt)
	}
	added := n.Steps[0]
	for i, s := range n.Steps {
		if i > 0 && s.Sequence <= n.Steps[i-1].Sequence {
			t.Errorf("step %d out of order: %d after %d", i, s.Sequence, n.Steps[i-1].Sequence)
		}
		if s.Summary == "" || s.Decision == "" {
			t.Errorf("step %s: summary %q, decision %q", s.Type, s.Summary, s.Decision)
		}
		if i > 0 && s.CausationID != added.EventID {
			t.Errorf("step %s caused by %s, want the DocumentAdded %s", s.Type, s.CausationID, added.EventID)
		}
	}
	if added.Actor.Subject != "olivia" || added.Actor.Kind != "user" || !slices.Contains(added.EffectivePermissions.Roles, "owner") {
		t.Errorf("DocumentAdded actor %+v, permissions %+v", added.Actor, added.EffectivePermissions)
	}
	chunked := n.Steps[3]
	if chunked.Actor.Kind != "process" || !slices.Equal(chunked.Actor.OnBehalfOf, []string{"olivia"}) {
		t.Errorf("DocumentChunked actor %+v, want the ingestion process for olivia", chunked.Actor)
	}
	hasResource := func(kind, id string) bool {
		return slices.ContainsFunc(chunked.Resources, func(r struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
		}) bool {
			return r.Kind == kind && (id == "" || r.ID == id)
		})
	}
	if !hasResource("document", doc.ID) || !hasResource("knowledge_base", kb) || !hasResource("chunk", "") {
		t.Errorf("DocumentChunked resources %+v", chunked.Resources)
	}
	if ids, _ := chunked.Details["chunk_ids"].([]any); len(ids) == 0 {
		t.Errorf("DocumentChunked details %v lack the chunk ids", chunked.Details)
	}
	// The auditor sees no content: neither in the data nor in a summary.
	raw := h.must(http.StatusOK, http.MethodGet, "/v1/audit/narratives/"+correlation, auditor, nil).body
	if bytes.Contains(raw, []byte("25 days")) || !bytes.Contains(raw, []byte(`"redacted":true`)) {
		t.Errorf("the auditor's narrative shows content, or no redaction: %s", raw)
	}

	// The list has it, found by the process's step and by the document.
	var list struct {
		Items []struct {
			CorrelationID string `json:"correlation_id"`
			RootActor     string `json:"root_actor"`
			RootType      string `json:"root_type"`
			Steps         int    `json:"steps"`
			Summary       string `json:"summary"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/narratives?type=DocumentChunked&resource=document:"+doc.ID, auditor, nil).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].CorrelationID != correlation || list.Items[0].RootActor != "olivia" ||
		list.Items[0].RootType != "DocumentAdded" || list.Items[0].Steps != len(want) || !strings.Contains(list.Items[0].Summary, doc.ID) {
		t.Fatalf("narratives of the document: %+v", list.Items)
	}

	// A member without audit:read is refused; another organization's
	// auditor gets the answer of a correlation id that does not exist.
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/narratives/"+correlation, viewer, nil)
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/narratives", viewer, nil)
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/export", viewer, nil)
	orgB, ownerB := h.createOrg("Beta", "bob")
	auditorB := h.addMember(orgB, ownerB, "aude", "auditor")
	other := h.must(http.StatusNotFound, http.MethodGet, "/v1/audit/narratives/"+correlation, auditorB, nil)
	none := h.must(http.StatusNotFound, http.MethodGet, "/v1/audit/narratives/no-such-correlation", auditorB, nil)
	if problemShape(t, other.body) != problemShape(t, none.body) {
		t.Errorf("another org's correlation id answers %s, an unknown one %s", other.body, none.body)
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/narratives?resource=document:"+doc.ID, auditorB, nil).json(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("Beta lists Acme's narratives: %+v", list.Items)
	}
}

// problemShape is a problem body without what differs per request.
func problemShape(t *testing.T, body []byte) string {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	delete(p, "correlation_id")
	delete(p, "instance")
	b, _ := json.Marshal(p)
	return string(b)
}

// TestNarrativeOfABotTurn: a question to a bot is one request whose
// narrative holds the turn, the model's tool call with its decision and
// outcome (the chunks it read, the hash of what it returned), the search it
// ran and the answer, in order.
func TestNarrativeOfABotTurn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "olivia")
	alice := h.addMember(org, owner, "alice", "member")
	kb := h.createKB(owner, "Handbook")
	h.addDoc(owner, kb, "Leave", "text/plain", "Every employee gets 25 days of paid vacation per year.")
	bot := h.createBotWith(owner, "HR", "You answer questions about the handbook.", map[string]any{
		"knowledge_bases": []string{kb}, "tools": []string{"search_knowledge"}, "permissions": []string{"kb:read"},
	})
	conv := h.startConversation(alice, bot)
	_, r := h.ask(alice, conv, "How many days of paid vacation do employees get?")
	correlation := r.header.Get("X-Correlation-ID")

	n := h.waitNarrative(owner, correlation, "AnswerRecorded")
	var types []string
	for _, typ := range n.types() {
		if typ != "AuditContentRead" { // the owner's own read of content, recorded first
			types = append(types, typ)
		}
	}
	want := []string{"TurnStarted", "ToolCallDecided", "KnowledgeSearched", "ToolCallCompleted", "AnswerRecorded"}
	if !slices.Equal(types, want) {
		t.Fatalf("narrative types %v, want %v", types, want)
	}
	for _, s := range n.Steps {
		switch s.Type {
		case "ToolCallDecided":
			if s.Details["tool"] != "search_knowledge" || s.Details["allowed"] != true || s.Details["effective_permissions"] == nil {
				t.Errorf("ToolCallDecided details %v", s.Details)
			}
		case "ToolCallCompleted":
			if s.Details["result_sha256"] == nil || s.Details["chunk_ids"] == nil || !strings.Contains(s.Summary, "search_knowledge") {
				t.Errorf("ToolCallCompleted details %v, summary %q", s.Details, s.Summary)
			}
		case "KnowledgeSearched":
			if len(s.Actor.OnBehalfOf) == 0 || s.Actor.OnBehalfOf[0] != "alice" {
				t.Errorf("the search's actor %+v, want the bot for alice", s.Actor)
			}
		}
	}
	// The owner holds audit:read-content: the question is there.
	raw := h.must(http.StatusOK, http.MethodGet, "/v1/audit/narratives/"+correlation, owner, nil).body
	if !bytes.Contains(raw, []byte("How many days of paid vacation")) {
		t.Errorf("the owner's narrative lacks the question: %s", raw)
	}
}

// TestAuditExportStreamsTheOrganization: the export holds every event of
// the caller's organization in sequence order, and nothing of another;
// the OCSF form holds as many events, each with its class.
func TestAuditExportStreamsTheOrganization(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	orgA, ownerA := h.createOrg("Alpha", "alice")
	orgB, ownerB := h.createOrg("Beta", "bob")
	auditorA := h.addMember(orgA, ownerA, "audrey", "auditor")
	for range 3 {
		h.createBot(ownerA, "a")
		h.createBot(ownerB, "canary-of-beta")
	}
	h.must(http.StatusForbidden, http.MethodPost, "/v1/bots", h.addMember(orgA, ownerA, "vic", "viewer"), map[string]any{"name": "x"}) // a denial
	// The denial answers without a consistency token; a command after it
	// carries one that covers it, so the export below sees it on every bus.
	h.createBot(ownerA, "a-after-the-denial")
	lines := func(body []byte) []map[string]any {
		var out []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v map[string]any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("line %s: %v", sc.Bytes(), err)
			}
			out = append(out, v)
		}
		return out
	}
	r := h.must(http.StatusOK, http.MethodGet, "/v1/audit/export", auditorA, nil)
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("content type %q", ct)
	}
	events := lines(r.body)
	logged := orgLog(t, h, orgA)
	if len(events) != len(logged) || len(events) == 0 {
		t.Fatalf("export holds %d events, the log %d of Alpha's", len(events), len(logged))
	}
	for i, e := range events {
		if e["org_id"] != orgA || e["sequence"] != float64(i+1) || e["id"] != logged[i].ID.String() {
			t.Fatalf("line %d: %v", i, e)
		}
	}
	if bytes.Contains(r.body, []byte(orgB)) || bytes.Contains(r.body, []byte("canary-of-beta")) {
		t.Fatal("Alpha's export holds Beta's events")
	}

	r = h.must(http.StatusOK, http.MethodGet, "/v1/audit/export?format=ocsf", auditorA, nil)
	mapped := lines(r.body)
	if len(mapped) != len(logged) {
		t.Fatalf("OCSF export holds %d events, want %d", len(mapped), len(logged))
	}
	classes := map[float64]int{}
	for _, e := range mapped {
		classes[e["class_uid"].(float64)]++
		if md := e["metadata"].(map[string]any); md["tenant_uid"] != orgA {
			t.Fatalf("OCSF event of %v", md["tenant_uid"])
		}
	}
	if classes[3001] == 0 || classes[6003] == 0 {
		t.Errorf("OCSF classes %v: want account changes (members added) and API activity", classes)
	}

	// since keeps the later events only.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if body := h.must(http.StatusOK, http.MethodGet, "/v1/audit/export?since="+future, auditorA, nil).body; len(body) != 0 {
		t.Errorf("export since the future: %s", body)
	}
}
