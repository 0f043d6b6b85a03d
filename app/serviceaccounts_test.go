package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
)

// TestServiceAccountFollowsItsCreator: a service account acts with its list
// ∩ what its creator holds at each request. An admin's account holding
// members:manage stops adding members (and cannot re-promote the admin)
// once the admin is demoted; once the admin is removed its token is 401,
// recorded as AuthenticationDenied (creator_not_member); re-assigned to the
// owner, it works again. Re-assigning needs every permission the account
// lists and a member to answer to.
// onboardingPermissions are what an account that adds viewers needs:
// members:manage, and every permission of the viewer role, since nobody
// gives a role that grants more than they hold.
func onboardingPermissions() []string {
	return append([]string{"members:manage"}, access.RoleViewer.Permissions().Names()...)
}

func TestServiceAccountFollowsItsCreator(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	admin := h.addMember(org, owner, "adam", "admin")
	viewer := h.addMember(org, owner, "victor", "viewer")

	var sa struct{ ID, Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", admin,
		map[string]any{"name": "onboarding", "permissions": onboardingPermissions()}).json(t, &sa)
	h.must(http.StatusCreated, http.MethodPost, "/v1/members", sa.Token, map[string]any{"sub": "newbie-1", "roles": []string{"viewer"}})

	// Demoted: the account holds nothing its creator lacks now.
	h.must(http.StatusOK, http.MethodPut, "/v1/members/adam", owner, map[string]any{"roles": []string{"viewer"}})
	h.must(http.StatusForbidden, http.MethodPost, "/v1/members", sa.Token, map[string]any{"sub": "newbie-2", "roles": []string{"viewer"}})
	h.must(http.StatusForbidden, http.MethodPut, "/v1/members/adam", sa.Token, map[string]any{"roles": []string{"admin"}})
	h.must(http.StatusOK, http.MethodGet, "/v1/members", sa.Token, nil) // members:read: a viewer holds it

	// Removed: the account cannot act at all, and the refusal is recorded.
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/adam", owner, nil)
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/members", sa.Token, nil)
	h.must(http.StatusUnauthorized, http.MethodPost, "/v1/members", sa.Token, map[string]any{"sub": "adam", "roles": []string{"admin"}})
	h.must(http.StatusNotFound, http.MethodGet, "/v1/members/adam", owner, nil)
	var denials struct {
		Items []struct {
			Type string
			Data struct {
				Reason  string `json:"reason"`
				Subject string `json:"subject"`
			} `json:"data"`
		}
	}
	// The refusal is appended outside any command, so no consistency
	// token covers it: poll until the audit read model has it.
	recorded := 0
	for deadline := time.Now().Add(10 * time.Second); recorded == 0 && time.Now().Before(deadline); {
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=AuthenticationDenied&limit=500", owner, nil).json(t, &denials)
		for _, e := range denials.Items {
			if e.Data.Reason == "creator_not_member" && e.Data.Subject == sa.ID {
				recorded++
			}
		}
		if recorded == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if recorded == 0 {
		t.Fatalf("no AuthenticationDenied with reason creator_not_member for %s in %+v", sa.ID, denials.Items)
	}

	// Re-assigning: users with service-accounts:manage and every listed
	// permission, to a member, never to a stranger.
	creator := "/v1/service-accounts/" + sa.ID + "/creator"
	h.must(http.StatusForbidden, http.MethodPut, creator, viewer, map[string]any{"sub": "victor"})
	var manager struct{ ID, Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner, map[string]any{"name": "manager",
		"permissions": []string{"service-accounts:manage", "members:manage", "members:read"}}).json(t, &manager)
	h.must(http.StatusForbidden, http.MethodPut, creator, manager.Token, map[string]any{"sub": "alice"}) // users only
	narrowOwner := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "service-accounts:manage members:read"}, "alice")
	h.must(http.StatusForbidden, http.MethodPut, creator, narrowOwner, map[string]any{"sub": "alice"})
	h.must(http.StatusUnprocessableEntity, http.MethodPut, creator, owner, map[string]any{"sub": "adam"})
	h.must(http.StatusNotFound, http.MethodPut, "/v1/service-accounts/0198c0de-0000-7000-8000-000000000000/creator", owner, map[string]any{"sub": "alice"})
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/members", sa.Token, nil) // nothing changed yet

	var moved struct {
		ID          string `json:"id"`
		CreatedBy   string `json:"created_by"`
		Consistency string `json:"consistency"`
	}
	h.must(http.StatusOK, http.MethodPut, creator, owner, map[string]any{"sub": "alice"}).json(t, &moved)
	if moved.ID != sa.ID || moved.CreatedBy != "alice" || moved.Consistency == "" {
		t.Fatalf("re-assigned = %+v", moved)
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/members", sa.Token, map[string]any{"sub": "newbie-3", "roles": []string{"viewer"}})
	var list struct {
		Items []struct {
			ID        string `json:"id"`
			CreatedBy string `json:"created_by"`
		}
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/service-accounts", owner, nil).json(t, &list)
	for _, a := range list.Items {
		if a.ID == sa.ID && a.CreatedBy != "alice" {
			t.Errorf("listed creator %q, want alice", a.CreatedBy)
		}
	}
	// Re-assigning to the current creator changes nothing.
	moved.Consistency = ""
	h.must(http.StatusOK, http.MethodPut, creator, owner, map[string]any{"sub": "alice"}).json(t, &moved)
	if moved.Consistency != "" {
		t.Errorf("re-assigning to the same creator recorded something: %+v", moved)
	}
	var changes struct{ Items []struct{ Type string } }
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=ServiceAccountReassigned&limit=500", owner, nil).json(t, &changes)
	if len(changes.Items) != 1 {
		t.Errorf("%d ServiceAccountReassigned events, want 1", len(changes.Items))
	}
	// Revoked accounts cannot be re-assigned.
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/service-accounts/"+sa.ID, owner, nil)
	h.must(http.StatusNotFound, http.MethodPut, creator, owner, map[string]any{"sub": "alice"})
}

// TestServiceAccountGrant: a restricted knowledge base granted to
// service:ID is readable by that service account, and by nobody the grant
// does not name — another account with kb:read, or a member whose sub is
// the account's id.
func TestServiceAccountGrant(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Board")
	doc := h.addDoc(owner, kb, "Minutes", "text/plain", "The quarterly figures are confidential.")
	if doc.State != "ready" {
		t.Fatalf("document %+v not ingested", doc)
	}
	var reader, other struct{ ID, Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner,
		map[string]any{"name": "reader", "permissions": []string{"kb:read"}}).json(t, &reader)
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner,
		map[string]any{"name": "other", "permissions": []string{"kb:read"}}).json(t, &other)
	lookalike := h.addMember(org, owner, reader.ID, "member")
	viewer := h.addMember(org, owner, "victor", "viewer")

	h.must(http.StatusOK, http.MethodPut, "/v1/knowledge-bases/"+kb+"/grants", owner,
		map[string]any{"grants": []map[string]any{{"subject": "service:" + reader.ID, "permissions": []string{"kb:read"}}}})

	h.must(http.StatusOK, http.MethodGet, "/v1/knowledge-bases/"+kb, reader.Token, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/knowledge-bases/"+kb+"/documents/"+doc.ID, reader.Token, nil)
	if res := h.search(reader.Token, map[string]any{"query": "quarterly figures"}); len(res.Results) == 0 {
		t.Error("the granted service account finds nothing in the base")
	}
	for name, token := range map[string]string{"another service account": other.Token, "a member named like the account": lookalike, "a viewer": viewer} {
		h.must(http.StatusNotFound, http.MethodGet, "/v1/knowledge-bases/"+kb, token, nil)
		if res := h.search(token, map[string]any{"query": "quarterly figures"}); len(res.Results) != 0 {
			t.Errorf("%s found %d chunks of the restricted base", name, len(res.Results))
		}
	}
	// The grant cannot name what does not parse.
	h.must(http.StatusUnprocessableEntity, http.MethodPut, "/v1/knowledge-bases/"+kb+"/grants", owner,
		map[string]any{"grants": []map[string]any{{"subject": "service:", "permissions": []string{"kb:read"}}}})
}
