package app_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestTenancyFlow walks the main path: the platform creates an org, the
// owner adds members, creates bots and a service account, roles change and
// take effect on the next request, and everything is on the record.
func TestTenancyFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")

	var got struct {
		ID, Name string
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/org", owner, nil).json(t, &got)
	if got.ID != org || got.Name != "Acme" {
		t.Fatalf("GET /v1/org = %+v", got)
	}

	viewer := h.addMember(org, owner, "victor", "viewer")
	builder := h.addMember(org, owner, "bella", "builder")

	// POST then GET: the command waited for the read model.
	bot := h.createBot(builder, "Helpdesk")
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+bot, viewer, nil)
	h.must(http.StatusForbidden, http.MethodPost, "/v1/bots", viewer, map[string]any{"name": "nope"})

	// Roles are read at request time: promoting the viewer works at once.
	h.must(http.StatusOK, http.MethodPut, "/v1/members/victor", owner, map[string]any{"roles": []string{"builder"}})
	h.createBot(viewer, "Now allowed")
	// Removing a member revokes their token on the next request.
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/victor", owner, nil)
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots", viewer, nil)

	// The last owner cannot leave.
	h.must(http.StatusConflict, http.MethodDelete, "/v1/members/alice", owner, nil)
	// An admin cannot make owners.
	admin := h.addMember(org, owner, "adam", "admin")
	h.must(http.StatusForbidden, http.MethodPost, "/v1/members", admin, map[string]any{"sub": "eve", "roles": []string{"owner"}})
	h.must(http.StatusCreated, http.MethodPost, "/v1/members", admin, map[string]any{"sub": "eve", "roles": []string{"member"}})

	// Update and archive.
	var updated struct {
		Name    string
		Version uint64
	}
	h.must(http.StatusOK, http.MethodPatch, "/v1/bots/"+bot, builder, map[string]any{"name": "Helpdesk 2"}).json(t, &updated)
	if updated.Name != "Helpdesk 2" || updated.Version != 1 {
		t.Fatalf("PATCH = %+v", updated)
	}
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/bots/"+bot, builder, nil)
	var list struct {
		Items []struct{ ID string }
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", builder, nil).json(t, &list)
	for _, b := range list.Items {
		if b.ID == bot {
			t.Fatal("archived bot listed")
		}
	}
	h.must(http.StatusConflict, http.MethodPatch, "/v1/bots/"+bot, builder, map[string]any{"name": "x"})

	// Service account: a subset of the creator's permissions, usable, then revoked.
	h.must(http.StatusForbidden, http.MethodPost, "/v1/service-accounts", admin,
		map[string]any{"name": "too much", "permissions": []string{"org:delete"}})
	var sa struct {
		ID, Token string
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner,
		map[string]any{"name": "ci", "permissions": []string{"bots:read"}}).json(t, &sa)
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", sa.Token, nil)
	h.must(http.StatusForbidden, http.MethodPost, "/v1/bots", sa.Token, map[string]any{"name": "x"})
	h.must(http.StatusForbidden, http.MethodPost, "/v1/service-accounts", sa.Token,
		map[string]any{"name": "child", "permissions": []string{"bots:read"}})
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/service-accounts/"+sa.ID, owner, nil)
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots", sa.Token, nil)

	// The audit trail holds the commands and the denials, with metadata.
	var audit struct {
		Items []struct {
			Type          string
			Position      uint64
			CorrelationID string `json:"correlation_id"`
			Authorization string
			Actor         struct{ Subject, Kind string }
		}
	}
	auditor := h.addMember(org, owner, "audrey", "auditor")
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?limit=500", auditor, nil).json(t, &audit)
	types := map[string]int{}
	for _, e := range audit.Items {
		types[e.Type]++
		if e.CorrelationID == "" || e.Actor.Subject == "" {
			t.Errorf("event %s at %d lacks metadata", e.Type, e.Position)
		}
		if e.Type == "BotCreated" && !strings.HasPrefix(e.Authorization, "allowed: role builder") {
			t.Errorf("BotCreated authorization = %q", e.Authorization)
		}
	}
	for _, typ := range []string{"OrganizationCreated", "MemberAdded", "MemberRolesChanged", "MemberRemoved",
		"BotCreated", "BotUpdated", "BotArchived", "ServiceAccountCreated", "ServiceAccountRevoked", "AccessDenied", "AuthenticationDenied"} {
		if types[typ] == 0 {
			t.Errorf("audit trail has no %s (have %v)", typ, types)
		}
	}
	// Filters.
	var denied struct{ Items []struct{ Type string } }
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=AccessDenied&actor=victor", auditor, nil).json(t, &denied)
	if len(denied.Items) != 1 {
		t.Fatalf("AccessDenied by victor = %d events, want 1", len(denied.Items))
	}
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/events", builder, nil)
}

