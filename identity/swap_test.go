package identity

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIssuerSwapRotates runs a rotation on one running issuer and its
// verifier, as a server following its key set file does: add a key (both
// verify, the old one signs), switch the signing key (new tokens and
// signatures carry the new kid, old tokens still verify), remove the old
// key (its tokens are refused at once, though the verifier had cached
// them, and the JWKS and PublicKey no longer know it).
func TestIssuerSwapRotates(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 2)
	oldKey, newKey := keys[0], keys[1]
	iss := keySetIssuer(t, []IssuerKey{oldKey}, "")
	v := verifierOf(t, iss)
	oldToken := mustMint(t, iss, userClaims(), time.Hour)
	if _, err := v.Verify(oldToken); err != nil { // cached from now on
		t.Fatal(err)
	}
	swap := func(keys []IssuerKey, kid string) {
		t.Helper()
		if err := iss.Swap(keySetIssuer(t, keys, kid)); err != nil {
			t.Fatal(err)
		}
		v.ForgetVerified()
	}
	verifies := func(raw string) error {
		t.Helper()
		_, err := v.Verify(raw)
		return err
	}

	// Add: the new key verifies and is published; the old one still signs.
	swap([]IssuerKey{oldKey, newKey}, "")
	if iss.KeyID() != oldKey.KeyID {
		t.Fatalf("after add, signing kid %s, want the old %s", iss.KeyID(), oldKey.KeyID)
	}
	if kids := jwksKids(t, iss); kids != oldKey.KeyID+","+newKey.KeyID {
		t.Fatalf("after add, JWKS kids %s", kids)
	}
	if err := verifies(mustMint(t, keySetIssuer(t, []IssuerKey{newKey}, ""), userClaims(), time.Hour)); err != nil {
		t.Fatalf("after add, a token of the new key is refused: %v", err)
	}

	// Switch: new tokens and signatures name the new key; old tokens verify.
	swap([]IssuerKey{oldKey, newKey}, newKey.KeyID)
	newToken := mustMint(t, iss, userClaims(), time.Hour)
	if kid := headerKID(t, newToken); kid != newKey.KeyID {
		t.Fatalf("after switch, a new token names kid %s, want %s", kid, newKey.KeyID)
	}
	kid, sign := iss.SigningKey()
	pub, ok := iss.PublicKey(kid)
	if kid != newKey.KeyID || !ok || !ed25519.Verify(pub, []byte("checkpoint"), sign([]byte("checkpoint"))) {
		t.Fatalf("after switch, SigningKey names %s (want %s) or its signature does not verify", kid, newKey.KeyID)
	}
	for name, raw := range map[string]string{"old": oldToken, "new": newToken} {
		if err := verifies(raw); err != nil {
			t.Fatalf("after switch, the %s token is refused: %v", name, err)
		}
	}

	// Remove: the old key's token is refused although it was cached.
	swap([]IssuerKey{newKey}, "")
	_, err := v.Verify(oldToken)
	requireRefused(t, oldToken, Claims{}, err, ReasonUnknownKey)
	if err := verifies(newToken); err != nil {
		t.Fatalf("after remove, the new token is refused: %v", err)
	}
	if _, ok := iss.PublicKey(oldKey.KeyID); ok {
		t.Fatal("after remove, PublicKey still knows the old key")
	}
	if kids := jwksKids(t, iss); kids != newKey.KeyID {
		t.Fatalf("after remove, JWKS kids %s", kids)
	}
}

// TestIssuerSwapRefusesAnotherIssuer: a set of another name or audience
// is not swapped in (its tokens would carry another iss or aud), and the
// issuer keeps its keys.
func TestIssuerSwapRefusesAnotherIssuer(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 2)
	iss := keySetIssuer(t, keys[:1], "")
	for _, other := range [][2]string{{"someone-else", testAudience}, {builtinIssuer, "another-audience"}} {
		next, err := NewIssuer(keys[1:], "", other[0], other[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := iss.Swap(next); err == nil {
			t.Fatalf("Swap accepted the keys of issuer %s, audience %s", other[0], other[1])
		}
		if iss.KeyID() != keys[0].KeyID {
			t.Fatalf("a refused Swap changed the signing kid to %s", iss.KeyID())
		}
	}
}

// TestIssuerSameKeys: the same keys in the same order are the same set;
// another signing key, another order, another kid or a key more are not.
func TestIssuerSameKeys(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 2)
	base := keySetIssuer(t, keys, "")
	renamed := []IssuerKey{{KeyID: "renamed", Private: keys[0].Private}, keys[1]}
	tests := []struct {
		name string
		next *Issuer
		same bool
	}{
		{"the same set", keySetIssuer(t, keys, keys[0].KeyID), true},
		{"another signing key", keySetIssuer(t, keys, keys[1].KeyID), false},
		{"one key less", keySetIssuer(t, keys[:1], ""), false},
		{"a kid renamed", keySetIssuer(t, renamed, ""), false},
		{"a key more", keySetIssuer(t, append(generateKeys(t, 1), keys...), keys[0].KeyID), false},
	}
	for _, tt := range tests {
		if got := base.SameKeys(tt.next); got != tt.same {
			t.Errorf("%s: SameKeys = %v, want %v", tt.name, got, tt.same)
		}
	}
}

