package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestEveryQueryRefusesABadConsistencyToken: every query may be handed a
// consistency token, and every one refuses a malformed one (400) rather
// than answer without the wait the caller asked for; only the routes that
// read no read model (health, the OpenAPI document, the JWKS, metrics)
// take none. A new GET route cannot forget it: the router is walked.
func TestEveryQueryRefusesABadConsistencyToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Acme", "alice")
	noReadModel := map[string]bool{
		"/healthz": true, "/readyz": true, "/livez": true, "/metrics": true,
		"/openapi.json": true, "/.well-known/jwks.json": true,
	}
	checked := 0
	for _, k := range isoWalk(t, h) {
		if k.method != http.MethodGet || noReadModel[k.path] {
			continue
		}
		path := isoFill(k.path, "00000000-0000-0000-0000-000000000000")
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := h.do(http.MethodGet, path+sep+"consistency=garbage", owner, nil)
		if r.status != http.StatusBadRequest {
			t.Errorf("GET %s with a malformed consistency token = %d %s, want 400", k.path, r.status, r.body)
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d GET routes checked: the walk found too few", checked)
	}
}