// TestCommandsIssueConsistencyTokens: a command answers with a sealed
// consistency token, never a global position; a query holding the token
// sees the write; the token is refused by another organization, and the
// retired bare positions are refused naming their replacement.
func TestCommandsIssueConsistencyTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	_, other := h.createOrg("Other", "olga")
	r := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{"name": "b"}, "Prefer", "respond-async")
	token := r.header.Get("Palisade-Consistency")
	if token == "" {
		t.Fatal("a command answered without Palisade-Consistency")
	}
	if r.header.Get("Palisade-Position") != "" {
		t.Fatalf("a command answered Palisade-Position %q", r.header.Get("Palisade-Position"))
	}
	if _, err := strconv.ParseUint(token, 10, 64); err == nil {
		t.Fatalf("the consistency token %q is a bare number", token)
	}
	var created map[string]any
	r.json(t, &created)
	if created["consistency"] != token {
		t.Fatalf("body consistency %v, header %q", created["consistency"], token)
	}
	if _, ok := created["position"]; ok {
		t.Fatalf("the body carries a position: %v", created)
	}
	if r.header.Get("Preference-Applied") != "respond-async" {
		t.Fatal("respond-async not applied")
	}
	for _, read := range []struct {
		path    string
		headers []string
	}{
		{"/v1/bots?consistency=" + url.QueryEscape(token), nil},
		{"/v1/bots", []string{"Palisade-Consistency", token}},
	} {
		var list struct{ Items []struct{ ID string } }
		h.must(http.StatusOK, http.MethodGet, read.path, owner, nil, read.headers...).json(t, &list)
		if len(list.Items) != 1 {
			t.Fatalf("%s %v after waiting for the token: %d bots", read.path, read.headers, len(list.Items))
		}
	}

	// Another organization's token, a tampered one and garbage are 400.
	tampered := token[:len(token)-2] + map[bool]string{true: "AA", false: "BB"}[!strings.HasSuffix(token, "AA")]
	for _, bad := range []struct{ name, token, caller string }{
		{"other organization", token, other},
		{"tampered", tampered, owner},
		{"garbage", "x", owner},
	} {
		r := h.must(http.StatusBadRequest, http.MethodGet, "/v1/bots?consistency="+url.QueryEscape(bad.token), bad.caller, nil)
		if !strings.Contains(string(r.body), "consistency") {
			t.Errorf("%s: the 400 does not name the token: %s", bad.name, r.body)
		}
		h.must(http.StatusBadRequest, http.MethodGet, "/v1/bots", bad.caller, nil, "Palisade-Consistency", bad.token)
	}

	// A bare position is an oracle of the global write rate: refused.
	for _, retired := range []struct {
		path    string
		headers []string
	}{
		{"/v1/bots?min_position=1", nil},
		{"/v1/bots?min_position=x", nil},
		{"/v1/bots", []string{"Palisade-Min-Position", "1"}},
	} {
		r := h.must(http.StatusBadRequest, http.MethodGet, retired.path, owner, nil, retired.headers...)
		if !strings.Contains(string(r.body), "Palisade-Consistency") {
			t.Errorf("%s %v: the 400 does not name the replacement: %s", retired.path, retired.headers, r.body)
		}
	}

	// Two tokens for writes of one organization cannot be ordered by
	// their text, and /readyz says ready and nothing else.
	second := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{"name": "c"}).header.Get("Palisade-Consistency")
	if second == "" || second == token {
		t.Fatalf("second token %q, first %q", second, token)
	}
	ready := h.must(http.StatusOK, http.MethodGet, "/readyz", "", nil)
	var body map[string]any
	ready.json(t, &body)
	if len(body) != 1 || body["status"] != "ready" {
		t.Fatalf("/readyz = %s, want only the status", ready.body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	body := map[string]any{"name": "once"}
	first := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, body, "Idempotency-Key", "k-1")
	again := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, body, "Idempotency-Key", "k-1")
	if string(first.body) != string(again.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay differs: %s vs %s", first.body, again.body)
	}
	h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/bots", owner, map[string]any{"name": "other"}, "Idempotency-Key", "k-1")
	var list struct{ Items []struct{ ID string } }
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", owner, nil).json(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("%d bots after a replayed create, want 1", len(list.Items))
	}
}
