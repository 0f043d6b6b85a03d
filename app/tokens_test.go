package app_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
)

// The token attack suite: hostile, forged, stale and misused bearer tokens
// sent over real HTTP to protected endpoints. Every one must be refused with
// 401 (or 403 where the token is genuine but the action is not allowed), and
// every refusal must be on the record. The verifier's unit tests cover the
// parser in depth; these check that the whole server fails closed.
//
// The denial recorder is rate limited (50/s, burst 100, per server and
// security stream); each test with many denials starts its own server and
// stays under the burst, and TestTokenAttackDenialFloodIsCounted checks what
// happens above it.

// tokMaxDenials keeps a test under the recorder's burst, so that every
// denial it provokes is recorded one by one.
const tokMaxDenials = 90

// TestTokenAttackForgedAndInvalid sends tokens that must never verify, and
// genuine ones whose scope cannot be understood. The denial of an unverified
// token names no org and no subject, because nothing in it is believed.
func TestTokenAttackForgedAndInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	f := tokNewForger(t, h)

	// Guard: the forger's valid token is accepted, so each refusal below is
	// due to the one thing the case changes.
	valid := f.sign(t, f.header(), f.claims(org, "alice"))
	if r := tokBearer(t, h, http.MethodGet, "/v1/org", valid, nil); r.status != http.StatusOK {
		t.Fatalf("forged-but-valid base token refused: %d %s", r.status, r.body)
	}

	// The published public key, as an attacker would fetch it.
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
			X   string `json:"x"`
		} `json:"keys"`
	}
	h.must(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", nil).json(t, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kid != f.kid {
		t.Fatalf("JWKS %+v", jwks)
	}
	public, err := base64.RawURLEncoding.DecodeString(jwks.Keys[0].X)
	if err != nil || len(public) != ed25519.PublicKeySize {
		t.Fatalf("JWKS x %q: %v", jwks.Keys[0].X, err)
	}
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	hdr := f.header()
	claims := f.claims(org, "alice")
	now := time.Now()
	garbage := make([]byte, 256)
	_, _ = rand.Read(garbage)
	other := h.userToken(org, "alice")
	otherSig := other[strings.LastIndexByte(other, '.')+1:]
	unverified := tokDenial{org: access.PlatformScope}
	because := func(reason string) tokDenial { d := unverified; d.reason = reason; return d }

	cases := []struct {
		name  string
		auth  string // the whole Authorization header value
		token string
		want  tokDenial
	}{
		// Algorithms.
		{name: "alg none", token: tokWithSignature(t, tokWith(hdr, "alg", "none"), claims, nil), want: because(identity.ReasonAlgorithm)},
		{name: "alg None", token: tokWithSignature(t, tokWith(hdr, "alg", "None"), claims, nil), want: because(identity.ReasonAlgorithm)},
		{name: "alg noNE", token: tokWithSignature(t, tokWith(hdr, "alg", "noNE"), claims, nil), want: because(identity.ReasonAlgorithm)},
		{name: "alg none without kid", token: tokWithSignature(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, nil), want: because(identity.ReasonUnknownKey)},
		{name: "HS256 keyed with the public key bytes", token: tokSignHS256(t, public, tokWith(hdr, "alg", "HS256"), claims), want: because(identity.ReasonAlgorithm)},
		{name: "HS256 keyed with the JWK x string", token: tokSignHS256(t, []byte(jwks.Keys[0].X), tokWith(hdr, "alg", "HS256"), claims), want: because(identity.ReasonAlgorithm)},
		{name: "RS256 with a garbage signature", token: tokWithSignature(t, tokWith(hdr, "alg", "RS256"), claims, garbage), want: because(identity.ReasonAlgorithm)},
		{name: "ES256 with a garbage signature", token: tokWithSignature(t, tokWith(hdr, "alg", "ES256"), claims, garbage[:64]), want: because(identity.ReasonAlgorithm)},
		{name: "EdDSA signed by a stranger's key under our kid", token: tokSignEd25519(t, stranger, hdr, claims), want: because(identity.ReasonBadSignature)},
		{name: "EdDSA with the signature stripped", token: tokWithSignature(t, hdr, claims, nil), want: because(identity.ReasonBadSignature)},
		{name: "EdDSA with another token's signature", token: tokSegment(t, hdr) + "." + tokSegment(t, claims) + "." + otherSig, want: because(identity.ReasonBadSignature)},

		// Registered claims, validly signed.
		{name: "wrong issuer", token: f.sign(t, hdr, tokWith(claims, "iss", "https://evil.test")), want: because(identity.ReasonWrongIssuer)},
		{name: "wrong audience", token: f.sign(t, hdr, tokWith(claims, "aud", "someone-else")), want: because(identity.ReasonWrongAudience)},
		{name: "empty audience", token: f.sign(t, hdr, tokWith(claims, "aud", "")), want: because(identity.ReasonWrongAudience)},
		{name: "empty audience list", token: f.sign(t, hdr, tokWith(claims, "aud", []string{})), want: because(identity.ReasonWrongAudience)},
		{name: "expired", token: f.sign(t, hdr, tokWith(claims, "exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix(), "nbf", now.Add(-2*time.Hour).Unix())), want: because(identity.ReasonExpired)},
		{name: "missing exp", token: f.sign(t, hdr, tokWith(claims, "exp", nil)), want: because(identity.ReasonBadClaims)},
		{name: "exp zero", token: f.sign(t, hdr, tokWith(claims, "exp", 0)), want: because(identity.ReasonBadClaims)},
		{name: "exp a string", token: f.sign(t, hdr, tokWith(claims, "exp", fmt.Sprint(now.Add(time.Hour).Unix()))), want: because(identity.ReasonBadClaims)},
		{name: "nbf in the future", token: f.sign(t, hdr, tokWith(claims, "nbf", now.Add(time.Hour).Unix())), want: because(identity.ReasonNotYetValid)},
		{name: "iat in the future", token: f.sign(t, hdr, tokWith(claims, "iat", now.Add(time.Hour).Unix())), want: because(identity.ReasonNotYetValid)},

		// Key selection.
		{name: "unknown kid", token: f.sign(t, tokWith(hdr, "kid", "not-our-key"), claims), want: because(identity.ReasonUnknownKey)},
		{name: "kid path traversal", token: f.sign(t, tokWith(hdr, "kid", "../../etc/passwd"), claims), want: because(identity.ReasonUnknownKey)},
		{name: "kid SQL injection", token: f.sign(t, tokWith(hdr, "kid", "' OR 1=1 --"), claims), want: because(identity.ReasonUnknownKey)},
		{name: "kid of 10 KB", token: f.sign(t, tokWith(hdr, "kid", strings.Repeat("K", 10<<10)), claims), want: because(identity.ReasonTooLarge)},

		// A validly signed token with its payload edited.
		{name: "tampered org", token: tokTamper(t, owner, "org", uuid.NewString()), want: because(identity.ReasonBadSignature)},
		{name: "tampered sub", token: tokTamper(t, h.userToken(org, "mallory"), "sub", "alice"), want: because(identity.ReasonBadSignature)},
		{name: "tampered kind to platform", token: tokTamper(t, owner, "kind", identity.KindPlatform, "org", nil), want: because(identity.ReasonBadSignature)},
		{name: "tampered exp", token: tokTamper(t, h.tokMint(identity.Claims{Kind: identity.KindUser, Org: org}, "alice", time.Second), "exp", now.Add(24*time.Hour).Unix()), want: because(identity.ReasonBadSignature)},

		// The header itself.
		{name: "no Authorization header", auth: "", want: because("missing_token")},
		{name: "Basic scheme", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:hunter2")), want: because("malformed")},
		{name: "Basic scheme carrying a valid token", auth: "Basic " + valid, want: because("malformed")},
		{name: "Bearer with an empty token", auth: "Bearer ", want: because("malformed")},
		{name: "Bearer alone", auth: "Bearer", want: because("malformed")},
		{name: "Bearer with spaces only", auth: "Bearer    ", want: because("malformed")},
		{name: "two tokens", auth: "Bearer " + valid + " " + valid, want: because(identity.ReasonMalformed)},
		{name: "token without scheme", auth: valid, want: because("malformed")},

		// Genuine token, unusable scope: the denial names the org and subject.
		{name: "scope naming an unknown permission", token: h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots:read bots:fly"}, "alice"),
			want: tokDenial{reason: "bad_scope", org: org, subject: "alice"}},
		{name: "scope naming a known and an unknown permission", token: h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots:read orgs:create"}, "alice"),
			want: tokDenial{reason: "bad_scope", org: org, subject: "alice"}},
	}
	if n := len(cases) * len(tokEndpoints); n > tokMaxDenials {
		t.Fatalf("%d denials would exceed the recorder's burst; split the test", n)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			auth := tc.auth
			if tc.token != "" {
				auth = "Bearer " + tc.token
			}
			for _, ep := range tokEndpoints {
				r := tokSend(t, h, ep.method, ep.path, auth, ep.body)
				tokRequireUnauthorized(t, r, auth)
				tokRequireDenial(t, h, r, ep.method, ep.path, auth, tc.want)
			}
		})
	}
}

// tokMint mints a token for sub with a chosen lifetime.
func (h *harness) tokMint(c identity.Claims, sub string, ttl time.Duration) string {
	h.t.Helper()
	c.Subject = sub
	tok, err := h.app.Issuer.Mint(c, ttl)
	if err != nil {
		h.t.Fatalf("mint: %v", err)
	}
	return tok
}

// TestTokenAttackKeyURLHeaders checks that jku, x5u, jwk and x5c headers
// never make the server fetch or trust a key: the attacker's key server
// sees no request, whatever the token is signed with.
func TestTokenAttackKeyURLHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, _ := h.createOrg("Acme", "alice")
	f := tokNewForger(t, h)

	attackerPub, attackerKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(attackerPub)
	attackerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "attacker", "alg": "EdDSA", "use": "sig"}
	var hits atomic.Int64
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{attackerJWK}})
	}))
	t.Cleanup(keys.Close)

	claims := f.claims(org, "alice")
	base := f.header()
	cert := base64.StdEncoding.EncodeToString([]byte("not a certificate"))
	cases := []struct {
		name   string
		header map[string]any
		key    ed25519.PrivateKey
	}{
		{"jku to the attacker, attacker's kid, attacker-signed", tokWith(base, "jku", keys.URL+"/jwks.json", "kid", "attacker"), attackerKey},
		{"jku to the attacker, our kid, attacker-signed", tokWith(base, "jku", keys.URL+"/jwks.json"), attackerKey},
		{"x5u to the attacker, attacker-signed", tokWith(base, "x5u", keys.URL+"/cert.pem"), attackerKey},
		{"embedded jwk of the attacker, attacker-signed", tokWith(base, "jwk", attackerJWK), attackerKey},
		{"x5c chain, attacker-signed", tokWith(base, "x5c", []string{cert}), attackerKey},
		// Correctly signed by our key: the headers still are never followed.
		{"jku to the attacker, signed by our key", tokWith(base, "jku", keys.URL+"/jwks.json"), f.key},
		{"x5u to the attacker, signed by our key", tokWith(base, "x5u", keys.URL+"/cert.pem"), f.key},
		{"embedded jwk, signed by our key", tokWith(base, "jwk", attackerJWK), f.key},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token := tokSignEd25519(t, tc.key, tc.header, claims)
			for _, ep := range tokEndpoints {
				r := tokBearer(t, h, ep.method, ep.path, token, ep.body)
				tokRequireUnauthorized(t, r, token)
				tokRequireDenial(t, h, r, ep.method, ep.path, token, tokDenial{reason: identity.ReasonBadHeader, org: access.PlatformScope})
			}
		})
	}
	t.Cleanup(func() {
		// Runs after the parallel subtests.
		if n := hits.Load(); n != 0 {
			t.Errorf("the attacker's key server was contacted %d times", n)
		}
	})
}

