package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
)

const oidcIssuer = "https://oidc.test/realms/acme"

// jwksServer serves a JWK Set that a test can swap, counting requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	doc  []byte
}

func newJWKSServer(tb testing.TB, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.doc)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = doc
}

// jwksOf publishes public keys with jwkset, as an identity provider would.
func jwksOf(tb testing.TB, keys map[string]any, alg jwkset.ALG) []byte {
	tb.Helper()
	store := jwkset.NewMemoryStorage()
	for kid, key := range keys {
		jwk, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig},
		})
		if err != nil {
			tb.Fatal(err)
		}
		if err := store.KeyWrite(context.Background(), jwk); err != nil {
			tb.Fatal(err)
		}
	}
	doc, err := store.JSONPublic(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

func rsaKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func oidcPayload() map[string]any {
	p := validPayload()
	p["iss"] = oidcIssuer
	return p
}

func TestTrustJWKSURLRSA(t *testing.T) {
	t.Parallel()
	key, other := rsaKey(t), rsaKey(t)
	srv := newJWKSServer(t, jwksOf(t, map[string]any{"rsa-1": &key.PublicKey}, jwkset.AlgRS256))
	trusted, err := TrustJWKSURL(t.Context(), oidcIssuer, srv.URL+"/jwks.json", []string{"RS256"})
	if err != nil {
		t.Fatal(err)
	}
	if trusted.AllowPlatform {
		t.Fatal("an external issuer may mint platform tokens")
	}
	v := mustVerifier(t, VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{trusted}, Now: func() time.Time { return testNow }})
	header := func(alg, kid string) map[string]any { return map[string]any{"alg": alg, "kid": kid, "typ": "JWT"} }
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	platform := oidcPayload()
	platform["kind"] = KindPlatform
	delete(platform, "org")

	good := craft(header("RS256", "rsa-1"), oidcPayload(), rsaSigner(key))
	if c, err := v.Verify(good); err != nil || c.Issuer != oidcIssuer || c.Subject != "user-42" {
		t.Fatalf("token signed by the published key: %+v, %v", c, err)
	}

	cases := []struct {
		name   string
		token  string
		reason string
	}{
		{"signed by another key under the published kid", craft(header("RS256", "rsa-1"), oidcPayload(), rsaSigner(other)), ReasonBadSignature},
		{"unknown kid", craft(header("RS256", "rsa-2"), oidcPayload(), rsaSigner(other)), ReasonUnknownKey},
		{"algorithm not pinned", craft(header("RS512", "rsa-1"), oidcPayload(), rsaSigner(key)), ReasonAlgorithm},
		{"HS256 keyed with the public key PEM", craft(header("HS256", "rsa-1"), oidcPayload(), hmacSigner(pubPEM)), ReasonAlgorithm},
		{"HS256 keyed with the public key DER", craft(header("HS256", "rsa-1"), oidcPayload(), hmacSigner(pubDER)), ReasonAlgorithm},
		{"platform token", craft(header("RS256", "rsa-1"), platform, rsaSigner(key)), ReasonBadClaims},
		{"built-in issuer name", craft(header("RS256", "rsa-1"), validPayload(), rsaSigner(key)), ReasonWrongIssuer},
	}
	for _, tc := range cases {
		c, err := v.Verify(tc.token)
		t.Run(tc.name, func(t *testing.T) { requireRefused(t, tc.token, c, err, tc.reason) })
	}
}

func TestTrustJWKSURLEd25519AndRotation(t *testing.T) {
	t.Parallel()
	idp := mustIssuer(t, t.TempDir(), oidcIssuer)
	doc, _ := idp.JWKS()
	srv := newJWKSServer(t, doc)
	trusted, err := TrustJWKSURL(t.Context(), oidcIssuer, srv.URL, []string{"EdDSA"})
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{trusted}, Now: func() time.Time { return testNow }})
	if _, err := v.Verify(mustMint(t, idp, userClaims(), time.Hour)); err != nil {
		t.Fatalf("token of the published key: %v", err)
	}

	// The provider rotates to a new key: a token naming the new kid makes
	// the key set refresh once, and then verifies; the old key is gone.
	rotated := mustIssuer(t, t.TempDir(), oidcIssuer)
	newDoc, _ := rotated.JWKS()
	srv.serve(newDoc)
	before := srv.hits.Load()
	if _, err := v.Verify(mustMint(t, rotated, userClaims(), time.Hour)); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if srv.hits.Load() != before+1 {
		t.Errorf("rotation fetched the key set %d times, want 1", srv.hits.Load()-before)
	}
	old := mustMint(t, idp, userClaims(), time.Hour)
	c, err := v.Verify(old)
	requireRefused(t, old, c, err, ReasonUnknownKey)
}

