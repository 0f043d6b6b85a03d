package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain"
)

// invalidSubjects are subjects every input that names one refuses (422).
var invalidSubjects = map[string]string{
	"a slash":               "p/q",
	"a leading slash":       "/alice",
	"a dot":                 ".",
	"two dots":              "..",
	"empty":                 "",
	"too long":              strings.Repeat("a", domain.MaxSubjectLen+1),
	"a NUL":                 "ali\x00ce",
	"a tab":                 "ali\tce",
	"a newline":             "alice\n",
	"a DEL":                 "alice\x7f",
	"a space":               "ali ce",
	"a percent escape":      "p%2Fq",
	"a backslash":           `p\q`,
	"a question mark":       "alice?x=1",
	"a hash":                "alice#x",
	"a Cyrillic look-alike": "\u0430lice",
}

// TestSubjectsAreRefusedAtTheEdge: a member's sub, a new organization's
// owner_sub and the SUB of a user:SUB grant are refused with 422 unless
// they are valid subjects, and nothing is recorded.
func TestSubjectsAreRefusedAtTheEdge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	var kb struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Handbook"}).json(t, &kb)
	for name, sub := range invalidSubjects {
		for _, c := range []struct {
			what, method, path, token string
			body                      any
		}{
			{"member sub", http.MethodPost, "/v1/members", owner, map[string]any{"sub": sub, "roles": []string{"admin"}}},
			{"owner_sub", http.MethodPost, "/v1/orgs", h.platform, map[string]any{"name": "Globex", "owner_sub": sub}},
			{"grant subject", http.MethodPut, "/v1/knowledge-bases/" + kb.ID + "/grants", owner,
				map[string]any{"grants": []map[string]any{{"subject": "user:" + sub, "permissions": []string{"kb:read"}}}}},
		} {
			got := h.do(c.method, c.path, c.token, c.body)
			if got.status != http.StatusUnprocessableEntity || !strings.Contains(string(got.body), "problems/invalid") {
				t.Errorf("%s with %s (%q): %d %s, want 422", c.what, name, sub, got.status, got.body)
			}
		}
	}
	var members struct {
		Items []struct {
			Sub string `json:"sub"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/members", owner, nil).json(t, &members)
	if len(members.Items) != 1 || members.Items[0].Sub != "alice" {
		t.Errorf("members after refused adds: %+v", members.Items)
	}
}

// TestEverySubjectIsReachable: a member whose subject uses any character
// of the subject set can be read, changed and removed through
// /v1/members/{sub}, with the path written as url.PathEscape writes it or
// with every character percent-encoded; its Location points there, its
// token works, and a grant can name it.
func TestEverySubjectIsReachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	var kb struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/knowledge-bases", owner, map[string]any{"name": "Handbook"}).json(t, &kb)

	subjects := []string{"...", "a.", ".a", "auth0|5f7c8ec7c33c6c004bbafe82", "alice+test@example.com",
		"github:1234", "~", strings.Repeat("z", domain.MaxSubjectLen)}
	for _, c := range domain.SubjectSpecials {
		subjects = append(subjects, "a"+string(c)+"b", string(c)+"x", string(c)+string(c)+string(c))
	}
	for _, sub := range subjects {
		for i, path := range []string{"/v1/members/" + url.PathEscape(sub), "/v1/members/" + escapeAll(sub)} {
			what := fmt.Sprintf("%q via %s", sub, path)
			if i == 1 && len(sub) > 40 {
				what = fmt.Sprintf("%q fully escaped", sub[:40])
			}
			r := h.do(http.MethodPost, "/v1/members", owner, map[string]any{"sub": sub, "roles": []string{"viewer"}})
			if r.status != http.StatusCreated {
				t.Errorf("add %s: %d %s", what, r.status, r.body)
				continue
			}
			if loc := r.header.Get("Location"); loc != "/v1/members/"+url.PathEscape(sub) {
				t.Errorf("add %s: Location %q", what, loc)
			}
			var m struct {
				Sub   string   `json:"sub"`
				Roles []string `json:"roles"`
			}
			if r := h.do(http.MethodGet, path, owner, nil); r.status != http.StatusOK {
				t.Errorf("GET %s: %d %s", what, r.status, r.body)
			} else if r.json(t, &m); m.Sub != sub {
				t.Errorf("GET %s: got member %q", what, m.Sub)
			}
			if r := h.do(http.MethodGet, "/v1/org", h.userToken(org, sub), nil); r.status != http.StatusOK {
				t.Errorf("the token of %s: %d %s", what, r.status, r.body)
			}
			if r := h.do(http.MethodPut, path, owner, map[string]any{"roles": []string{"builder"}}); r.status != http.StatusOK {
				t.Errorf("PUT %s: %d %s", what, r.status, r.body)
			}
			if r := h.do(http.MethodGet, path, owner, nil); r.status != http.StatusOK {
				t.Errorf("GET %s after PUT: %d %s", what, r.status, r.body)
			} else if r.json(t, &m); len(m.Roles) != 1 || m.Roles[0] != "builder" {
				t.Errorf("GET %s after PUT: roles %v", what, m.Roles)
			}
			grants := map[string]any{"grants": []map[string]any{{"subject": "user:" + sub, "permissions": []string{"kb:read"}}}}
			if r := h.do(http.MethodPut, "/v1/knowledge-bases/"+kb.ID+"/grants", owner, grants); r.status != http.StatusOK {
				t.Errorf("grant to %s: %d %s", what, r.status, r.body)
			}
			if r := h.do(http.MethodDelete, path, owner, nil); r.status != http.StatusNoContent {
				t.Errorf("DELETE %s: %d %s", what, r.status, r.body)
			}
			if r := h.do(http.MethodGet, path, owner, nil); r.status != http.StatusNotFound {
				t.Errorf("GET %s after DELETE: %d %s", what, r.status, r.body)
			}
		}
	}
}

// escapeAll percent-encodes every byte of s.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestTokenWithAnInvalidSubject: a token whose sub could never name a
// member answers 401, even signed by the built-in issuer for an existing
// organization.
func TestTokenWithAnInvalidSubject(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, _ := h.createOrg("Acme", "alice")
	forger := tokNewForger(t, h)
	for name, sub := range invalidSubjects {
		if sub == "" {
			continue // an empty sub is another test's business (the claim is missing)
		}
		token := forger.sign(t, forger.header(), forger.claims(org, sub))
		r := tokBearer(t, h, http.MethodGet, "/v1/org", token, nil)
		if r.status != http.StatusUnauthorized {
			t.Errorf("token with %s (%q): %d %s, want 401", name, sub, r.status, r.body)
			continue
		}
		tokRequireUnauthorized(t, r, token)
	}
	// The same forger's token for a valid subject works: the 401s above are
	// about the subject.
	if r := tokBearer(t, h, http.MethodGet, "/v1/org", forger.sign(t, forger.header(), forger.claims(org, "alice")), nil); r.status != http.StatusOK {
		t.Fatalf("control token: %d %s", r.status, r.body)
	}
}
