package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// rejectCase is one hostile or broken token. Each is a valid token with one
// thing changed, so a verifier that skipped that one check would accept it.
type rejectCase struct {
	name     string
	token    func(b *bundle) string
	reason   string
	maxBytes int // a verifier with a larger limit, to reach checks behind the size limit
}

func rejectCases(tb testing.TB) []rejectCase {
	attacker := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}()
	attackerRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	pubPEM := func(b *bundle) []byte {
		der, err := x509.MarshalPKIXPublicKey(b.issuer.set.Load().public)
		if err != nil {
			tb.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	hostileKID := func(kid string) func(b *bundle) string {
		return func(b *bundle) string { return b.signed(set("kid", kid), nil) }
	}
	edit := func(h, p func(map[string]any)) func(b *bundle) string {
		return func(b *bundle) string { return b.signed(h, p) }
	}
	rawBody := func(drop []string, extra string) func(b *bundle) string {
		return func(b *bundle) string {
			return craft(b.builtinHeader(), rawPayload(drop, extra), edSigner(b.issuer.set.Load().private))
		}
	}
	algWith := func(alg string, sign func(b *bundle) signer) func(b *bundle) string {
		return func(b *bundle) string {
			h := b.builtinHeader()
			h["alg"] = alg
			return craft(h, validPayload(), sign(b))
		}
	}
	none := func(*bundle) signer { return noSignature }

	return []rejectCase{
		// Algorithms.
		{name: "alg none", token: algWith("none", none), reason: ReasonAlgorithm},
		{name: "alg None", token: algWith("None", none), reason: ReasonAlgorithm},
		{name: "alg noNE", token: algWith("noNE", none), reason: ReasonAlgorithm},
		{name: "alg none with a signature", token: algWith("none", func(b *bundle) signer { return edSigner(b.issuer.set.Load().private) }), reason: ReasonAlgorithm},
		{name: "HS256 keyed with the raw public key", token: algWith("HS256", func(b *bundle) signer { return hmacSigner(b.issuer.set.Load().public) }), reason: ReasonAlgorithm},
		{name: "HS256 keyed with the public key PEM", token: algWith("HS256", func(b *bundle) signer { return hmacSigner(pubPEM(b)) }), reason: ReasonAlgorithm},
		{name: "HS256 keyed with the JWKS document", token: algWith("HS256", func(b *bundle) signer {
			doc, _ := b.issuer.JWKS()
			return hmacSigner(doc)
		}), reason: ReasonAlgorithm},
		{name: "HS512 keyed with the raw public key", token: algWith("HS512", func(b *bundle) signer { return hmacSigner(b.issuer.set.Load().public) }), reason: ReasonAlgorithm},
		{name: "RS256 not pinned for the issuer", token: algWith("RS256", func(*bundle) signer { return rsaSigner(attackerRSA) }), reason: ReasonAlgorithm},
		{name: "ES256 not pinned for the issuer", token: algWith("ES256", none), reason: ReasonAlgorithm},
		{name: "alg missing", token: edit(del("alg"), nil), reason: ReasonAlgorithm},
		{name: "alg not a string", token: edit(set("alg", 1), nil), reason: ReasonAlgorithm},
		{name: "alg empty", token: edit(set("alg", ""), nil), reason: ReasonAlgorithm},

		// Issuer and audience.
		{name: "wrong issuer", token: edit(nil, set("iss", "https://evil.test")), reason: ReasonWrongIssuer},
		{name: "issuer differs in case", token: edit(nil, set("iss", strings.ToUpper(builtinIssuer))), reason: ReasonWrongIssuer},
		{name: "issuer with trailing slash", token: edit(nil, set("iss", builtinIssuer+"/")), reason: ReasonWrongIssuer},
		{name: "issuer missing", token: edit(nil, del("iss")), reason: ReasonWrongIssuer},
		{name: "issuer not a string", token: edit(nil, set("iss", 7)), reason: ReasonWrongIssuer},
		{name: "issuer of the external IdP signed by the built-in key", token: edit(nil, set("iss", externalIssuer)), reason: ReasonUnknownKey},
		{name: "wrong audience", token: edit(nil, set("aud", "another-api")), reason: ReasonWrongAudience},
		{name: "empty audience", token: edit(nil, set("aud", "")), reason: ReasonWrongAudience},
		{name: "empty audience list", token: edit(nil, set("aud", []string{})), reason: ReasonWrongAudience},
		{name: "audience list without ours", token: edit(nil, set("aud", []string{"a", "b"})), reason: ReasonWrongAudience},
		{name: "audience missing", token: edit(nil, del("aud")), reason: ReasonWrongAudience},

		// Time.
		{name: "expired an hour ago", token: edit(nil, set("exp", testNow.Add(-time.Hour).Unix(), "iat", testNow.Add(-2*time.Hour).Unix(), "nbf", testNow.Add(-2*time.Hour).Unix())), reason: ReasonExpired},
		{name: "expired just beyond the leeway", token: edit(nil, set("exp", testNow.Add(-31*time.Second).Unix())), reason: ReasonExpired},
		{name: "exp missing", token: edit(nil, del("exp")), reason: ReasonBadClaims},
		{name: "exp zero", token: edit(nil, set("exp", 0)), reason: ReasonBadClaims},
		{name: "exp negative", token: edit(nil, set("exp", -1)), reason: ReasonBadClaims},
		{name: "exp null", token: edit(nil, set("exp", nil)), reason: ReasonBadClaims},
		{name: "exp as a string", token: rawBody([]string{"exp"}, `"exp":"1800000300"`), reason: ReasonBadClaims},
		{name: "exp absurdly far", token: rawBody([]string{"exp"}, `"exp":1e300`), reason: ReasonBadClaims},
		{name: "exp as a bool", token: edit(nil, set("exp", true)), reason: ReasonBadClaims},
		{name: "nbf in the future", token: edit(nil, set("nbf", testNow.Add(time.Hour).Unix())), reason: ReasonNotYetValid},
		{name: "nbf just beyond the leeway", token: edit(nil, set("nbf", testNow.Add(31*time.Second).Unix())), reason: ReasonNotYetValid},
		{name: "nbf as a string", token: rawBody([]string{"nbf"}, `"nbf":"1800000000"`), reason: ReasonBadClaims},
		{name: "iat in the future", token: edit(nil, set("iat", testNow.Add(time.Hour).Unix())), reason: ReasonNotYetValid},
		{name: "iat just beyond the leeway", token: edit(nil, set("iat", testNow.Add(31*time.Second).Unix())), reason: ReasonNotYetValid},
		{name: "iat missing", token: edit(nil, del("iat")), reason: ReasonBadClaims},
		{name: "iat as a string", token: rawBody([]string{"iat"}, `"iat":"1800000000"`), reason: ReasonBadClaims},

		// Keys.
		{name: "unknown kid", token: hostileKID("some-other-key"), reason: ReasonUnknownKey},
		{name: "kid missing", token: edit(del("kid"), nil), reason: ReasonUnknownKey},
		{name: "kid empty", token: hostileKID(""), reason: ReasonUnknownKey},
		{name: "kid not a string", token: edit(set("kid", 12), nil), reason: ReasonUnknownKey},
		{name: "kid path traversal", token: hostileKID("../../../../../../etc/passwd"), reason: ReasonUnknownKey},
		{name: "kid path to the key file", token: hostileKID("../" + IssuerKeyFile), reason: ReasonUnknownKey},
		{name: "kid SQL injection", token: hostileKID("x' OR '1'='1'; DROP TABLE keys; --"), reason: ReasonUnknownKey},
		{name: "kid SQL injection without spaces", token: hostileKID("x'/**/OR/**/'1'='1"), reason: ReasonUnknownKey},
		{name: "kid of 10 KB", token: hostileKID(strings.Repeat("A", 10<<10)), reason: ReasonUnknownKey, maxBytes: 64 << 10},
		{name: "kid with a newline", token: hostileKID("key\nX-Injected: 1"), reason: ReasonUnknownKey},
		{name: "kid of the external issuer on a built-in token", token: func(b *bundle) string {
			return craft(map[string]any{"alg": "EdDSA", "kid": b.external.KeyID()}, validPayload(), edSigner(b.external.set.Load().private))
		}, reason: ReasonUnknownKey},

		// Headers pointing at keys elsewhere.
		{name: "jku header", token: edit(set("jku", "https://evil.test/jwks.json"), nil), reason: ReasonBadHeader},
		{name: "x5u header", token: edit(set("x5u", "https://evil.test/cert.pem"), nil), reason: ReasonBadHeader},
		{name: "jwk header with the attacker's key", token: func(b *bundle) string {
			h := b.builtinHeader()
			h["jwk"] = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(attacker.Public().(ed25519.PublicKey))}
			return craft(h, validPayload(), edSigner(attacker))
		}, reason: ReasonBadHeader},
		{name: "x5c header", token: edit(set("x5c", []string{"MIIB"}), nil), reason: ReasonBadHeader},
		{name: "crit header", token: edit(set("crit", []string{"exp"}, "exp", 1), nil), reason: ReasonBadHeader},

		// Size.
		{name: "over MaxTokenBytes", token: edit(nil, set("pad", strings.Repeat("x", 9000))), reason: ReasonTooLarge},
		{name: "megabytes of dots", token: func(*bundle) string { return strings.Repeat(".", 4<<20) }, reason: ReasonTooLarge},
		{name: "megabytes of one segment", token: func(*bundle) string { return strings.Repeat("A", 4<<20) }, reason: ReasonTooLarge},

		// Signature.
		{name: "tampered payload", token: func(b *bundle) string {
			good := b.signed(nil, nil)
			p := validPayload()
			p["sub"] = "admin"
			parts := strings.Split(good, ".")
			return parts[0] + "." + segment(p) + "." + parts[2]
		}, reason: ReasonBadSignature},
		{name: "tampered header", token: func(b *bundle) string {
			good := b.signed(nil, nil)
			h := b.builtinHeader()
			h["typ"] = "at+jwt"
			parts := strings.Split(good, ".")
			return segment(h) + "." + parts[1] + "." + parts[2]
		}, reason: ReasonBadSignature},
		{name: "signed by another Ed25519 key under our kid", token: func(b *bundle) string {
			return craft(b.builtinHeader(), validPayload(), edSigner(attacker))
		}, reason: ReasonBadSignature},
		{name: "signature missing", token: func(b *bundle) string {
			return craft(b.builtinHeader(), validPayload(), noSignature)
		}, reason: ReasonBadSignature},
		{name: "signature truncated", token: func(b *bundle) string {
			return craft(b.builtinHeader(), validPayload(), func(in string) []byte {
				return ed25519.Sign(b.issuer.set.Load().private, []byte(in))[:32]
			})
		}, reason: ReasonBadSignature},
		{name: "signature with non-canonical base64 (same bytes, another spelling)", token: func(b *bundle) string {
			good := b.signed(nil, nil)
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, good[len(good)-1])
			// 64 bytes are 86 characters: the last one's low 4 bits are unused.
			return good[:len(good)-1] + string(alphabet[last^1])
		}, reason: ReasonMalformed},
		{name: "signature of another token", token: func(b *bundle) string {
			other := strings.Split(b.signed(nil, set("sub", "other")), ".")
			good := strings.Split(b.signed(nil, nil), ".")
			return good[0] + "." + good[1] + "." + other[2]
		}, reason: ReasonBadSignature},

		// Malformed.
		{name: "empty", token: func(*bundle) string { return "" }, reason: ReasonMalformed},
		{name: "two segments", token: func(b *bundle) string {
			good := b.signed(nil, nil)
			return good[:strings.LastIndex(good, ".")]
		}, reason: ReasonMalformed},
		{name: "four segments", token: func(b *bundle) string { return b.signed(nil, nil) + ".e30" }, reason: ReasonMalformed},
		{name: "only dots", token: func(*bundle) string { return ".." }, reason: ReasonMalformed},
		{name: "base64 padding", token: func(b *bundle) string { return b.signed(nil, nil) + "==" }, reason: ReasonMalformed},
		{name: "newline inside", token: func(b *bundle) string {
			good := b.signed(nil, nil)
			return good[:20] + "\n" + good[20:]
		}, reason: ReasonMalformed},
		{name: "bearer prefix left on", token: func(b *bundle) string { return "Bearer " + b.signed(nil, nil) }, reason: ReasonMalformed},
		{name: "header not JSON", token: func(b *bundle) string {
			return craft("not json", validPayload(), edSigner(b.issuer.set.Load().private))
		}, reason: ReasonMalformed},
		{name: "header a JSON array", token: func(b *bundle) string {
			return craft(`["EdDSA"]`, validPayload(), edSigner(b.issuer.set.Load().private))
		}, reason: ReasonMalformed},
		{name: "payload not JSON", token: func(b *bundle) string {
			return craft(b.builtinHeader(), "{", edSigner(b.issuer.set.Load().private))
		}, reason: ReasonMalformed},
		{name: "payload not base64url", token: func(b *bundle) string {
			return segment(b.builtinHeader()) + ".@@@@." + "AAAA"
		}, reason: ReasonMalformed},
		{name: "scope not a string", token: edit(nil, set("scope", []string{"kb:read"})), reason: ReasonMalformed},
		{name: "sub not a string", token: edit(nil, set("sub", 42)), reason: ReasonMalformed},

		// Palisade claims.
		{name: "sub missing", token: edit(nil, del("sub")), reason: ReasonBadClaims},
		{name: "sub empty", token: edit(nil, set("sub", "")), reason: ReasonBadClaims},
		{name: "sub with a space", token: edit(nil, set("sub", "user 42")), reason: ReasonBadClaims},
		{name: "sub with a control character", token: edit(nil, set("sub", "user\x00")), reason: ReasonBadClaims},
		{name: "sub too long", token: edit(nil, set("sub", strings.Repeat("u", 257))), reason: ReasonBadClaims},
		{name: "sub with a slash", token: edit(nil, set("sub", "p/q")), reason: ReasonBadClaims},
		{name: "sub is a dot", token: edit(nil, set("sub", ".")), reason: ReasonBadClaims},
		{name: "sub is two dots", token: edit(nil, set("sub", "..")), reason: ReasonBadClaims},
		{name: "sub with a percent", token: edit(nil, set("sub", "a%2Fb")), reason: ReasonBadClaims},
		{name: "sub outside ASCII", token: edit(nil, set("sub", "аlice")), reason: ReasonBadClaims},
		{name: "kind missing", token: edit(nil, del("kind")), reason: ReasonBadClaims},
		{name: "kind admin", token: edit(nil, set("kind", "admin")), reason: ReasonBadClaims},
		{name: "kind bot", token: edit(nil, set("kind", "bot")), reason: ReasonBadClaims},
		{name: "kind in capitals", token: edit(nil, set("kind", "USER")), reason: ReasonBadClaims},
		{name: "sub twice", token: rawBody(nil, `"sub":"owner-1"`), reason: ReasonBadClaims},
		{name: "org twice", token: rawBody(nil, `"org":"another-org"`), reason: ReasonBadClaims},
		{name: "org and a case variant of it", token: rawBody(nil, `"ORG":"another-org"`), reason: ReasonBadClaims},
		{name: "header alg twice", token: func(b *bundle) string {
			return craft(`{"alg":"EdDSA","typ":"JWT","kid":"`+b.issuer.KeyID()+`","alg":"none"}`, validPayload(), edSigner(b.issuer.set.Load().private))
		}, reason: ReasonBadHeader},
		{name: "kind case variant smuggling platform", token: rawBody([]string{"org"}, `"KIND":"platform"`), reason: ReasonBadClaims},
		{name: "issuer case variant", token: rawBody(nil, `"Iss":"https://evil.test"`), reason: ReasonBadClaims},
		{name: "kelvin-sign case variant of kind", token: rawBody([]string{"org"}, "\"\u212aind\":\"platform\""), reason: ReasonBadClaims},
		{name: "user without org", token: edit(nil, del("org")), reason: ReasonBadClaims},
		{name: "service without org", token: edit(nil, set("kind", KindService, "org", "")), reason: ReasonBadClaims},
		{name: "org is the platform scope", token: edit(nil, set("org", "platform")), reason: ReasonBadClaims},
		{name: "org with an underscore", token: edit(nil, set("org", "acme_bot-1")), reason: ReasonBadClaims},
		{name: "org with a slash", token: edit(nil, set("org", "../acme")), reason: ReasonBadClaims},
		{name: "platform token with an org", token: edit(nil, set("kind", KindPlatform)), reason: ReasonBadClaims},
		{name: "platform token from an issuer without AllowPlatform", token: func(b *bundle) string {
			c := Claims{Kind: KindPlatform}
			c.Subject = "operator"
			return must(b.external.Mint(c, time.Minute))
		}, reason: ReasonBadClaims},
		{name: "scope present but empty", token: edit(nil, set("scope", "")), reason: ReasonBadClaims},
		{name: "scope null", token: edit(nil, set("scope", nil)), reason: ReasonBadClaims},
		{name: "scope of spaces", token: edit(nil, set("scope", "  ")), reason: ReasonBadClaims},
		{name: "scope with a double space", token: edit(nil, set("scope", "kb:read  bots:run")), reason: ReasonBadClaims},
		{name: "scope with a tab", token: edit(nil, set("scope", "kb:read\tbots:run")), reason: ReasonBadClaims},
		{name: "scope with a semicolon", token: edit(nil, set("scope", "kb:read;bots:manage")), reason: ReasonBadClaims},
		{name: "scope with too many names", token: edit(nil, set("scope", strings.TrimSpace(strings.Repeat("kb:read ", 65)))), reason: ReasonBadClaims},
		{name: "jti too long", token: edit(nil, set("jti", strings.Repeat("j", 300))), reason: ReasonBadClaims},
	}
}

