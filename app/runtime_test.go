package app_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/identity"
)

// TestSlowIngestionDoesNotDelayCommands: the consistency wait covers read
// models only. While ingestion is stuck for seconds on a document, a bot
// is created at once and its GET sees it; the document settles afterwards.
func TestSlowIngestionDoesNotDelayCommands(t *testing.T) {
	t.Parallel()
	const stuck = 4 * time.Second
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := openHarnessWith(t, t.TempDir(), func(cfg *app.Config) {
		cfg.ConsistencyWait = 2 * stuck // a wait that included ingestion would show
		cfg.Chunker = func(text string) []knowledge.Chunk {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-time.After(stuck):
			}
			return []knowledge.Chunk{{Text: text}}
		}
	})
	defer close(release)
	_, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	var doc kbDoc
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner,
		map[string]any{"title": "Slow", "content_type": "text/plain", "content": "Takes a while to chunk."}).json(t, &doc)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("ingestion never started")
	}

	start := time.Now()
	bot := h.createBot(owner, "Helpdesk")
	if took := time.Since(start); took > stuck/2 {
		t.Fatalf("POST /v1/bots took %s while ingestion was stuck", took)
	}
	var got struct {
		ID, Name string
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+bot, owner, nil).json(t, &got)
	if got.ID != bot || got.Name != "Helpdesk" {
		t.Fatalf("GET after POST = %+v", got)
	}
	var pending kbDoc
	h.must(http.StatusOK, http.MethodGet, "/v1/knowledge-bases/"+kb+"/documents/"+doc.ID, owner, nil).json(t, &pending)
	if pending.State != "pending" {
		t.Fatalf("document while ingestion is stuck = %+v", pending)
	}
	release <- struct{}{} // not a close: the deferred close ends later chunks
	if settled := h.waitDoc(owner, kb, doc.ID); settled.State != "ready" || settled.Chunks != 1 {
		t.Fatalf("document after ingestion = %+v", settled)
	}
}

// auditActor is the actor of an event as GET /v1/audit/events shows it.
type auditActor struct {
	Subject    string    `json:"subject"`
	Kind       string    `json:"kind"`
	Roles      []string  `json:"roles"`
	Scope      *[]string `json:"scope"`
	OnBehalfOf []string  `json:"on_behalf_of"`
}

// TestAuditShowsTheEffectivePrincipal: a document added with a scoped token
// is recorded with that scope, and the ingestion job's DocumentChunked is
// recorded as the ingestion process acting on behalf of the adder, with the
// same scope. An unscoped token records no scope (null), not an empty one.
func TestAuditShowsTheEffectivePrincipal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	kb := h.createKB(owner, "Handbook")
	scoped := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "kb:write kb:read openid"}, "alice")
	doc := h.addDoc(scoped, kb, "Policy", "text/plain", "Vacation is 30 days.")

	// The job's outcome is recorded just after the document's: wait for it.
	seen := map[string]auditActor{}
	for deadline := time.Now().Add(10 * time.Second); ; {
		var page struct {
			Items []struct {
				Type   string     `json:"type"`
				Stream string     `json:"stream"`
				Actor  auditActor `json:"actor"`
			} `json:"items"`
		}
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?limit=500&type=KnowledgeBaseCreated,DocumentAdded,DocumentChunked,JobSucceeded", auditor, nil).json(t, &page)
		for _, e := range page.Items {
			if e.Type == "JobSucceeded" || strings.HasSuffix(e.Stream, doc.ID) || e.Type == "KnowledgeBaseCreated" {
				seen[e.Type] = e.Actor
			}
		}
		if _, ok := seen["JobSucceeded"]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := []string{"kb:read", "kb:write"}
	if a := seen["KnowledgeBaseCreated"]; a.Subject != "alice" || a.Scope != nil {
		t.Fatalf("KnowledgeBaseCreated (unscoped token) by %+v", a)
	}
	if a := seen["DocumentAdded"]; a.Subject != "alice" || a.Kind != "user" || a.Scope == nil || !slices.Equal(*a.Scope, want) {
		t.Fatalf("DocumentAdded by %+v, want alice with scope %v", a, want)
	}
	for _, typ := range []string{"DocumentChunked", "JobSucceeded"} {
		a := seen[typ]
		if a.Subject != "ingestion" || a.Kind != "process" || !slices.Equal(a.OnBehalfOf, []string{"alice"}) ||
			a.Scope == nil || !slices.Equal(*a.Scope, want) {
			t.Fatalf("%s by %+v, want the ingestion process on behalf of alice with scope %v", typ, a, want)
		}
	}
}

// TestCloseWaitsForHandlers: Close returns only after every bus handler has
// returned, also one that outlasts the router's CloseTimeout (5 s), so
// nothing a handler does runs after Close or under the stores it closes.
// The chunker's write is deliberately unguarded: only Close orders it
// before the test's read, which the race detector checks.
func TestCloseWaitsForHandlers(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	chunked := 0
	h := openHarnessWith(t, t.TempDir(), func(cfg *app.Config) {
		cfg.Chunker = func(text string) []knowledge.Chunk {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			chunked++
			return []knowledge.Chunk{{Text: text}}
		}
	})
	t.Cleanup(free) // runs before the harness's own cleanup, should the test fail first
	_, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Handbook")
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner,
		map[string]any{"title": "Slow", "content_type": "text/plain", "content": "Takes a while to chunk."})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("ingestion never started")
	}

	closed := make(chan struct{})
	go func() {
		h.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while the ingestion handler was still running")
	case <-time.After(6 * time.Second):
	}
	free()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return after the handler did")
	}
	if chunked != 1 {
		t.Fatalf("chunked %d times, want 1", chunked)
	}
}