// TestMalformedKIDNeverReachesTheKeySet checks that a hostile kid is refused
// before any key lookup: it must not make the JWK Set refresh, which a
// well-formed unknown kid does (once per rate-limit period).
func TestMalformedKIDNeverReachesTheKeySet(t *testing.T) {
	t.Parallel()
	idp := mustIssuer(t, t.TempDir(), oidcIssuer)
	doc, _ := idp.JWKS()
	srv := newJWKSServer(t, doc)
	trusted, err := TrustJWKSURL(t.Context(), oidcIssuer, srv.URL, []string{"EdDSA"})
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{trusted}, MaxTokenBytes: 64 << 10, Now: func() time.Time { return testNow }})
	sign := edSigner(idp.set.Load().private)
	start := srv.hits.Load()
	for _, kid := range []string{strings.Repeat("A", 10<<10), "key\nX-Injected: 1", "x' OR '1'='1", "", "\u0000"} {
		raw := craft(map[string]any{"alg": "EdDSA", "kid": kid}, oidcPayload(), sign)
		c, err := v.Verify(raw)
		requireRefused(t, raw, c, err, ReasonUnknownKey)
	}
	if n := srv.hits.Load() - start; n != 0 {
		t.Fatalf("malformed kids made the key set refresh %d times", n)
	}
	raw := craft(map[string]any{"alg": "EdDSA", "kid": "rotated-key"}, oidcPayload(), sign)
	c, err := v.Verify(raw)
	requireRefused(t, raw, c, err, ReasonUnknownKey)
	if n := srv.hits.Load() - start; n != 1 {
		t.Fatalf("a well-formed unknown kid refreshed the key set %d times, want 1", n)
	}
}

func TestTrustJWKSURLRefusesUnsafeSources(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, []byte(`{"keys":[]}`))
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://idp.example/jwks.json", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)

	cases := []struct {
		name, issuer, url string
		algs              []string
	}{
		{"plain http off loopback", oidcIssuer, "http://idp.example/jwks.json", []string{"RS256"}},
		{"file URL", oidcIssuer, "file:///etc/passwd", []string{"RS256"}},
		{"no scheme", oidcIssuer, "idp.example/jwks.json", []string{"RS256"}},
		{"unreachable", oidcIssuer, closed.URL, []string{"RS256"}},
		{"server error", oidcIssuer, broken.URL, []string{"RS256"}},
		{"redirect to plain http off loopback", oidcIssuer, redirect.URL, []string{"RS256"}},
		{"no issuer", "", srv.URL, []string{"RS256"}},
		{"no algorithms", oidcIssuer, srv.URL, nil},
		{"HMAC", oidcIssuer, srv.URL, []string{"HS256"}},
		{"none", oidcIssuer, srv.URL, []string{"none"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := TrustJWKSURL(t.Context(), tc.issuer, tc.url, tc.algs); err == nil {
				t.Fatal("TrustJWKSURL accepted it")
			}
		})
	}
}