// must is for token builders, which run outside a test's control flow;
// minting valid claims cannot fail.
func must(tok string, err error) string {
	if err != nil {
		panic(err)
	}
	return tok
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range rejectCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := b.verifier
			if tc.maxBytes != 0 {
				cfg := b.cfg
				cfg.MaxTokenBytes = tc.maxBytes
				v = mustVerifier(t, cfg)
			}
			raw := tc.token(b)
			c, err := v.Verify(raw)
			requireRefused(t, raw, c, err, tc.reason)
			// Hostile values may appear in the detail, but clipped.
			if strings.Contains(err.Error(), strings.Repeat("A", 33)) {
				t.Errorf("error echoes a hostile header value at length: %v", err)
			}
		})
	}
}

// TestVerifyBaseTokenIsValid guards the reject table: its base token must be
// accepted, or every case would pass for the wrong reason.
func TestVerifyBaseTokenIsValid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, err := b.verifier.Verify(b.signed(nil, nil))
	if err != nil {
		t.Fatalf("base token refused: %v", err)
	}
	if c.Subject != "user-42" || c.Org != testOrg || c.Kind != KindUser || c.Scope != "kb:read" {
		t.Fatalf("claims %+v", c)
	}
}

func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	service := Claims{Org: testOrg, Kind: KindService}
	service.Subject = "svc-ingest"
	platform := Claims{Kind: KindPlatform}
	platform.Subject = "operator@palisade"
	edit := func(h, p func(map[string]any)) func() string { return func() string { return b.signed(h, p) } }

	cases := []struct {
		name  string
		token func() string
		want  Claims // Subject, Org, Kind, Scope compared
	}{
		{name: "user minted", token: func() string { return mustMint(t, b.issuer, userClaims(), time.Hour) }, want: userClaims()},
		{name: "service minted", token: func() string { return mustMint(t, b.issuer, service, time.Hour) }, want: service},
		{name: "platform minted by the built-in issuer", token: func() string { return mustMint(t, b.issuer, platform, time.Hour) }, want: platform},
		{name: "user of the external issuer", token: func() string { return mustMint(t, b.external, userClaims(), time.Hour) }, want: userClaims()},
		{name: "expired within the leeway", token: edit(nil, set("exp", testNow.Add(-10*time.Second).Unix())), want: crafted()},
		{name: "nbf within the leeway", token: edit(nil, set("nbf", testNow.Add(10*time.Second).Unix())), want: crafted()},
		{name: "iat within the leeway", token: edit(nil, set("iat", testNow.Add(10*time.Second).Unix())), want: crafted()},
		{name: "fractional exp", token: edit(nil, set("exp", float64(testNow.Add(time.Minute).Unix())+0.5)), want: crafted()},
		{name: "audience list with ours", token: edit(nil, set("aud", []string{"other", testAudience})), want: crafted()},
		{name: "no nbf, no jti, no typ", token: edit(del("typ"), del("nbf", "jti")), want: crafted()},
		{name: "no scope", token: edit(nil, del("scope")), want: func() Claims { c := crafted(); c.Scope = ""; return c }()},
		{name: "unknown claims and headers are ignored", token: edit(set("x5t", "abc", "cty", "JWT"), set("email", "a@b.test", "roles", []string{"owner"})), want: crafted()},
		{name: "OAuth scope names", token: edit(nil, set("scope", "openid https://palisade.test/kb.read kb:read")), want: func() Claims {
			c := crafted()
			c.Scope = "openid https://palisade.test/kb.read kb:read"
			return c
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := tc.token()
			c, err := b.verifier.Verify(raw)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if c.Subject != tc.want.Subject || c.Org != tc.want.Org || c.Kind != tc.want.Kind || c.Scope != tc.want.Scope {
				t.Fatalf("claims %+v, want %+v", c, tc.want)
			}
			if c.Issuer == "" || c.ExpiresAt == nil || c.IssuedAt == nil {
				t.Fatalf("registered claims missing: %+v", c.RegisteredClaims)
			}
		})
	}
}

