package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/palisadehq/palisade/identity"
)

// botNames lists the names of the bots token sees.
func botNames(h *harness, token string) []string {
	h.t.Helper()
	var list struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", token, nil).json(h.t, &list)
	names := make([]string, len(list.Items))
	for i, b := range list.Items {
		names[i] = b.Name
	}
	return names
}

func requireBots(t *testing.T, label string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: bots %q, want %q", label, got, want)
	}
	seen := map[string]int{}
	for _, n := range got {
		seen[n]++
	}
	for _, n := range want {
		if seen[n] == 0 {
			t.Fatalf("%s: bots %q, want %q", label, got, want)
		}
		seen[n]--
	}
}

func requireReplay(t *testing.T, label string, first, again response) {
	t.Helper()
	if again.status != first.status || !bytes.Equal(again.body, first.body) {
		t.Fatalf("%s: replay = %d %s, want %d %s", label, again.status, again.body, first.status, first.body)
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%s: Idempotent-Replayed = %q, want true", label, again.header.Get("Idempotent-Replayed"))
	}
	if again.header.Get("Location") != first.header.Get("Location") || again.header.Get("Content-Type") != first.header.Get("Content-Type") {
		t.Fatalf("%s: replay headers %v, first %v", label, again.header, first.header)
	}
}

// TestIdempotencyKeySurvivesRestart: a key's response is kept in the log,
// so after a restart a retry is answered the original response and a
// different request under the key is refused, per organization and per
// principal.
func TestIdempotencyKeySurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, owner := h.createOrg("Acme", "alice")
	h.addMember(org, owner, "bella", "builder")
	other, _ := h.createOrg("Bravo", "alice")

	body := map[string]any{"name": "once", "instructions": "Be brief."}
	first := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, body, "Idempotency-Key", "restart-1")
	h.close()

	h = openHarness(t, dir)
	owner = h.userToken(org, "alice")
	again := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, body, "Idempotency-Key", "restart-1")
	requireReplay(t, "after a restart", first, again)
	requireBots(t, "after the replay", botNames(h, owner), "once")

	reused := h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/bots", owner,
		map[string]any{"name": "twice"}, "Idempotency-Key", "restart-1")
	if !bytes.Contains(reused.body, []byte("idempotency-key-reused")) {
		t.Fatalf("different body after a restart = %s, want idempotency-key-reused", reused.body)
	}
	h.must(http.StatusUnprocessableEntity, http.MethodPatch, "/v1/bots/"+botID(t, first), owner,
		map[string]any{"name": "renamed"}, "Idempotency-Key", "restart-1")
	requireBots(t, "after a reused key", botNames(h, owner), "once")

	// The same key is another principal's own, and another organization's.
	bella := h.userToken(org, "bella")
	byBella := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", bella, map[string]any{"name": "bella's"}, "Idempotency-Key", "restart-1")
	if byBella.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another principal's key was replayed: %s", byBella.body)
	}
	otherOwner := h.userToken(other, "alice")
	inOther := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", otherOwner, map[string]any{"name": "bravo's"}, "Idempotency-Key", "restart-1")
	if inOther.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another organization's key was replayed: %s", inOther.body)
	}
	requireBots(t, "acme", botNames(h, owner), "once", "bella's")
	requireBots(t, "bravo", botNames(h, otherOwner), "bravo's")
	h.close()

	// And once more, for every key recorded by the second process.
	h = openHarness(t, dir)
	owner, bella, otherOwner = h.userToken(org, "alice"), h.userToken(org, "bella"), h.userToken(other, "alice")
	requireReplay(t, "alice, second restart", first,
		h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, body, "Idempotency-Key", "restart-1"))
	requireReplay(t, "bella, second restart", byBella,
		h.must(http.StatusCreated, http.MethodPost, "/v1/bots", bella, map[string]any{"name": "bella's"}, "Idempotency-Key", "restart-1"))
	requireReplay(t, "bravo, second restart", inOther,
		h.must(http.StatusCreated, http.MethodPost, "/v1/bots", otherOwner, map[string]any{"name": "bravo's"}, "Idempotency-Key", "restart-1"))
	h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/bots", bella, map[string]any{"name": "once"}, "Idempotency-Key", "restart-1")
	requireBots(t, "acme, second restart", botNames(h, owner), "once", "bella's")
	requireBots(t, "bravo, second restart", botNames(h, otherOwner), "bravo's")
}

func botID(t *testing.T, r response) string {
	t.Helper()
	var b struct {
		ID string `json:"id"`
	}
	r.json(t, &b)
	return b.ID
}

