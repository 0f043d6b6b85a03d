package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

const (
	testAudience   = "palisade-api"
	builtinIssuer  = "https://palisade.test"
	externalIssuer = "https://idp.test"
	testOrg        = "0190b5c2-7f3a-7c4e-9d2b-5a1e8f6c3b21"
)

// testNow is the fixed clock of every test: tokens are crafted relative to it.
var testNow = time.Unix(1_800_000_000, 0).UTC()

// bundle is what a test needs: the built-in issuer, a second Ed25519 issuer
// trusted as an external one (no platform tokens), and a verifier trusting
// both, all on a fixed clock.
type bundle struct {
	issuer   *Issuer
	external *Issuer
	verifier *Verifier
	cfg      VerifierConfig
}

func setup(tb testing.TB) *bundle {
	tb.Helper()
	issuer := mustIssuer(tb, tb.TempDir(), builtinIssuer)
	external := mustIssuer(tb, tb.TempDir(), externalIssuer)
	jwks, err := external.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	ext, err := TrustJWKSJSON(externalIssuer, jwks, []string{"EdDSA"})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := VerifierConfig{
		Audience: testAudience,
		Issuers:  []TrustedIssuer{issuer.Trusted(), ext},
		Now:      func() time.Time { return testNow },
	}
	return &bundle{issuer: issuer, external: external, verifier: mustVerifier(tb, cfg), cfg: cfg}
}

func mustIssuer(tb testing.TB, dir, name string) *Issuer {
	tb.Helper()
	iss, err := LoadOrCreateIssuer(dir, name, testAudience)
	if err != nil {
		tb.Fatalf("LoadOrCreateIssuer(%s): %v", dir, err)
	}
	iss.now = func() time.Time { return testNow }
	return iss
}

func mustVerifier(tb testing.TB, cfg VerifierConfig) *Verifier {
	tb.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func mustMint(tb testing.TB, iss *Issuer, c Claims, ttl time.Duration) string {
	tb.Helper()
	tok, err := iss.Mint(c, ttl)
	if err != nil {
		tb.Fatalf("Mint: %v", err)
	}
	return tok
}

func userClaims() Claims {
	c := Claims{Org: testOrg, Kind: KindUser, Scope: "kb:read bots:run"}
	c.Subject = "user-42"
	return c
}

// A token crafted by hand: header and payload are maps (marshalled) or raw
// JSON strings, and sign produces the signature over "header.payload".
type signer func(signingInput string) []byte

func edSigner(key ed25519.PrivateKey) signer {
	return func(in string) []byte { return ed25519.Sign(key, []byte(in)) }
}

func hmacSigner(secret []byte) signer {
	return func(in string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}

func rsaSigner(key *rsa.PrivateKey) signer {
	return func(in string) []byte {
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func noSignature(string) []byte { return nil }

func segment(v any) string {
	var data []byte
	switch v := v.(type) {
	case string:
		data = []byte(v)
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

func craft(header, payload any, sign signer) string {
	in := segment(header) + "." + segment(payload)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(in))
}

// builtinHeader and validPayload describe a token the built-in issuer would
// mint; cases change one thing in copies of them.
func (b *bundle) builtinHeader() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": b.issuer.KeyID()}
}

func validPayload() map[string]any {
	return map[string]any{
		"iss":   builtinIssuer,
		"sub":   "user-42",
		"aud":   testAudience,
		"exp":   testNow.Add(5 * time.Minute).Unix(),
		"iat":   testNow.Unix(),
		"nbf":   testNow.Unix(),
		"jti":   "0190b5c2-0000-7000-8000-000000000001",
		"org":   testOrg,
		"kind":  KindUser,
		"scope": "kb:read",
	}
}

// signed is a token by the built-in issuer's real key with header and
// payload changed by the edit functions.
func (b *bundle) signed(editHeader, editPayload func(map[string]any)) string {
	h, p := b.builtinHeader(), validPayload()
	if editHeader != nil {
		editHeader(h)
	}
	if editPayload != nil {
		editPayload(p)
	}
	return craft(h, p, edSigner(b.issuer.set.Load().private))
}

func set(kv ...any) func(map[string]any) {
	return func(m map[string]any) {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
	}
}

func del(keys ...string) func(map[string]any) {
	return func(m map[string]any) {
		for _, k := range keys {
			delete(m, k)
		}
	}
}

// rawPayload returns the valid payload as JSON with extra raw members
// appended, for what maps cannot express (duplicates, case variants, strings
// where numbers belong).
func rawPayload(drop []string, extra string) string {
	p := validPayload()
	for _, k := range drop {
		delete(p, k)
	}
	data, err := json.Marshal(maps.Clone(p))
	if err != nil {
		panic(err)
	}
	s := strings.TrimSuffix(string(data), "}")
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

// requireRefused checks the contract of every refusal: a *TokenError with
// the wanted reason, matching ErrInvalidToken, zero claims, and a message
// that neither echoes the token nor grows with it.
func requireRefused(tb testing.TB, raw string, c Claims, err error, reason string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("token accepted, want %s; claims %+v", reason, c)
	}
	if !errors.Is(err, ErrInvalidToken) {
		tb.Errorf("errors.Is(err, ErrInvalidToken) = false for %v", err)
	}
	var te *TokenError
	if !errors.As(err, &te) {
		tb.Fatalf("error %T is not a *TokenError: %v", err, err)
	}
	if te.Reason != reason {
		tb.Errorf("reason %q, want %q (%v)", te.Reason, reason, err)
	}
	msg := err.Error()
	if len(msg) > 256 {
		tb.Errorf("error message is %d bytes long", len(msg))
	}
	for seg := range strings.SplitSeq(raw, ".") {
		if len(seg) >= 16 && strings.Contains(msg, seg) {
			tb.Errorf("error message echoes the token: %s", msg)
		}
	}
	if c.Subject != "" || c.Kind != "" || c.Org != "" || c.Issuer != "" {
		tb.Errorf("claims returned with an error: %+v", c)
	}
}