func crafted() Claims {
	c := Claims{Org: testOrg, Kind: KindUser, Scope: "kb:read"}
	c.Subject = "user-42"
	return c
}

func TestMintFillsRegisteredClaims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := userClaims()
	in.Issuer = "https://evil.test"
	in.Audience = jwt.ClaimStrings{"elsewhere"}
	in.ID = "chosen-by-caller"
	in.ExpiresAt = jwt.NewNumericDate(testNow.Add(100 * 365 * 24 * time.Hour))
	raw := mustMint(t, b.issuer, in, 15*time.Minute)

	c, err := b.verifier.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != builtinIssuer || len(c.Audience) != 1 || c.Audience[0] != testAudience {
		t.Errorf("iss %q aud %v", c.Issuer, c.Audience)
	}
	if !c.IssuedAt.Equal(testNow) || !c.NotBefore.Equal(testNow) || !c.ExpiresAt.Equal(testNow.Add(15*time.Minute)) {
		t.Errorf("iat %v nbf %v exp %v", c.IssuedAt, c.NotBefore, c.ExpiresAt)
	}
	id, err := uuid.Parse(c.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("jti %q is not a UUIDv7", c.ID)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != b.issuer.KeyID() || tok.Header["alg"] != "EdDSA" {
		t.Errorf("header %v", tok.Header)
	}
	if got := c.ScopeNames(); len(got) != 2 || got[0] != "kb:read" || got[1] != "bots:run" {
		t.Errorf("ScopeNames %v", got)
	}
}