// TestIdempotencyKeyNeverRecordsASecret: a service account's one-time
// token is replayed within the process, but never written to the log, so
// after a restart the replay is the recorded body without it.
func TestIdempotencyKeyNeverRecordsASecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, owner := h.createOrg("Acme", "alice")
	body := []byte(`{"name":"child","permissions":["bots:read"]}`)
	first := h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner, body, "Idempotency-Key", "sa-1")
	var created map[string]any
	first.json(t, &created)
	token, _ := created["token"].(string)
	if token == "" {
		t.Fatalf("created service account without a token: %s", first.body)
	}
	same := h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner, body, "Idempotency-Key", "sa-1")
	requireReplay(t, "same process", first, same)

	// The record is in the log (the audit API shows it, content
	// included, to the owner), without the token.
	deadline := time.Now().Add(5 * time.Second)
	for {
		audit := h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?limit=500", owner, nil).body
		if bytes.Contains(audit, []byte(token)) {
			t.Fatalf("the service account's token is in the audit record")
		}
		if bytes.Contains(audit, []byte("IdempotentResponseRecorded")) && bytes.Contains(audit, []byte(`\"name\":\"child\"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no IdempotentResponseRecorded with its body in the audit record: %s", audit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.close()
	eachFile(t, dir, func(path string, data []byte) {
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("the service account's token is in %s", path)
		}
	})

	h = openHarness(t, dir)
	owner = h.userToken(org, "alice")
	again := h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner, body, "Idempotency-Key", "sa-1")
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after a restart: not a replay: %s", again.body)
	}
	var replayed map[string]any
	again.json(t, &replayed)
	if _, ok := replayed["token"]; ok || bytes.Contains(again.body, []byte(token)) {
		t.Fatalf("after a restart the replay carries the token: %s", again.body)
	}
	delete(created, "token")
	want, _ := json.Marshal(created)
	got, _ := json.Marshal(replayed)
	if !bytes.Equal(want, got) {
		t.Fatalf("after a restart replay = %s, want %s without the token", got, want)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/service-accounts", owner, nil).json(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("%d service accounts after the replay, want 1", len(list.Items))
	}
}

// TestIdempotencyKeyCoversTheQuery: the query string is part of the
// request a key stands for (PUT /v1/members/x?issuer=… names another
// member than PUT /v1/members/x), so reusing a key with another query is
// refused, in the process and after a restart, never answered with the
// first request's response.
func TestIdempotencyKeyCoversTheQuery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, owner := h.createOrg("Acme", "alice")
	h.addMember(org, owner, "m1", "builder")
	body := map[string]any{"roles": []string{"admin"}}
	first := h.must(http.StatusOK, http.MethodPut, "/v1/members/m1", owner, body, "Idempotency-Key", "query-1")
	const other = "/v1/members/m1?issuer=https%3A%2F%2Fidp.example.com"
	h.must(http.StatusUnprocessableEntity, http.MethodPut, other, owner, body, "Idempotency-Key", "query-1")
	h.close()

	h = openHarness(t, dir)
	owner = h.userToken(org, "alice")
	h.must(http.StatusUnprocessableEntity, http.MethodPut, other, owner, body, "Idempotency-Key", "query-1")
	requireReplay(t, "the first request after a restart", first,
		h.must(http.StatusOK, http.MethodPut, "/v1/members/m1", owner, body, "Idempotency-Key", "query-1"))
}

// TestIdempotencyKeyOfAnotherRequestNeverReturnsTheFirstResource: a
// create's id is derived from the request its key stands for, so the same
// key under a narrower token of the same member (its own key, as keys are
// per principal as it is now) with another body creates its own resource;
// it is never answered with what the first request created, which that
// token may not even read.
func TestIdempotencyKeyOfAnotherRequestNeverReturnsTheFirstResource(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	first := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner,
		map[string]any{"name": "SecretBot", "instructions": "A secret"}, "Idempotency-Key", "narrow-1")
	narrow := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots:manage"}, "alice")
	second := h.must(http.StatusCreated, http.MethodPost, "/v1/bots", narrow,
		map[string]any{"name": "Different", "instructions": "new text"}, "Idempotency-Key", "narrow-1")
	if bytes.Contains(second.body, []byte("A secret")) || bytes.Contains(second.body, []byte("SecretBot")) {
		t.Fatalf("the narrower token's request was answered with the first bot: %s", second.body)
	}
	if botID(t, second) == botID(t, first) {
		t.Fatalf("both requests name bot %s", botID(t, first))
	}
	requireBots(t, "after both", botNames(h, owner), "SecretBot", "Different")
	// Its own retry is its own replay.
	requireReplay(t, "the narrower token's retry", second, h.must(http.StatusCreated, http.MethodPost, "/v1/bots", narrow,
		map[string]any{"name": "Different", "instructions": "new text"}, "Idempotency-Key", "narrow-1"))
}
