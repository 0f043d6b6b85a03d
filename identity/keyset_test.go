package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// keySetIssuer is the issuer of keys signing with kid, on the test clock.
func keySetIssuer(tb testing.TB, keys []IssuerKey, kid string) *Issuer {
	tb.Helper()
	iss, err := NewIssuer(keys, kid, builtinIssuer, testAudience)
	if err != nil {
		tb.Fatalf("NewIssuer(%s): %v", kid, err)
	}
	iss.now = func() time.Time { return testNow }
	return iss
}

func verifierOf(tb testing.TB, iss *Issuer) *Verifier {
	tb.Helper()
	return mustVerifier(tb, VerifierConfig{
		Audience: testAudience,
		Issuers:  []TrustedIssuer{iss.Trusted()},
		Now:      func() time.Time { return testNow },
	})
}

func generateKeys(tb testing.TB, n int) []IssuerKey {
	tb.Helper()
	keys := make([]IssuerKey, n)
	for i := range keys {
		k, err := GenerateIssuerKey()
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

// TestKeySetSignsWithOneVerifiesWithAll: the issuer signs with the key
// its signing kid names (the first without one), publishes every key, and
// accepts a token of any key of its set; a kid outside it is refused.
func TestKeySetSignsWithOneVerifiesWithAll(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 3)
	first := keySetIssuer(t, keys[:1], "")
	second := keySetIssuer(t, keys, keys[1].KeyID)
	all := keySetIssuer(t, keys, "")
	if all.KeyID() != keys[0].KeyID || second.KeyID() != keys[1].KeyID {
		t.Fatalf("signing kids %s and %s, want %s and %s", all.KeyID(), second.KeyID(), keys[0].KeyID, keys[1].KeyID)
	}
	if got := strings.Join(second.KeyIDs(), ","); got != keys[1].KeyID+","+keys[0].KeyID+","+keys[2].KeyID {
		t.Fatalf("KeyIDs = %s: want the signing kid first, then the file's order", got)
	}

	v := verifierOf(t, all)
	for _, iss := range []*Issuer{first, second, all} {
		raw := mustMint(t, iss, userClaims(), time.Hour)
		tok, err := v.Verify(raw)
		if err != nil {
			t.Fatalf("token signed by %s refused by the set: %v", iss.KeyID(), err)
		}
		if tok.Subject != "user-42" {
			t.Fatalf("subject %q", tok.Subject)
		}
	}

	outsider := keySetIssuer(t, generateKeys(t, 1), "")
	raw := mustMint(t, outsider, userClaims(), time.Hour)
	c, err := v.Verify(raw)
	requireRefused(t, raw, c, err, ReasonUnknownKey)

	// A token naming a kid of the set but signed by another key fails its
	// signature: the kid picks the key, it does not vouch for it.
	forged := craft(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": keys[2].KeyID}, validPayload(), edSigner(outsider.set.Load().private))
	c, err = v.Verify(forged)
	requireRefused(t, forged, c, err, ReasonBadSignature)

	var jwks struct {
		Keys []struct {
			Kid, Kty, Crv, X, D string
		} `json:"keys"`
	}
	doc, _ := second.JWKS()
	if err := json.Unmarshal(doc, &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 3 {
		t.Fatalf("JWKS lists %d keys, want 3: %s", len(jwks.Keys), doc)
	}
	for i, k := range jwks.Keys {
		want := second.KeyIDs()[i]
		if k.Kid != want || k.D != "" || k.Kty != "OKP" || k.Crv != "Ed25519" {
			t.Errorf("JWKS key %d: %+v, want kid %s and no private part", i, k, want)
		}
	}
}

// TestKeySetRotation walks the rotation an operator runs across replicas:
// add a key (verify only), switch the signing kid, remove the old key. At
// each step every replica of the step before and after accepts the other's
// tokens; after the removal the old key's tokens are refused. Derived
// secrets follow: the signing key's first, every key's after it.
func TestKeySetRotation(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 2)
	old, next := keys[0], keys[1]
	steps := []*Issuer{
		keySetIssuer(t, []IssuerKey{old}, ""),               // before
		keySetIssuer(t, []IssuerKey{old, next}, ""),         // next added, old signs
		keySetIssuer(t, []IssuerKey{old, next}, next.KeyID), // next signs
		keySetIssuer(t, []IssuerKey{next}, ""),              // old removed
	}
	wantSigner := []string{old.KeyID, old.KeyID, next.KeyID, next.KeyID}
	for i, iss := range steps {
		if iss.KeyID() != wantSigner[i] {
			t.Fatalf("step %d signs with %s, want %s", i, iss.KeyID(), wantSigner[i])
		}
	}
	// During a rotation, replicas of adjacent steps run together (one has read the file, one not yet).
	for i := 0; i+1 < len(steps); i++ {
		for _, pair := range [][2]*Issuer{{steps[i], steps[i+1]}, {steps[i+1], steps[i]}} {
			raw := mustMint(t, pair[0], userClaims(), time.Hour)
			if _, err := verifierOf(t, pair[1]).Verify(raw); err != nil {
				t.Errorf("step %d↔%d: token of %s refused by a set of %v: %v", i, i+1, pair[0].KeyID(), pair[1].KeyIDs(), err)
			}
		}
	}
	raw := mustMint(t, steps[1], userClaims(), time.Hour)
	c, err := verifierOf(t, steps[3]).Verify(raw)
	requireRefused(t, raw, c, err, ReasonUnknownKey)

	// Derived secrets: the same per key whatever the set, signing key first.
	label := "consistency tokens"
	if !bytes.Equal(steps[0].DeriveSecret(label), steps[2].DeriveSecrets(label)[1]) {
		t.Error("old key's secret differs once it no longer signs")
	}
	if !bytes.Equal(steps[2].DeriveSecret(label), steps[3].DeriveSecret(label)) || !bytes.Equal(steps[2].DeriveSecrets(label)[0], steps[2].DeriveSecret(label)) {
		t.Error("DeriveSecrets does not start with the signing key's secret")
	}
	if bytes.Equal(steps[0].DeriveSecret(label), steps[3].DeriveSecret(label)) {
		t.Error("two keys derive the same secret")
	}

	// The data directory's key and the same key in a set are one key: its
	// kid is the thumbprint, its tokens verify both ways.
	dir := t.TempDir()
	disk := mustIssuer(t, dir, builtinIssuer)
	inSet := keySetIssuer(t, []IssuerKey{{KeyID: disk.KeyID(), Private: disk.set.Load().private}, next}, "")
	raw = mustMint(t, disk, userClaims(), time.Hour)
	if _, err := verifierOf(t, inSet).Verify(raw); err != nil {
		t.Fatalf("the data directory's token refused by a set holding its key: %v", err)
	}
}

// TestKeySetFile: generate, write, read back; refuse to overwrite; a file
// readable by others is refused with a message that says how to fix it.
func TestKeySetFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "issuer-keys.json")
	keys := generateKeys(t, 2)
	if err := WriteIssuerKeys(path, keys[:1], true); err != nil {
		t.Fatal(err)
	}
	if err := WriteIssuerKeys(path, keys, true); !errors.Is(err, ErrKeySetExists) {
		t.Fatalf("creating over an existing set: %v, want ErrKeySetExists", err)
	}
	if err := WriteIssuerKeys(path, keys, false); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %#o, want 0600", info.Mode().Perm())
	}
	got, err := ReadIssuerKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].KeyID != keys[0].KeyID || got[1].KeyID != keys[1].KeyID || !got[1].Private.Equal(keys[1].Private) {
		t.Fatalf("read back %v", got)
	}
	iss, err := OpenIssuerKeys(path, keys[1].KeyID, builtinIssuer, testAudience)
	if err != nil || iss.KeyID() != keys[1].KeyID {
		t.Fatalf("OpenIssuerKeys: %v, kid %v", err, iss)
	}
	if _, err := OpenIssuerKeys(path, "nope", builtinIssuer, testAudience); err == nil || !strings.Contains(err.Error(), `"nope" is not in the key set`) {
		t.Fatalf("absent signing kid: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	for _, mode := range []os.FileMode{0o604, 0o644, 0o660, 0o620, 0o700 | 0o070} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadIssuerKeys(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("key set of mode %#o: %v", mode, err)
		}
	}
	// Readable by its group: only when root owns it (a Kubernetes Secret).
	for _, mode := range []os.FileMode{0o640, 0o440} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadIssuerKeys(path)
		if root := os.Geteuid() == 0; root != (err == nil) {
			t.Fatalf("key set of mode %#o, owned by root %v: %v", mode, root, err)
		}
	}
}