// tokServiceAccount is a created service account and its token's jti.
type tokServiceAccount struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	jti       string
}

func (h *harness) tokCreateServiceAccount(token, name string, perms ...string) tokServiceAccount {
	h.t.Helper()
	var sa tokServiceAccount
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", token,
		map[string]any{"name": name, "permissions": perms}).json(h.t, &sa)
	sa.jti, _ = tokPayload(h.t, sa.Token)["jti"].(string)
	if sa.ID == "" || sa.jti == "" {
		h.t.Fatalf("service account %+v", sa)
	}
	return sa
}

// TestTokenAttackGenuineTokensOfNobody sends validly signed tokens whose
// subject is not, or no longer, a principal of the org they name: removed
// members, revoked or replaced service-account tokens, subjects of the wrong
// kind or org. Each is refused on the next request, and the refusal is
// recorded in the named org's security stream, where its auditor reads it.
func TestTokenAttackGenuineTokensOfNobody(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	globex, globexOwner := h.createOrg("Globex", "gary")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	globexAuditor := h.addMember(globex, globexOwner, "gina", "auditor")
	mallory := h.addMember(org, owner, "mallory", "builder")
	f := tokNewForger(t, h)

	// Before: the tokens work.
	ci := h.tokCreateServiceAccount(owner, "ci", "bots:read")
	deploy := h.tokCreateServiceAccount(owner, "deploy", "bots:read")
	h.must(http.StatusOK, http.MethodGet, "/v1/org", mallory, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", ci.Token, nil)
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", deploy.Token, nil)

	// Then: mallory is removed, ci revoked.
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/mallory", owner, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/service-accounts/"+ci.ID, owner, nil)

	mintService := func(org, id, jti string) string {
		tok, err := h.app.Issuer.MintServiceToken(org, id, jti, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("mint service token: %v", err)
		}
		return tok
	}
	nowhere := uuid.NewString()
	nobody := func(org, subject string) tokDenial {
		return tokDenial{reason: "unknown_principal", org: org, subject: subject}
	}
	cases := []struct {
		name  string
		token string
		want  tokDenial
	}{
		{"removed member", mallory, nobody(org, "mallory")},
		{"revoked service account", ci.Token, nobody(org, ci.ID)},
		{"service token with a jti that was never issued", mintService(org, deploy.ID, uuid.NewString()), nobody(org, deploy.ID)},
		{"service token moved to another org", mintService(globex, deploy.ID, deploy.jti), nobody(globex, deploy.ID)},
		{"user token whose sub is a service account", h.userToken(org, deploy.ID), nobody(org, deploy.ID)},
		{"service token whose sub is a member", mintService(org, "alice", deploy.jti), nobody(org, "alice")},
		{"user token for an org the user is not in", h.userToken(globex, "alice"), nobody(globex, "alice")},
		{"service token forged with the right jti but kind user", f.sign(t, f.header(), tokWith(f.claims(org, deploy.ID), "jti", deploy.jti)), nobody(org, deploy.ID)},
		// No such org: recorded in the platform's record, so that tokens
		// cannot open security streams for organizations that do not exist.
		{"user token for an org that does not exist", h.userToken(nowhere, "alice"),
			tokDenial{reason: "unknown_organization", org: access.PlatformScope, subject: "alice"}},
	}
	if n := len(cases) * len(tokEndpoints); n > tokMaxDenials {
		t.Fatalf("%d denials would exceed the recorder's burst", n)
	}
	type recorded struct {
		correlation, org string
	}
	var mu sync.Mutex
	var all []recorded
	t.Run("refused", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				for _, ep := range tokEndpoints {
					r := tokBearer(t, h, ep.method, ep.path, tc.token, ep.body)
					tokRequireUnauthorized(t, r, tc.token)
					tokRequireDenial(t, h, r, ep.method, ep.path, tc.token, tc.want)
					mu.Lock()
					all = append(all, recorded{r.correlation, tc.want.org})
					mu.Unlock()
				}
			})
		}
	})

	// The token that was issued still works: the refusals above are about
	// the token, not the account.
	h.must(http.StatusOK, http.MethodGet, "/v1/bots", deploy.Token, nil)

	// The auditors read their own org's denials through the API, and only
	// those.
	head, err := h.app.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Engine.WaitFor(context.Background(), head); err != nil {
		t.Fatal(err)
	}
	seen := func(token string) map[string]bool {
		var page struct {
			Items []struct {
				Type          string `json:"type"`
				OrgID         string `json:"org_id"`
				CorrelationID string `json:"correlation_id"`
			} `json:"items"`
		}
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=AuthenticationDenied&limit=500", token, nil).json(t, &page)
		out := map[string]bool{}
		for _, e := range page.Items {
			if e.Type != "AuthenticationDenied" {
				t.Errorf("type filter returned %s", e.Type)
			}
			out[e.CorrelationID] = true
		}
		return out
	}
	acme, glob := seen(auditor), seen(globexAuditor)
	for _, rec := range all {
		inAcme, inGlobex := acme[rec.correlation], glob[rec.correlation]
		switch rec.org {
		case org:
			if !inAcme || inGlobex {
				t.Errorf("denial %s of Acme: seen by Acme's auditor %v, by Globex's %v", rec.correlation, inAcme, inGlobex)
			}
		case globex:
			if inAcme || !inGlobex {
				t.Errorf("denial %s of Globex: seen by Acme's auditor %v, by Globex's %v", rec.correlation, inAcme, inGlobex)
			}
		default:
			if inAcme || inGlobex {
				t.Errorf("denial %s of org %s seen by another org's auditor", rec.correlation, rec.org)
			}
		}
	}
}

