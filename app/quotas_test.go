package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/quota"
)

// setQuotas sets org's quota overrides as the platform.
func (h *harness) setQuotas(org string, quotas map[string]any) {
	h.t.Helper()
	h.must(http.StatusOK, http.MethodPut, "/v1/orgs/"+org+"/quotas", h.platform, quotas)
}

// requireRetryLater checks a 429 with a Retry-After of whole seconds ≥ 1.
func requireRetryLater(t *testing.T, r response, what string) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("%s = %d %s, want 429", what, r.status, r.body)
	}
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("%s: Retry-After %q, want whole seconds ≥ 1", what, r.header.Get("Retry-After"))
	}
	if !strings.Contains(string(r.body), "rate-limited") {
		t.Fatalf("%s: body %s, want problem type rate-limited", what, r.body)
	}
}

// TestQuotasArePlatformOnly: an organization cannot raise its own quotas,
// an unknown organization is 404 and bad values are 422.
func TestQuotasArePlatformOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	h.must(http.StatusForbidden, http.MethodPut, "/v1/orgs/"+org+"/quotas", owner, map[string]any{"max_bots": 5})
	h.must(http.StatusNotFound, http.MethodPut, "/v1/orgs/0190aaaa-0000-7000-8000-000000000000/quotas", h.platform, map[string]any{"max_bots": 5})
	h.must(http.StatusUnprocessableEntity, http.MethodPut, "/v1/orgs/"+org+"/quotas", h.platform, map[string]any{"max_bots": -1})
	h.must(http.StatusBadRequest, http.MethodPut, "/v1/orgs/"+org+"/quotas", h.platform, map[string]any{"max_robots": 5})
	h.setQuotas(org, map[string]any{"max_bots": 5})
	var found struct {
		Items []struct{ Type string } `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=OrganizationQuotasSet", owner, nil).json(t, &found)
	if len(found.Items) != 1 {
		t.Fatalf("OrganizationQuotasSet events in the org's audit = %d, want 1", len(found.Items))
	}
}

// TestOrgRequestRate: an organization over its request rate gets 429 with
// Retry-After while another organization's requests all pass.
func TestOrgRequestRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	slow, slowOwner := h.createOrg("Slow", "alice")
	_, fastOwner := h.createOrg("Fast", "bob")
	h.setQuotas(slow, map[string]any{"requests_per_second": 0.5, "request_burst": 3})
	limited := 0
	for i := 0; i < 10; i++ {
		r := h.do(http.MethodGet, "/v1/org", slowOwner, nil)
		if r.status == http.StatusTooManyRequests {
			requireRetryLater(t, r, "GET /v1/org over the rate")
			limited++
		} else if r.status != http.StatusOK {
			t.Fatalf("GET /v1/org = %d %s", r.status, r.body)
		}
		h.must(http.StatusOK, http.MethodGet, "/v1/org", fastOwner, nil)
	}
	if limited < 6 {
		t.Fatalf("%d of 10 requests over a burst of 3 were limited, want at least 6", limited)
	}
	// Commands are requests too.
	requireRetryLater(t, h.do(http.MethodPost, "/v1/bots", slowOwner, map[string]any{"name": "b", "instructions": "i"}), "POST /v1/bots over the rate")
}

// TestStoredResourceQuotas: a create beyond a stored-resource quota is 409
// quota-exceeded (waiting does not help; archiving or a higher quota does).
func TestStoredResourceQuotas(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	_, other := h.createOrg("Other", "bob")
	h.setQuotas(org, map[string]any{"max_bots": 2, "max_knowledge_bases": 1, "max_documents": 1})
	first := h.createBot(owner, "one")
	h.createBot(owner, "two")
	r := h.do(http.MethodPost, "/v1/bots", owner, map[string]any{"name": "three", "instructions": "i"})
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "quota-exceeded") {
		t.Fatalf("third bot = %d %s, want 409 quota-exceeded", r.status, r.body)
	}
	h.createBot(other, "three") // another organization's quota is its own
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/bots/"+first, owner, nil)
	h.createBot(owner, "three")

	kb := h.createKB(owner, "One")
	if r := h.do(http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Two"}); r.status != http.StatusConflict {
		t.Fatalf("second knowledge base = %d %s, want 409", r.status, r.body)
	}
	h.addDoc(owner, kb, "A", "text/plain", "alpha")
	r = h.do(http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner, map[string]any{"title": "B", "content": "beta", "content_type": "text/plain"})
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "quota-exceeded") {
		t.Fatalf("second document = %d %s, want 409 quota-exceeded", r.status, r.body)
	}
	h.setQuotas(org, map[string]any{"max_documents": 0}) // 0: unlimited
	h.addDoc(owner, kb, "B", "text/plain", "beta")
}

// TestConcurrentUploadCap: while an organization's upload is in progress
// at its cap, its next upload is 429 with Retry-After; another
// organization uploads meanwhile.
func TestConcurrentUploadCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	_, other := h.createOrg("Other", "bob")
	h.setQuotas(org, map[string]any{"concurrent_uploads": 1})
	kb := h.createKB(owner, "Docs")
	otherKB := h.createKB(other, "Docs")

	// An upload whose body arrives slowly holds the organization's slot.
	pr, pw := io.Pipe()
	// Whatever happens below, the slow upload ends, so the server can close.
	t.Cleanup(func() { _ = pw.CloseWithError(io.ErrUnexpectedEOF) })
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/knowledge-bases/"+kb+"/documents", pr)
	req.Header.Set("Authorization", "Bearer "+owner)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan int, 1)
	go func() {
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	part, _ := mw.CreateFormFile("file", "slow.txt")
	_, _ = part.Write([]byte("the first half of a slow upload, "))

	// Wait until the slow upload holds the slot (generous on a loaded
	// machine), and only then probe: a probe sent while the slow upload is
	// still on its way takes the slot itself, and the slow upload is the
	// one refused. Probing in a loop did that on PostgreSQL read models,
	// where each probe holds the slot through a longer consistency wait.
	for deadline := time.Now().Add(30 * time.Second); h.app.Quotas.InProgress(org, quota.WorkUploads) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow upload never took the organization's upload slot")
		}
	}
	r := h.do(http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", owner, map[string]any{"title": "x", "content": "x", "content_type": "text/plain"})
	requireRetryLater(t, r, "an upload beyond the organization's cap")
	h.addDoc(other, otherKB, "Theirs", "text/plain", "another organization uploads meanwhile")

	_, _ = part.Write([]byte("and the second half."))
	_ = mw.Close()
	_ = pw.Close()
	if status := <-done; status != http.StatusCreated {
		t.Fatalf("the slow upload = %d, want 201", status)
	}
	h.addDoc(owner, kb, "After", "text/plain", "the slot is free again")
}

// TestAuditFilterCap: a list-valued filter beyond its cap is 422, at the
// cap it is answered.
func TestAuditFilterCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	types := func(n int) string {
		v := url.Values{}
		for i := 0; i < n; i++ {
			v.Add("type", fmt.Sprintf("T%d", i))
		}
		return v.Encode()
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?"+types(50), owner, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodGet, "/v1/audit/events?"+types(51), owner, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodGet, "/v1/audit/events?type="+strings.Repeat("A,", 60_000)+"A", owner, nil)
}

// TestDenialFloodIsCoalescedAndCounted: thousands of forbidden requests
// become a bounded number of events in the security stream, whose counts
// add up exactly to the requests sent, including the summary written when
// the server shuts down.
func TestDenialFloodIsCoalescedAndCounted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	viewer := h.addMember(org, owner, "victor", "viewer")
	const sent = 2000
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < sent/8; i++ {
				if r := h.do(http.MethodPost, "/v1/bots", viewer, map[string]any{"name": "b", "instructions": "i"}); r.status != http.StatusForbidden {
					mu.Lock()
					wrong++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if wrong > 0 {
		t.Fatalf("%d forbidden requests were not answered 403", wrong)
	}
	// Restart: Close writes the pending summary, the new server reads it.
	dir := h.dataDir
	h.close()
	h = openHarness(t, dir)
	owner = h.userToken(org, "alice")
	var total uint64
	events, after := 0, ""
	for {
		var page struct {
			Items []struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			} `json:"items"`
			NextAfter string `json:"next_after"`
		}
		path := "/v1/audit/events?type=AccessDenied,AccessDenialsCoalesced&actor=victor&limit=500"
		if after != "" {
			path += "&after=" + after
		}
		h.must(http.StatusOK, http.MethodGet, path, owner, nil).json(t, &page)
		for _, e := range page.Items {
			events++
			if e.Type == "AccessDenied" {
				total++
				continue
			}
			var c struct {
				Count uint64 `json:"count"`
			}
			if err := json.Unmarshal(e.Data, &c); err != nil {
				t.Fatal(err)
			}
			total += c.Count
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	if total != sent {
		t.Fatalf("the security stream counts %d denials of victor, want %d", total, sent)
	}
	if events > 10 {
		t.Fatalf("%d denials became %d events, want a handful", sent, events)
	}
	t.Logf("%d forbidden requests recorded as %d events", sent, events)
}