// TestIssuerSwapDuringVerification swaps the set back and forth while
// other goroutines verify, mint and sign: a token of the key in both sets
// always verifies, every minted token verifies under the set it names,
// and every signature verifies with the key its kid names (a kid and a
// signature from two different sets would not). Run with -race.
func TestIssuerSwapDuringVerification(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 3)
	stay := keys[0]
	sets := []*Issuer{
		keySetIssuer(t, []IssuerKey{stay, keys[1]}, keys[1].KeyID),
		keySetIssuer(t, []IssuerKey{stay, keys[2]}, keys[2].KeyID),
	}
	iss := keySetIssuer(t, []IssuerKey{stay, keys[1]}, keys[1].KeyID)
	v := verifierOf(t, iss)
	stayToken := mustMint(t, keySetIssuer(t, []IssuerKey{stay}, ""), userClaims(), time.Hour)
	full := keySetIssuer(t, keys, "") // knows every key, to check signatures
	fullV := verifierOf(t, full)

	var stop atomic.Bool
	var rounds atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := v.Verify(stayToken); err != nil {
					fail(errors.New("a token of the key in every set was refused during a swap: " + err.Error()))
					return
				}
				raw, err := iss.Mint(userClaims(), time.Hour)
				if err != nil {
					fail(err)
					return
				}
				if _, err := fullV.Verify(raw); err != nil {
					fail(errors.New("a token minted during a swap names a key that did not sign it: " + err.Error()))
					return
				}
				kid, sign := iss.SigningKey()
				pub, _ := full.PublicKey(kid)
				if !ed25519.Verify(pub, []byte(kid), sign([]byte(kid))) {
					fail(errors.New("SigningKey gave a kid and a signer of two different keys"))
					return
				}
				if _, err := iss.JWKS(); err != nil {
					fail(err)
					return
				}
				rounds.Add(1)
			}
		}()
	}
	// Swap until the goroutines have done a few hundred rounds between
	// them, however the scheduler runs them, or have failed.
	for n := 0; rounds.Load() < 300 && len(errs) == 0; n++ {
		if err := iss.Swap(sets[n%2]); err != nil {
			t.Fatal(err)
		}
		v.ForgetVerified()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestForgetVerifiedDuringVerification: a token verified before
// ForgetVerified but put in the cache after it is not cached, so a key
// removed meanwhile cannot be honoured from the cache.
func TestForgetVerifiedDuringVerification(t *testing.T) {
	t.Parallel()
	c := newVerifiedCache(10)
	now := time.Now()
	claims := Claims{}
	claims.ExpiresAt = jwtDate(now.Add(time.Hour))
	_, _, generation := c.get("tok", now) // a verification starts
	c.forget()                            // the key set changes meanwhile
	c.put("tok", claims, now, generation) // the verification ends
	if _, ok, _ := c.get("tok", now); ok {
		t.Fatal("a token verified before ForgetVerified was cached after it")
	}
	_, _, generation = c.get("tok", now)
	c.put("tok", claims, now, generation)
	if _, ok, _ := c.get("tok", now); !ok {
		t.Fatal("a token verified after ForgetVerified was not cached")
	}
}

// jwksKids returns the kids the issuer's JWKS lists, in its order.
func jwksKids(tb testing.TB, iss *Issuer) string {
	tb.Helper()
	doc, err := iss.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		tb.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.D != "" {
			tb.Fatal("the JWKS holds a private key")
		}
		kids = append(kids, k.Kid)
	}
	return strings.Join(kids, ",")
}

// headerKID returns the kid of a token's header, unverified.
func headerKID(tb testing.TB, raw string) string {
	tb.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		tb.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		tb.Fatal(err)
	}
	return h.Kid
}

// BenchmarkKeySetPoll measures what a server following its key set file
// does at each poll of an unchanged file of two keys: read, parse and
// check it, build the issuer, compare it with the one in use.
func BenchmarkKeySetPoll(b *testing.B) {
	keys := generateKeys(b, 2)
	path := b.TempDir() + "/issuer-keys.json"
	if err := WriteIssuerKeys(path, keys, true); err != nil {
		b.Fatal(err)
	}
	inUse := keySetIssuer(b, keys, "")
	b.ReportAllocs()
	for b.Loop() {
		next, err := OpenIssuerKeys(path, "", builtinIssuer, testAudience)
		if err != nil {
			b.Fatal(err)
		}
		if !inUse.SameKeys(next) {
			b.Fatal("the set changed")
		}
	}
}