func TestMintRefusesClaimsVerifyWouldRefuse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	with := func(f func(*Claims)) Claims { c := userClaims(); f(&c); return c }
	cases := []struct {
		name   string
		claims Claims
		ttl    time.Duration
	}{
		{"no subject", with(func(c *Claims) { c.Subject = "" }), time.Hour},
		{"bad kind", with(func(c *Claims) { c.Kind = "bot" }), time.Hour},
		{"user without org", with(func(c *Claims) { c.Org = "" }), time.Hour},
		{"service without org", with(func(c *Claims) { c.Kind, c.Org = KindService, "" }), time.Hour},
		{"platform with org", with(func(c *Claims) { c.Kind = KindPlatform }), time.Hour},
		{"malformed scope", with(func(c *Claims) { c.Scope = "kb:read,kb:write" }), time.Hour},
		{"zero lifetime", userClaims(), 0},
		{"negative lifetime", userClaims(), -time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tok, err := b.issuer.Mint(tc.claims, tc.ttl); err == nil {
				t.Fatalf("minted %s", tok)
			}
		})
	}
}

func TestScopeNames(t *testing.T) {
	t.Parallel()
	if got := (Claims{}).ScopeNames(); got != nil {
		t.Errorf("no scope: %v, want nil (nothing narrowed)", got)
	}
	if got := (Claims{Scope: "kb:read"}).ScopeNames(); len(got) != 1 || got[0] != "kb:read" {
		t.Errorf("one scope: %v", got)
	}
}

func TestNewVerifierRefusesUnsafeConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := b.issuer.Trusted()
	with := func(f func(*VerifierConfig)) VerifierConfig {
		cfg := VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{good}}
		f(&cfg)
		return cfg
	}
	withIssuer := func(f func(*TrustedIssuer)) VerifierConfig {
		ti := good
		f(&ti)
		return VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{ti}}
	}
	cases := []struct {
		name string
		cfg  VerifierConfig
	}{
		{"no audience", with(func(c *VerifierConfig) { c.Audience = "" })},
		{"no issuers", with(func(c *VerifierConfig) { c.Issuers = nil })},
		{"duplicate issuer", with(func(c *VerifierConfig) { c.Issuers = append(c.Issuers, good) })},
		{"negative leeway", with(func(c *VerifierConfig) { c.Leeway = -time.Second })},
		{"huge leeway", with(func(c *VerifierConfig) { c.Leeway = time.Hour })},
		{"negative size limit", with(func(c *VerifierConfig) { c.MaxTokenBytes = -1 })},
		{"issuer without name", withIssuer(func(ti *TrustedIssuer) { ti.Issuer = "" })},
		{"issuer without keyfunc", withIssuer(func(ti *TrustedIssuer) { ti.Keyfunc = nil })},
		{"no algorithms", withIssuer(func(ti *TrustedIssuer) { ti.Algorithms = nil })},
		{"alg none", withIssuer(func(ti *TrustedIssuer) { ti.Algorithms = []string{"none"} })},
		{"HMAC", withIssuer(func(ti *TrustedIssuer) { ti.Algorithms = []string{"EdDSA", "HS256"} })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewVerifier(tc.cfg); err == nil {
				t.Fatal("NewVerifier accepted an unsafe configuration")
			}
		})
	}
}