// TestTokenAttackGenuineTokensBeyondTheirReach sends valid tokens of real
// principals to actions they may not take: 403, recorded as AccessDenied.
func TestTokenAttackGenuineTokensBeyondTheirReach(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	manager := h.tokCreateServiceAccount(owner, "sa-admin", "service-accounts:manage", "bots:read", "bots:manage")
	f := tokNewForger(t, h)
	body := []byte(`{"name":"x"}`)
	saBody := []byte(`{"name":"child","permissions":["bots:read"]}`)

	t.Run("service account creating a service account", func(t *testing.T) {
		t.Parallel()
		r := tokBearer(t, h, http.MethodPost, "/v1/service-accounts", manager.Token, saBody)
		tokRequireProblem(t, r, http.StatusForbidden)
		if got := tokEventsOf(t, h, "AccessDenied", r.correlation); len(got) != 1 {
			// Regression guard: this 403 once came after authorize and was
			// never recorded (invariant 6).
			t.Fatalf("regression: 403 for a service account creating a service account is not recorded (%d AccessDenied)", len(got))
		}
	})
	t.Run("platform token on org endpoints", func(t *testing.T) {
		t.Parallel()
		for _, ep := range []tokEndpoint{
			{http.MethodGet, "/v1/org", nil},
			{http.MethodGet, "/v1/members", nil},
			{http.MethodGet, "/v1/bots", nil},
			{http.MethodGet, "/v1/audit/events", nil},
			{http.MethodPost, "/v1/bots", body},
			{http.MethodPost, "/v1/members", []byte(`{"sub":"eve","roles":["owner"]}`)},
			{http.MethodPost, "/v1/service-accounts", saBody},
		} {
			r := tokBearer(t, h, ep.method, ep.path, h.platform, ep.body)
			tokRequireProblem(t, r, http.StatusForbidden)
			tokRequireAccessDenied(t, h, r, access.PlatformScope, "platform-ops")
			if strings.Contains(string(r.body), org) {
				t.Errorf("%s %s leaks the org id: %s", ep.method, ep.path, r.body)
			}
		}
	})
	// An owner of its own: a principal's denials of one permission are
	// recorded in full once per window, then counted, and the subtests
	// below deny alice some of the same permissions.
	h.addMember(org, owner, "olive", "owner")
	t.Run("owner token narrowed by scope", func(t *testing.T) {
		t.Parallel()
		scoped := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots:read"}, "olive")
		if r := tokBearer(t, h, http.MethodGet, "/v1/bots", scoped, nil); r.status != http.StatusOK {
			t.Fatalf("GET /v1/bots with scope bots:read = %d %s", r.status, r.body)
		}
		for _, ep := range []tokEndpoint{
			{http.MethodPost, "/v1/bots", body},
			{http.MethodGet, "/v1/org", nil},
			{http.MethodGet, "/v1/members", nil},
			{http.MethodPost, "/v1/members", []byte(`{"sub":"eve","roles":["owner"]}`)},
			{http.MethodPost, "/v1/service-accounts", saBody},
			{http.MethodGet, "/v1/audit/events", nil},
		} {
			r := tokBearer(t, h, ep.method, ep.path, scoped, ep.body)
			tokRequireProblem(t, r, http.StatusForbidden)
			tokRequireAccessDenied(t, h, r, org, "olive")
		}
	})
	t.Run("service account token narrowed by scope", func(t *testing.T) {
		t.Parallel()
		// The account's own token, re-signed with a scope: the jti matches,
		// so only the scope stands between it and bots:manage.
		claims := tokWith(tokPayload(t, manager.Token), "scope", "bots:read")
		scoped := f.sign(t, f.header(), claims)
		if r := tokBearer(t, h, http.MethodGet, "/v1/bots", scoped, nil); r.status != http.StatusOK {
			t.Fatalf("GET /v1/bots = %d %s", r.status, r.body)
		}
		r := tokBearer(t, h, http.MethodPost, "/v1/bots", scoped, body)
		tokRequireProblem(t, r, http.StatusForbidden)
		tokRequireAccessDenied(t, h, r, org, manager.ID)
		// Unscoped, the same account may.
		if r := tokBearer(t, h, http.MethodPost, "/v1/bots", manager.Token, body); r.status != http.StatusCreated {
			t.Fatalf("POST /v1/bots unscoped = %d %s", r.status, r.body)
		}
	})
	t.Run("scope naming no permission at all", func(t *testing.T) {
		t.Parallel()
		// "bots.read" is a typo of bots:read. A scope is present, so the
		// token must be narrowed: to nothing, or refused.
		scoped := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots.read"}, "alice")
		r := tokBearer(t, h, http.MethodPost, "/v1/bots", scoped, body)
		if r.status == http.StatusCreated {
			// Regression guard: entries without a colon were once dropped,
			// leaving no narrowing at all.
			t.Fatalf("regression: an owner token with scope %q kept all its permissions: %s", "bots.read", r.body)
		}
		if r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
			t.Fatalf("status %d %s, want 403 or 401", r.status, r.body)
		}
	})
	t.Run("OpenID Connect scopes narrow nothing, permissions beside them do", func(t *testing.T) {
		t.Parallel()
		oidc := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "openid profile"}, "alice")
		if r := tokBearer(t, h, http.MethodPost, "/v1/bots", oidc, body); r.status != http.StatusCreated {
			t.Fatalf("owner token with scope \"openid profile\" = %d %s, want 201", r.status, r.body)
		}
		mixed := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "openid bots:read"}, "alice")
		r := tokBearer(t, h, http.MethodPost, "/v1/bots", mixed, body)
		tokRequireProblem(t, r, http.StatusForbidden)
	})
	t.Run("narrowed token replaying a wider token's idempotent response", func(t *testing.T) {
		t.Parallel()
		key := "tok-" + uuid.NewString()
		created := tokSend(t, h, http.MethodPost, "/v1/service-accounts", "Bearer "+owner, saBody, "Idempotency-Key", key)
		if created.status != http.StatusCreated {
			t.Fatalf("create = %d %s", created.status, created.body)
		}
		// The same owner, through a token narrowed to bots:read, sends the
		// same request and key: it may not create service accounts, so it
		// must not be handed the one created before, with its token.
		scoped := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots:read"}, "alice")
		r := tokSend(t, h, http.MethodPost, "/v1/service-accounts", "Bearer "+scoped, saBody, "Idempotency-Key", key)
		if r.status == http.StatusCreated {
			// Regression guard: replays were once keyed by org and subject
			// only, whatever the token's permissions.
			t.Fatalf("regression: a token scoped to bots:read was replayed a service account's token (Idempotent-Replayed: %q)", r.header.Get("Idempotent-Replayed"))
		}
		tokRequireProblem(t, r, http.StatusForbidden)
	})
	t.Run("platform token narrowed by scope", func(t *testing.T) {
		t.Parallel()
		scoped := h.mint(identity.Claims{Kind: identity.KindPlatform, Scope: "bots:read"}, "platform-ops")
		r := tokBearer(t, h, http.MethodPost, "/v1/orgs", scoped, []byte(`{"name":"Scoped","owner_sub":"sam"}`))
		if r.status == http.StatusCreated {
			// Regression guard: a platform token's scope was once ignored.
			t.Fatalf("regression: a platform token scoped to bots:read created an organization: %s", r.body)
		}
		tokRequireProblem(t, r, http.StatusForbidden)
	})
}

