package identity

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds the verifier valid, hostile and mutated tokens. Nothing
// may panic; every refusal must be a well-formed *TokenError; and anything
// accepted must be, checked independently of golang-jwt, an EdDSA token
// signed by the key of the issuer it names, for our audience, unexpired,
// with every required claim.
func FuzzVerify(f *testing.F) {
	b := setup(f)
	service := Claims{Org: testOrg, Kind: KindService}
	service.Subject = "svc"
	platform := Claims{Kind: KindPlatform}
	platform.Subject = "operator"
	f.Add(mustMint(f, b.issuer, userClaims(), time.Hour))
	f.Add(mustMint(f, b.issuer, service, time.Hour))
	f.Add(mustMint(f, b.issuer, platform, time.Hour))
	f.Add(mustMint(f, b.external, userClaims(), time.Hour))
	f.Add(mustMint(f, b.external, platform, time.Hour))
	f.Add(mustMint(f, b.external, service, time.Hour))
	f.Add(b.signed(nil, nil))
	for _, tc := range rejectCases(f) {
		if raw := tc.token(b); len(raw) <= 16<<10 {
			f.Add(raw)
		}
	}
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJub25lIn0.e30.")

	keys := map[string]struct {
		pub           ed25519.PublicKey
		kid           string
		allowPlatform bool
	}{
		builtinIssuer:  {b.issuer.set.Load().public, b.issuer.KeyID(), true},
		externalIssuer: {b.external.set.Load().public, b.external.KeyID(), false},
	}
	leeway := DefaultLeeway

	f.Fuzz(func(t *testing.T, raw string) {
		c, err := b.verifier.Verify(raw)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refusal is not a *TokenError matching ErrInvalidToken: %T %v", err, err)
			}
			if !slices.Contains(allReasons, te.Reason) {
				t.Fatalf("unknown reason %q", te.Reason)
			}
			if len(err.Error()) > 256 {
				t.Fatalf("error message of %d bytes", len(err.Error()))
			}
			if !reflect.DeepEqual(c, Claims{}) {
				t.Fatalf("claims returned with an error: %+v", c)
			}
			return
		}

		// Accepted: check it all again without golang-jwt.
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d segments", len(parts))
		}
		var header struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		hb, herr := base64.RawURLEncoding.DecodeString(parts[0])
		sig, serr := base64.RawURLEncoding.DecodeString(parts[2])
		if herr != nil || serr != nil || json.Unmarshal(hb, &header) != nil {
			t.Fatalf("accepted an undecodable token")
		}
		k, ok := keys[c.Issuer]
		if !ok {
			t.Fatalf("accepted issuer %q", c.Issuer)
		}
		if header.Alg != "EdDSA" || header.Kid != k.kid {
			t.Fatalf("accepted alg %q kid %q for %s", header.Alg, header.Kid, c.Issuer)
		}
		if !ed25519.Verify(k.pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatal("accepted a token whose signature does not verify")
		}
		if !slices.Contains(c.Audience, testAudience) {
			t.Fatalf("accepted audience %v", c.Audience)
		}
		if c.ExpiresAt == nil || !testNow.Before(c.ExpiresAt.Add(leeway)) {
			t.Fatalf("accepted exp %v", c.ExpiresAt)
		}
		if c.IssuedAt == nil || c.IssuedAt.After(testNow.Add(leeway)) {
			t.Fatalf("accepted iat %v", c.IssuedAt)
		}
		if c.NotBefore != nil && c.NotBefore.After(testNow.Add(leeway)) {
			t.Fatalf("accepted nbf %v", c.NotBefore)
		}
		if c.Subject == "" {
			t.Fatal("accepted a token without sub")
		}
		if c.BuiltIn != (c.Issuer == builtinIssuer) {
			t.Fatalf("accepted a token of %s marked BuiltIn=%v", c.Issuer, c.BuiltIn)
		}
		switch c.Kind {
		case KindUser, KindService:
			if c.Org == "" || c.Org == "platform" {
				t.Fatalf("accepted %s token with org %q", c.Kind, c.Org)
			}
			if c.Kind == KindService && !c.BuiltIn {
				t.Fatalf("accepted a service token from %s", c.Issuer)
			}
		case KindPlatform:
			if c.Org != "" || !k.allowPlatform {
				t.Fatalf("accepted platform token with org %q from %s", c.Org, c.Issuer)
			}
		default:
			t.Fatalf("accepted kind %q", c.Kind)
		}
		for _, name := range c.ScopeNames() {
			if strings.ContainsAny(name, " \t\r\n\"';") {
				t.Fatalf("accepted scope name %q", name)
			}
		}
	})
}

var allReasons = []string{
	ReasonMalformed, ReasonTooLarge, ReasonBadHeader, ReasonAlgorithm, ReasonUnknownKey,
	ReasonBadSignature, ReasonWrongIssuer, ReasonWrongAudience, ReasonExpired,
	ReasonNotYetValid, ReasonBadClaims,
}