func TestTokenErrorClipsDetail(t *testing.T) {
	t.Parallel()
	err := refuse(ReasonUnknownKey, errors.New("kid "+strings.Repeat("Z", 5000)+"\x1b[31m"))
	msg := err.Error()
	if len(msg) > 200 || strings.ContainsRune(msg, 0x1b) {
		t.Fatalf("message not clipped: %d bytes %q", len(msg), msg)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatal("not ErrInvalidToken")
	}
	wrapped := refuse(ReasonExpired, jwt.ErrTokenExpired)
	if !errors.Is(wrapped, jwt.ErrTokenExpired) {
		t.Fatal("detail not unwrapped")
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "signature", true: "cached"}[cached], func(b *testing.B) {
			bb := setup(b)
			if !cached {
				bb.verifier.cache = nil
			}
			raw := mustMint(b, bb.issuer, userClaims(), time.Hour)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bb.verifier.Verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyOversized shows the size limit costs nothing: megabytes of
// dots are refused before any scan.
func BenchmarkVerifyOversized(b *testing.B) {
	bb := setup(b)
	raw := strings.Repeat(".", 4<<20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bb.verifier.Verify(raw); err == nil {
			b.Fatal("accepted")
		}
	}
}

// TestParserPinsAlgorithmsOnItsOwn checks the per-issuer golang-jwt parser
// without the early checks in front of it, and with a careless key function
// that hands out the public key bytes to anyone: the pinned methods alone
// must still refuse HMAC-with-the-public-key and none.
func TestParserPinsAlgorithmsOnItsOwn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	parser := b.verifier.issuers[builtinIssuer].parser
	careless := func(tok *jwt.Token) (any, error) {
		if tok.Method == jwt.SigningMethodNone {
			return jwt.UnsafeAllowNoneSignatureType, nil
		}
		return []byte(b.issuer.set.Load().public), nil
	}
	hs := b.builtinHeader()
	hs["alg"] = "HS256"
	none := b.builtinHeader()
	none["alg"] = "none"
	for name, raw := range map[string]string{
		"HS256 keyed with the public key": craft(hs, validPayload(), hmacSigner(b.issuer.set.Load().public)),
		"none":                            craft(none, validPayload(), noSignature),
	} {
		if _, err := parser.ParseWithClaims(raw, &Claims{}, careless); err == nil {
			t.Errorf("%s: the issuer's parser accepted it", name)
		}
	}
	// The careless key function does work for a pinned algorithm, so the
	// refusals above are the parser's doing.
	if _, err := parser.ParseWithClaims(b.signed(nil, nil), &Claims{}, b.issuer.Keyfunc()); err != nil {
		t.Fatalf("valid token: %v", err)
	}
}

// TestExternalIssuersAreNotBuiltIn checks what principal resolution relies
// on: tokens say which kind of issuer signed them, and an external issuer
// never asserts a service account, whatever else the token says.
func TestExternalIssuersAreNotBuiltIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	service := Claims{Org: testOrg, Kind: KindService}
	service.Subject = "svc-ingest"

	if c, err := b.verifier.Verify(mustMint(t, b.issuer, userClaims(), time.Hour)); err != nil || !c.BuiltIn {
		t.Fatalf("built-in user token: BuiltIn=%v, %v", c.BuiltIn, err)
	}
	if c, err := b.verifier.Verify(mustMint(t, b.external, userClaims(), time.Hour)); err != nil || c.BuiltIn {
		t.Fatalf("external user token: BuiltIn=%v, %v", c.BuiltIn, err)
	}
	if c, err := b.verifier.Verify(mustMint(t, b.issuer, service, time.Hour)); err != nil || !c.BuiltIn {
		t.Fatalf("built-in service token: BuiltIn=%v, %v", c.BuiltIn, err)
	}
	_, err := b.verifier.Verify(mustMint(t, b.external, service, time.Hour))
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != ReasonBadClaims {
		t.Fatalf("external service token: %v, want %s", err, ReasonBadClaims)
	}

	if !b.verifier.TrustsExternal(externalIssuer) || b.verifier.TrustsExternal(builtinIssuer) || b.verifier.TrustsExternal("https://unknown.test") {
		t.Fatal("TrustsExternal is wrong")
	}
}