// TestTokenAttackScopeCannotWiden checks that a viewer's token with a scope
// naming permissions the viewer lacks gains nothing.
func TestTokenAttackScopeCannotWiden(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	h.addMember(org, owner, "victor", "viewer")
	wide := h.mint(identity.Claims{Kind: identity.KindUser, Org: org, Scope: "bots:manage members:manage owners:manage org:delete"}, "victor")
	r := tokBearer(t, h, http.MethodPost, "/v1/bots", wide, []byte(`{"name":"x"}`))
	tokRequireProblem(t, r, http.StatusForbidden)
	tokRequireAccessDenied(t, h, r, org, "victor")
	r = tokBearer(t, h, http.MethodPost, "/v1/members", wide, []byte(`{"sub":"victor2","roles":["owner"]}`))
	tokRequireProblem(t, r, http.StatusForbidden)
}

// TestTokenAttackDenialFloodIsCounted floods the server with garbage tokens
// past the recorder's burst. Recording is rate limited, but no denial goes
// unaccounted: each is either an event or counted in the next event's
// suppressed, and the metric counts them all.
func TestTokenAttackDenialFloodIsCounted(t *testing.T) {
	t.Parallel()
	// A low rate, so that a loaded machine still sends faster than the
	// recorder refills.
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.AuthDenialRate, cfg.AuthDenialBurst = 5, 20 })
	const garbage = "Bearer e30.e30.e30"
	var sent atomic.Int64
	flood := func(n int) {
		var wg sync.WaitGroup
		next := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				for range next {
					// Not tokSend: t.Fatal must not be called off the test goroutine.
					req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/v1/org", nil)
					req.Header.Set("Authorization", garbage)
					resp, err := h.srv.Client().Do(req)
					if err != nil {
						t.Errorf("flood: %v", err)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("flood: status %d", resp.StatusCode)
					}
					sent.Add(1)
				}
			})
		}
		for range n {
			next <- struct{}{}
		}
		close(next)
		wg.Wait()
	}
	// Flood until some denial was suppressed (the burst is 20, so this is
	// the first round on any machine that sends more than 5 requests a
	// second).
	for round := 0; ; round++ {
		flood(150)
		if int64(len(tokEvents(t, h, "AuthenticationDenied"))) < sent.Load() {
			break
		}
		if round == 20 {
			t.Fatalf("%d denials, all recorded: the recorder is not rate limited", sent.Load())
		}
	}
	// Wait for the limiter to refill, one request at a time, until one is
	// recorded; it carries the count suppressed since the last one.
	for i := 0; ; i++ {
		r := tokSend(t, h, http.MethodGet, "/v1/org", garbage, nil)
		sent.Add(1)
		if len(tokEventsOf(t, h, "AuthenticationDenied", r.correlation)) == 1 {
			break
		}
		if i == 500 {
			t.Fatal("no denial recorded after the flood")
		}
		time.Sleep(10 * time.Millisecond)
	}
	evs := tokEvents(t, h, "AuthenticationDenied")
	var suppressed uint64
	for _, e := range evs {
		n, _ := e.data["suppressed"].(float64)
		suppressed += uint64(n)
	}
	if got := uint64(len(evs)) + suppressed; got != uint64(sent.Load()) {
		t.Errorf("%d recorded + %d suppressed = %d, want every one of %d denials", len(evs), suppressed, got, sent.Load())
	}
	if suppressed == 0 {
		t.Error("nothing suppressed")
	}
	// The metric counts all of them.
	families, err := h.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, mf := range families {
		if mf.GetName() == "palisade_authentication_denied_total" {
			for _, m := range mf.GetMetric() {
				counted += m.GetCounter().GetValue()
			}
		}
	}
	if int64(counted) != sent.Load() {
		t.Errorf("palisade_authentication_denied_total = %v, want %d", counted, sent.Load())
	}
}

