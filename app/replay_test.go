package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

// snapshot reads everything an organization's owner and auditor can see,
// as raw JSON, in a fixed order.
func snapshot(t *testing.T, h *harness, owner, auditor string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, path := range []string{
		"/v1/org",
		"/v1/members?limit=500",
		"/v1/service-accounts?limit=500",
		"/v1/bots?limit=500&include_archived=true",
	} {
		out[path] = h.must(http.StatusOK, http.MethodGet, path, owner, nil).body
	}
	var bots struct{ Items []struct{ ID string } }
	h.must(http.StatusOK, http.MethodGet, "/v1/bots?limit=500&include_archived=true", owner, nil).json(t, &bots)
	for _, b := range bots.Items {
		path := "/v1/bots/" + b.ID
		out[path] = h.must(http.StatusOK, http.MethodGet, path, owner, nil).body
	}
	// The audit index, page by page.
	after := "0"
	for page := 0; ; page++ {
		var events struct {
			NextAfter string `json:"next_after"`
		}
		path := "/v1/audit/events?limit=50&after=" + after
		r := h.must(http.StatusOK, http.MethodGet, path, auditor, nil)
		out[fmt.Sprintf("audit page %d", page)] = r.body
		r.json(t, &events)
		if events.NextAfter == "" {
			break
		}
		after = events.NextAfter
	}
	return out
}

// TestReplayRebuildsIdenticalReadModels builds read models live (through
// the relay and the Watermill bus), restarts on the same log (rebuilding
// straight from the store) and compares everything a client can read.
func TestReplayRebuildsIdenticalReadModels(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir)

	type orgFixture struct{ owner, auditor string }
	var orgs []orgFixture
	for i := 0; i < 3; i++ {
		org, owner := h.createOrg(fmt.Sprintf("Org %d", i), "owner")
		auditor := h.addMember(org, owner, "auditor", "auditor")
		h.addMember(org, owner, "viewer", "viewer")
		builder := h.addMember(org, owner, "builder", "builder")
		h.must(http.StatusOK, http.MethodPut, "/v1/members/viewer", owner, map[string]any{"roles": []string{"member", "analyst"}})
		h.addMember(org, owner, "leaver", "member")
		h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/leaver", owner, nil)
		for j := 0; j < 60; j++ {
			id := h.createBot(builder, fmt.Sprintf("bot %d-%d", i, j))
			if j%3 == 0 {
				h.must(http.StatusOK, http.MethodPatch, "/v1/bots/"+id, builder, map[string]any{
					"instructions": "changed", "grants": map[string]any{"permissions": []string{"kb:read"}},
				})
			}
			if j%7 == 0 {
				h.must(http.StatusNoContent, http.MethodDelete, "/v1/bots/"+id, builder, nil)
			}
		}
		var sa struct{ ID string }
		h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner,
			map[string]any{"name": "ci", "permissions": []string{"bots:read"}}).json(t, &sa)
		h.must(http.StatusNoContent, http.MethodDelete, "/v1/service-accounts/"+sa.ID, owner, nil)
		h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/events", builder, nil) // a denial on record
		orgs = append(orgs, orgFixture{owner, auditor})
	}

	live := make([]map[string][]byte, len(orgs))
	for i, o := range orgs {
		live[i] = snapshot(t, h, o.owner, o.auditor)
	}
	h.close()

	rebuilt := openHarness(t, dir)
	for i, o := range orgs {
		got := snapshot(t, rebuilt, o.owner, o.auditor)
		if len(got) != len(live[i]) {
			t.Fatalf("org %d: %d snapshot entries after rebuild, %d live", i, len(got), len(live[i]))
		}
		for key, want := range live[i] {
			if !bytes.Equal(got[key], want) {
				t.Errorf("org %d %s differs after rebuild:\nlive:    %s\nrebuilt: %s", i, key, want, got[key])
			}
		}
	}
}
