package app_test

import (
	"net/http"
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

func TestCommandsReportPosition(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	r := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{"name": "b"}, "Prefer", "respond-async")
	pos, err := strconv.ParseUint(r.header.Get("Palisade-Position"), 10, 64)
	if err != nil || pos == 0 {
		t.Fatalf("Palisade-Position = %q", r.header.Get("Palisade-Position"))
	}
	if r.header.Get("Preference-Applied") != "respond-async" {
		t.Fatal("respond-async not applied")
	}
	var list struct{ Items []struct{ ID string } }
	h.must(http.StatusOK, http.MethodGet, "/v1/bots?min_position="+strconv.FormatUint(pos, 10), owner, nil).json(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("after waiting for %d: %d bots", pos, len(list.Items))
	}
	h.must(http.StatusBadRequest, http.MethodGet, "/v1/bots?min_position=x", owner, nil)
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
