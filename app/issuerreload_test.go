package app_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/identity"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond until it holds, failing after 10 s: the server
// reads its key set file on its own schedule.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tokenKID is the kid of a token's header.
func tokenKID(t *testing.T, raw string) string {
	t.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestIssuerKeysFollowTheFile runs a whole rotation on one running server
// by rewriting its key set file, as an operator (or a Kubernetes Secret
// update) does, never restarting it:
//   - add a key: the JWKS lists both, a token of either verifies, the old
//     key still signs;
//   - switch (the new key first in the file): new tokens carry the new
//     kid, audit checkpoints are signed with it and verify, old tokens
//     and a consistency token sealed under the old key still work;
//   - a corrupt file: logged, and the keys in use stay;
//   - remove the old key: its tokens are refused (though verified and
//     cached before), and so is a consistency token it sealed.
func TestIssuerKeysFollowTheFile(t *testing.T) {
	t.Parallel()
	path, kids := writeKeySet(t, 1)
	oldKey := kids[0]
	keys, err := identity.ReadIssuerKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	newKey := mustGenerate(t)
	logs := &syncBuffer{}
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) {
		cfg.IssuerKeys = path
		cfg.IssuerKeysPoll = 20 * time.Millisecond
		cfg.AuditCheckpointInterval = 20 * time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	rewrite := func(keys ...identity.IssuerKey) {
		t.Helper()
		if err := identity.WriteIssuerKeys(path, keys, false); err != nil {
			t.Fatal(err)
		}
	}
	published := func(want ...string) func() bool {
		return func() bool { return slices.Equal(jwksKids(t, h), slices.Sorted(slices.Values(want))) }
	}
	status := func(token string) int { return h.do(http.MethodGet, "/v1/bots", token, nil).status }

	org, owner := h.createOrg("Acme", "olivia")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	writeBot := func(name string) (id, consistency string) {
		t.Helper()
		r := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{
			"name": name, "instructions": "Answer about " + name, "grants": map[string]any{"tools": []string{"search"}},
		})
		var bot struct {
			ID string `json:"id"`
		}
		r.json(t, &bot)
		return bot.ID, r.header.Get("Palisade-Consistency")
	}
	readBot := func(token, id, consistency string) int {
		return h.do(http.MethodGet, "/v1/bots/"+id+"?consistency="+url.QueryEscape(consistency), token, nil).status
	}
	if status(owner) != http.StatusOK { // verified, and cached by the verifier
		t.Fatal("the owner's token is refused before any rotation")
	}

	// Add.
	rewrite(keys[0], newKey)
	eventually(t, "the JWKS lists the added key", published(oldKey, newKey.KeyID))
	onlyNew, err := identity.NewIssuer([]identity.IssuerKey{newKey}, "", app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	c := identity.Claims{Kind: identity.KindUser, Org: org}
	c.Subject = "olivia"
	fromNew, err := onlyNew.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := status(fromNew); got != http.StatusOK {
		t.Fatalf("after add, a token of the new key answers %d", got)
	}
	if kid := tokenKID(t, h.userToken(org, "olivia")); kid != oldKey {
		t.Fatalf("after add, a new token names kid %s; the old key %s should still sign", kid, oldKey)
	}
	botID, sealedByOld := writeBot("before-switch")

	// Switch: the new key first.
	rewrite(newKey, keys[0])
	eventually(t, "the server signs with the new key", func() bool { return h.app.Issuer.KeyID() == newKey.KeyID })
	minted := h.userToken(org, "olivia")
	if kid := tokenKID(t, minted); kid != newKey.KeyID {
		t.Fatalf("after switch, a new token names kid %s, want %s", kid, newKey.KeyID)
	}
	for name, token := range map[string]string{"old": owner, "new": minted} {
		if got := status(token); got != http.StatusOK {
			t.Fatalf("after switch, the %s token answers %d", name, got)
		}
	}
	if got := readBot(owner, botID, sealedByOld); got != http.StatusOK {
		t.Fatalf("after switch, a consistency token sealed under the old key answers %d", got)
	}
	_, sealedByNew := writeBot("after-switch")
	var page checkpointPage
	eventually(t, "a checkpoint signed with the new key", func() bool {
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/checkpoints?limit=500", auditor, nil).json(t, &page)
		return slices.ContainsFunc(page.Items, func(c chain.Checkpoint) bool { return c.KeyID == newKey.KeyID })
	})
	var report chain.Report
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/verify", auditor, nil).json(t, &report)
	if !report.OK || len(report.Findings) != 0 {
		t.Fatalf("after switch, the chain of checkpoints of both keys does not verify: %+v", report)
	}

	// A corrupt file: the keys in use stay, and the error is logged.
	if err := os.WriteFile(path, []byte(`{"keys":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the corrupt file is logged", func() bool { return strings.Contains(logs.String(), "issuer key set file not reloaded") })
	if h.app.Issuer.KeyID() != newKey.KeyID || !published(oldKey, newKey.KeyID)() {
		t.Fatalf("a corrupt file changed the keys: signing %s, published %v", h.app.Issuer.KeyID(), jwksKids(t, h))
	}
	if _, err := h.app.ReloadIssuerKeys(); err == nil || !strings.Contains(err.Error(), "not a JSON Web Key Set") {
		t.Fatalf("ReloadIssuerKeys on a corrupt file: %v", err)
	}
	for name, token := range map[string]string{"old": owner, "new": minted} {
		if got := status(token); got != http.StatusOK {
			t.Fatalf("with a corrupt file, the %s token answers %d", name, got)
		}
	}

	// Remove the old key.
	rewrite(newKey)
	eventually(t, "the JWKS drops the removed key", published(newKey.KeyID))
	if got := status(owner); got != http.StatusUnauthorized {
		t.Fatalf("after remove, a token of the removed key answers %d, want 401", got)
	}
	if got := status(minted); got != http.StatusOK {
		t.Fatalf("after remove, a token of the new key answers %d", got)
	}
	if got := readBot(minted, botID, sealedByOld); got != http.StatusBadRequest {
		t.Fatalf("after remove, a consistency token sealed under the removed key answers %d, want 400", got)
	}
	if got := readBot(minted, botID, sealedByNew); got != http.StatusOK {
		t.Fatalf("after remove, a consistency token sealed under the new key answers %d", got)
	}
	if n := strings.Count(logs.String(), "issuer key set reloaded"); n != 3 {
		t.Errorf("%d log lines of a reload, want 3 (add, switch, remove):\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "issuer key set file not reloaded"); n != 1 {
		t.Errorf("the corrupt file was logged %d times, want once", n)
	}
}

// TestIssuerKeysReloadDuringRequests reloads the key set file again and
// again, alternating the signing key, while requests are verified and
// consistency tokens sealed and opened: a token of the key that stays in
// every set never fails, nor does a consistency token sealed under it.
// Run with -race.
func TestIssuerKeysReloadDuringRequests(t *testing.T) {
	t.Parallel()
	path, _ := writeKeySet(t, 1)
	keys, err := identity.ReadIssuerKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	stay, a, b := keys[0], mustGenerate(t), mustGenerate(t)
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) {
		cfg.IssuerKeys = path
		cfg.IssuerKeysPoll = -1 // reloads are this test's, by ReloadIssuerKeys
	})
	_, owner := h.createOrg("Acme", "olivia")
	r := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{
		"name": "steady", "instructions": "Answer", "grants": map[string]any{"tools": []string{"search"}},
	})
	var bot struct {
		ID string `json:"id"`
	}
	r.json(t, &bot)
	sealed := r.header.Get("Palisade-Consistency")

	done := make(chan struct{})
	failures := make(chan string, 4)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if got := h.do(http.MethodGet, "/v1/bots", owner, nil).status; got != http.StatusOK {
					failures <- "a token of the key in every set answered " + http.StatusText(got)
					return
				}
				if got := h.do(http.MethodGet, "/v1/bots/"+bot.ID+"?consistency="+url.QueryEscape(sealed), owner, nil).status; got != http.StatusOK {
					failures <- "a consistency token of the key in every set answered " + http.StatusText(got)
					return
				}
			}
		}()
	}
	for n := range 40 {
		next := []identity.IssuerKey{stay, a}
		if n%2 == 1 {
			next = []identity.IssuerKey{b, stay}
		}
		if err := identity.WriteIssuerKeys(path, next, false); err != nil {
			t.Fatal(err)
		}
		if changed, err := h.app.ReloadIssuerKeys(); err != nil || !changed {
			t.Fatalf("reload %d: changed %v, %v", n, changed, err)
		}
		if changed, err := h.app.ReloadIssuerKeys(); err != nil || changed {
			t.Fatalf("reload %d of an unchanged file: changed %v, %v", n, changed, err)
		}
	}
	close(done)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Fatal(f)
	}
}

// TestIssuerKeysBadReloadKeepsTheKeys: every way a rewritten key set file
// can be unusable is refused by a reload with a message naming the
// problem, and the server keeps signing, publishing and verifying with
// the keys it had.
func TestIssuerKeysBadReloadKeepsTheKeys(t *testing.T) {
	t.Parallel()
	path, kids := writeKeySet(t, 2)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(good, &set); err != nil {
		t.Fatal(err)
	}
	publicOnly := map[string]any{}
	for k, v := range set.Keys[1] {
		if k != "d" {
			publicOnly[k] = v
		}
	}
	withoutD, _ := json.Marshal(map[string]any{"keys": []any{set.Keys[0], publicOnly}})
	onlySecond, _ := json.Marshal(map[string]any{"keys": []any{set.Keys[1]}})
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) {
		cfg.IssuerKeys, cfg.IssuerSigningKID = path, kids[0] // pinned
		cfg.IssuerKeysPoll = -1
	})
	org, owner := h.createOrg("Acme", "olivia")
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"half written", string(good[:len(good)/2]), 0o600, "not a JSON Web Key Set"},
		{"no key", `{"keys":[]}`, 0o600, "holds no key"},
		{"a key without its private part", string(withoutD), 0o600, `private part ("d") is missing`},
		{"readable by others", string(good), 0o644, "chmod 600"},
		{"the pinned signing kid gone", string(onlySecond), 0o600, "is not in the key set"},
	}
	for _, tt := range tests {
		if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		changed, err := h.app.ReloadIssuerKeys()
		if changed || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: reload changed %v, %v; want a refusal naming %q", tt.name, changed, err, tt.want)
		}
		if got := h.app.Issuer.KeyID(); got != kids[0] {
			t.Errorf("%s: the server signs with %s, want %s", tt.name, got, kids[0])
		}
		if got, want := jwksKids(t, h), slices.Sorted(slices.Values(kids)); !slices.Equal(got, want) {
			t.Errorf("%s: the server publishes %v, want %v", tt.name, got, want)
		}
		if got := h.do(http.MethodGet, "/v1/bots", owner, nil).status; got != http.StatusOK {
			t.Errorf("%s: the owner's token answers %d", tt.name, got)
		}
		if got := h.do(http.MethodGet, "/v1/bots", h.userToken(org, "olivia"), nil).status; got != http.StatusOK {
			t.Errorf("%s: a token minted now answers %d", tt.name, got)
		}
	}
}