func TestTrustJWKSJSON(t *testing.T) {
	t.Parallel()
	idp := mustIssuer(t, t.TempDir(), oidcIssuer)
	doc, _ := idp.JWKS()
	trusted, err := TrustJWKSJSON(oidcIssuer, doc, []string{"EdDSA"})
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{trusted}, Now: func() time.Time { return testNow }})
	if _, err := v.Verify(mustMint(t, idp, userClaims(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{``, `{}`, `{"keys":[]}`, `not json`} {
		if _, err := TrustJWKSJSON(oidcIssuer, []byte(bad), []string{"EdDSA"}); err == nil {
			t.Errorf("TrustJWKSJSON(%q) succeeded", bad)
		}
	}
}

// TestKeyURLsInHeadersAreNeverFetched points jku, x5u and kid at a server
// holding the attacker's key and checks that nothing ever asks it.
func TestKeyURLsInHeadersAreNeverFetched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, attacker, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evil := newJWKSServer(t, jwksOf(t, map[string]any{"attacker": attacker.Public()}, jwkset.AlgEdDSA))
	jwksURL, certURL := evil.URL+"/jwks.json", evil.URL+"/cert.pem"

	// The trusted external issuer is a JWKS URL too, to cover keyfunc's path.
	idp := mustIssuer(t, t.TempDir(), oidcIssuer)
	idpDoc, _ := idp.JWKS()
	idpSrv := newJWKSServer(t, idpDoc)
	trusted, err := TrustJWKSURL(t.Context(), oidcIssuer, idpSrv.URL, []string{"EdDSA"})
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, VerifierConfig{
		Audience: testAudience,
		Issuers:  []TrustedIssuer{b.issuer.Trusted(), trusted},
		Now:      func() time.Time { return testNow },
	})

	h := func(kv ...any) map[string]any {
		m := map[string]any{"alg": "EdDSA"}
		set(kv...)(m)
		return m
	}
	atk := edSigner(attacker)
	cases := []struct {
		name   string
		token  string
		reason string
	}{
		{"jku with the attacker's key", craft(h("kid", "attacker", "jku", jwksURL), validPayload(), atk), ReasonBadHeader},
		{"x5u with the attacker's key", craft(h("kid", "attacker", "x5u", certURL), validPayload(), atk), ReasonBadHeader},
		{"jku on a genuine token", craft(h("kid", b.issuer.KeyID(), "jku", jwksURL), validPayload(), edSigner(b.issuer.set.Load().private)), ReasonBadHeader},
		{"jku for the JWKS-URL issuer", craft(h("kid", "attacker", "jku", jwksURL), oidcPayload(), atk), ReasonBadHeader},
		{"x5u for the JWKS-URL issuer", craft(h("kid", idp.KeyID(), "x5u", certURL), oidcPayload(), edSigner(idp.set.Load().private)), ReasonBadHeader},
		{"kid naming the attacker's URL", craft(h("kid", jwksURL), validPayload(), atk), ReasonUnknownKey},
		{"kid naming the attacker's URL, JWKS-URL issuer", craft(h("kid", jwksURL), oidcPayload(), atk), ReasonUnknownKey},
		{"attacker's kid, JWKS-URL issuer", craft(h("kid", "attacker"), oidcPayload(), atk), ReasonUnknownKey},
	}
	for _, tc := range cases {
		c, err := v.Verify(tc.token)
		t.Run(tc.name, func(t *testing.T) { requireRefused(t, tc.token, c, err, tc.reason) })
	}
	if n := evil.hits.Load(); n != 0 {
		t.Fatalf("the attacker's server was asked %d times", n)
	}
	// The trusted key set was fetched (at start, and refreshed for unknown
	// kids), so the counter works and the refusals were not for lack of it.
	if idpSrv.hits.Load() == 0 {
		t.Fatal("the trusted JWKS was never fetched")
	}
}

func TestCheckJWKSURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url string
		ok  bool
	}{
		{"https://idp.example/.well-known/jwks.json", true},
		{"https://10.0.0.7:8443/keys", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://[::1]:8080/jwks", true},
		{"http://localhost/jwks", true},
		{"http://idp.example/jwks", false},
		{"http://10.0.0.7/jwks", false},
		{"http://127.0.0.1.evil.test/jwks", false},
		{"http://localhost.evil.test/jwks", false},
		{"https:///jwks", false},
		{"ftp://idp.example/jwks", false},
		{"file:///etc/passwd", false},
		{"/jwks", false},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := checkJWKSURL(u) == nil; got != tc.ok {
			t.Errorf("checkJWKSURL(%s) ok = %v, want %v", tc.url, got, tc.ok)
		}
	}
}

// TestJWKSRedirectsNeverLeaveHTTPS: a key set asked for over https is
// not taken from a redirect to plain http, even on loopback; https to
// https, and http to http on loopback, are followed.
func TestJWKSRedirectsNeverLeaveHTTPS(t *testing.T) {
	t.Parallel()
	req := func(raw string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		from, to string
		ok       bool
	}{
		{"https://idp.example/jwks", "http://127.0.0.1:9000/internal", false},
		{"https://idp.example/jwks", "http://localhost/jwks", false},
		{"https://idp.example/jwks", "https://keys.idp.example/jwks", true},
		{"http://127.0.0.1:8000/jwks", "http://127.0.0.1:9000/jwks", true},
		{"http://127.0.0.1:8000/jwks", "http://internal.example/jwks", false},
	} {
		err := checkJWKSRedirect(req(tt.to), []*http.Request{req(tt.from)})
		if (err == nil) != tt.ok {
			t.Errorf("redirect %s → %s: err = %v, want allowed %v", tt.from, tt.to, err, tt.ok)
		}
	}
}