// TestKeySetBadFiles: every malformed set is refused with a message that
// names what is wrong.
func TestKeySetBadFiles(t *testing.T) {
	t.Parallel()
	keys := generateKeys(t, 1)
	good, err := MarshalIssuerKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(good, &set); err != nil {
		t.Fatal(err)
	}
	jwk := set.Keys[0]
	with := func(change func(k map[string]any)) string {
		k := map[string]any{}
		for name, v := range jwk {
			k[name] = v
		}
		change(k)
		b, _ := json.Marshal(map[string]any{"keys": []any{k}})
		return string(b)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	b64 := base64.RawURLEncoding.EncodeToString
	twice := func(a, b map[string]any) string {
		out, _ := json.Marshal(map[string]any{"keys": []any{a, b}})
		return string(out)
	}
	other := generateKeys(t, 1)
	otherDoc, _ := MarshalIssuerKeys(other)
	var otherSet struct {
		Keys []map[string]any `json:"keys"`
	}
	_ = json.Unmarshal(otherDoc, &otherSet)
	sameKid := map[string]any{}
	for name, v := range otherSet.Keys[0] {
		sameKid[name] = v
	}
	sameKid["kid"] = jwk["kid"]

	tests := []struct {
		name, doc, want string
	}{
		{"not JSON", "issuer key", "not a JSON Web Key Set"},
		{"a PEM key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n", "not a JSON Web Key Set"},
		{"no keys", `{"keys":[]}`, "holds no key"},
		{"not a set", `{"kty":"OKP"}`, "holds no key"},
		{"duplicate member", `{"keys":[],"keys":[]}`, "not a JSON Web Key Set"},
		{"RSA", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}`, "must be Ed25519"},
		{"X25519", with(func(k map[string]any) { k["crv"] = "X25519" }), "must be Ed25519"},
		{"public only", with(func(k map[string]any) { delete(k, "d") }), `private part ("d") is missing`},
		{"x not d's", with(func(k map[string]any) { k["x"] = b64(otherPriv.Public().(ed25519.PublicKey)) }), `"x" is not the public key of "d"`},
		{"short d", with(func(k map[string]any) { k["d"] = b64([]byte("short")) }), "key 1"},
		{"other alg", with(func(k map[string]any) { k["alg"] = "RS256" }), "EdDSA"},
		{"encryption key", with(func(k map[string]any) { k["use"] = "enc" }), "use sig"},
		{"duplicate kid", twice(jwk, sameKid), "every kid must be unique"},
		{"same key twice", twice(jwk, with2(jwk, "kid", "another")), "is the same key as key 1"},
		{"kid with a space", with(func(k map[string]any) { k["kid"] = "2025 rotation" }), "printable ASCII"},
		{"kid not ASCII", with(func(k map[string]any) { k["kid"] = "clé-2025" }), "printable ASCII"},
		{"kid too long", with(func(k map[string]any) { k["kid"] = strings.Repeat("k", 300) }), "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIssuerKeys([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseIssuerKeys = %v, want an error naming %q", err, tt.want)
			}
		})
	}

	// A key without a kid is named by its thumbprint.
	noKid := with(func(k map[string]any) { delete(k, "kid") })
	got, err := ParseIssuerKeys([]byte(noKid))
	if err != nil || got[0].KeyID != keys[0].KeyID {
		t.Fatalf("key without kid: %v, %v; want kid %s", got, err, keys[0].KeyID)
	}
}

func with2(k map[string]any, name string, v any) map[string]any {
	out := map[string]any{}
	for n, x := range k {
		out[n] = x
	}
	out[name] = v
	return out
}

// FuzzParseIssuerKeys: arbitrary bytes never panic the key set parser, and
// a set it accepts survives a write and a read with the same kids and keys.
func FuzzParseIssuerKeys(f *testing.F) {
	keys := generateKeys(f, 2)
	doc, err := MarshalIssuerKeys(keys)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseIssuerKeys(b)
		if err != nil {
			return
		}
		out, err := MarshalIssuerKeys(got)
		if err != nil {
			t.Fatalf("marshal an accepted set: %v", err)
		}
		back, err := ParseIssuerKeys(out)
		if err != nil || len(back) != len(got) {
			t.Fatalf("round trip of %s: %v", out, err)
		}
		for i := range got {
			if back[i].KeyID != got[i].KeyID || !back[i].Private.Equal(got[i].Private) {
				t.Fatalf("key %d changed in a round trip", i)
			}
		}
	})
}