// tokRawRequest sends a raw HTTP/1.1 request on a new connection and
// returns the status. The request is written concurrently with reading the
// answer, because a server may answer (and close) before reading it all.
func tokRawRequest(t testing.TB, addr string, req []byte) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = conn.Write(req) // fails once the server hangs up
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	conn.Close()
	<-written
	return resp.StatusCode
}

// tokDotsRequest is a GET /v1/org whose bearer token is size dots.
func tokDotsRequest(size int) []byte {
	return []byte("GET /v1/org HTTP/1.1\r\nHost: palisade.test\r\nAuthorization: Bearer " +
		strings.Repeat(".", size) + "\r\nConnection: close\r\n\r\n")
}

// tokRequireRefusedEarly accepts the answers to an oversized credential:
// 401 from the middleware, or 431/413 when the server refuses the header.
func tokRequireRefusedEarly(t testing.TB, status int) {
	t.Helper()
	switch status {
	case http.StatusUnauthorized, http.StatusRequestHeaderFieldsTooLarge, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("status %d, want 401, 431 or 413", status)
	}
}

// TestTokenAttackHugeTokenOfDots sends megabytes of dots as a bearer token
// to the production listener (App.ListenAndServe). Each is refused without
// allocating in proportion to the token: 50 requests of 4 MB and 50 of
// 16 MB (800 MB if proportional) both stay under a generous 64 MB. Not
// parallel: it measures the heap, which other tests would disturb.
func TestTokenAttackHugeTokenOfDots(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- h.app.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrs <- a.String() })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-served:
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	const requests = 50
	const limit = 64 << 20
	for _, size := range []int{4 << 20, 16 << 20} {
		req := tokDotsRequest(size)
		tokRequireRefusedEarly(t, tokRawRequest(t, addr, req)) // warm up
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range requests {
			tokRequireRefusedEarly(t, tokRawRequest(t, addr, req))
		}
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%d requests of %d MB of dots: %.1f MB allocated", requests, size>>20, float64(allocated)/(1<<20))
		if allocated > limit {
			t.Errorf("%d requests of %d MB allocated %d MB, more than %d MB", requests, size>>20, allocated>>20, limit>>20)
		}
	}

	// The test server (net/http defaults) refuses the header too.
	tokRequireRefusedEarly(t, tokRawRequest(t, strings.TrimPrefix(h.srv.URL, "http://"), tokDotsRequest(4<<20)))

	// Below the server's header limit the token reaches the verifier, which
	// refuses it by its length, and the denial is recorded.
	dots := strings.Repeat(".", 32<<10)
	r := tokBearer(t, h, http.MethodGet, "/v1/org", dots, nil)
	tokRequireUnauthorized(t, r, "")
	tokRequireDenial(t, h, r, http.MethodGet, "/v1/org", "", tokDenial{reason: identity.ReasonTooLarge, org: access.PlatformScope})
}
