package identity

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifiedCacheHonoursExpiry: a cached token is still refused once it
// expires, and the cache never accepts what verification refused.
func TestVerifiedCacheHonoursExpiry(t *testing.T) {
	t.Parallel()
	iss, err := LoadOrCreateIssuer(t.TempDir(), "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	v, err := NewVerifier(VerifierConfig{Audience: "palisade", Issuers: []TrustedIssuer{iss.Trusted()}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := Claims{Kind: KindUser, Org: "org-1"}
	c.Subject = "alice"
	tok, err := iss.Mint(c, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if len(v.cache.entries) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(v.cache.entries))
	}
	now = now.Add(2 * time.Minute) // past exp and past the leeway
	if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token verified from the cache: %v", err)
	}
	if _, err := v.Verify(tok[:len(tok)-2] + "AA"); err == nil {
		t.Fatal("a tampered token verified")
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	t.Parallel()
	c := newVerifiedCache(10)
	now := time.Now()
	claims := Claims{}
	claims.ExpiresAt = nil
	c.put("no-exp", claims, now, 0)
	if _, ok, _ := c.get("no-exp", now); ok {
		t.Fatal("a token without exp was cached")
	}
	var disabled *verifiedCache
	disabled.put("x", claims, now, 0)
	if _, ok, _ := disabled.get("x", now); ok {
		t.Fatal("disabled cache returned an entry")
	}
	for i := 0; i < 100; i++ {
		cl := Claims{}
		cl.ExpiresAt = jwtDate(now.Add(time.Hour))
		c.put(string(rune('a'+i%26))+string(rune(i)), cl, now, 0)
		if len(c.entries) > 10 {
			t.Fatalf("cache grew to %d entries", len(c.entries))
		}
	}
}

func jwtDate(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }
