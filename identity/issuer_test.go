package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
)

func TestIssuerKeyPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := mustIssuer(t, dir, builtinIssuer)
	raw := mustMint(t, first, userClaims(), time.Hour)

	second := mustIssuer(t, dir, builtinIssuer)
	if first.KeyID() != second.KeyID() || !first.set.Load().public.Equal(second.set.Load().public) {
		t.Fatalf("second load has another key: kid %s, want %s", second.KeyID(), first.KeyID())
	}
	a, _ := first.JWKS()
	b, _ := second.JWKS()
	if !bytes.Equal(a, b) {
		t.Errorf("JWKS differs between loads:\n%s\n%s", a, b)
	}
	v := mustVerifier(t, VerifierConfig{
		Audience: testAudience,
		Issuers:  []TrustedIssuer{second.Trusted()},
		Now:      func() time.Time { return testNow },
	})
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("token of the first load refused by the second: %v", err)
	}

	// A fresh data directory is a fresh key: the old token is refused.
	other := mustIssuer(t, t.TempDir(), builtinIssuer)
	if other.KeyID() == first.KeyID() {
		t.Fatal("two data directories produced the same key")
	}
	v2 := mustVerifier(t, VerifierConfig{Audience: testAudience, Issuers: []TrustedIssuer{other.Trusted()}, Now: func() time.Time { return testNow }})
	c, err := v2.Verify(raw)
	requireRefused(t, raw, c, err, ReasonUnknownKey)
}

func TestIssuerKeyFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // created by LoadOrCreateIssuer
	iss := mustIssuer(t, dir, builtinIssuer)
	path := filepath.Join(dir, IssuerKeyFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %#o, want 0600", info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("key file is not one PEM PRIVATE KEY block:\n%s", data)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("not PKCS#8: %v", err)
	}
	ed, ok := key.(ed25519.PrivateKey)
	if !ok || !ed.Public().(ed25519.PublicKey).Equal(iss.set.Load().public) {
		t.Fatalf("key file holds %T, not the issuer's Ed25519 key", key)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the key (temporary file left behind?)", len(entries))
	}
}

func TestIssuerRefusesBadKeyFiles(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"garbage", []byte("not a key"), 0o600},
		{"empty", nil, 0o600},
		{"wrong PEM type", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), 0o600},
		{"PKCS#8 of an ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600},
		{"corrupt PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x01}}), 0o600},
	}
	if runtime.GOOS != "windows" {
		good := mustIssuer(t, t.TempDir(), builtinIssuer)
		der, err := x509.MarshalPKCS8PrivateKey(good.set.Load().private)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			data []byte
			mode os.FileMode
		}{"readable by others", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o644})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, IssuerKeyFile)
			if err := os.WriteFile(path, tc.data, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			if _, err := LoadOrCreateIssuer(dir, builtinIssuer, testAudience); err == nil {
				t.Fatal("bad key file accepted")
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, tc.data) {
				t.Fatal("bad key file was overwritten")
			}
		})
	}
}

func TestIssuerConcurrentFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 8
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			iss, err := LoadOrCreateIssuer(dir, builtinIssuer, testAudience)
			if err == nil {
				kids[i] = iss.KeyID()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("start %d got key %s, start 0 got %s", i, kids[i], kids[0])
		}
	}
}

func TestIssuerRequiresConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][3]string{{"", builtinIssuer, testAudience}, {dir, "", testAudience}, {dir, builtinIssuer, ""}} {
		if _, err := LoadOrCreateIssuer(args[0], args[1], args[2]); err == nil {
			t.Errorf("LoadOrCreateIssuer(%q, %q, %q) succeeded", args[0], args[1], args[2])
		}
	}
}

func TestIssuerJWKS(t *testing.T) {
	t.Parallel()
	iss := mustIssuer(t, t.TempDir(), builtinIssuer)
	doc, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}

	// No private key material, whatever the library would call it.
	var generic struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &generic); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, doc)
	}
	if len(generic.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(generic.Keys))
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := generic.Keys[0][private]; ok {
			t.Errorf("JWKS key has private member %q:\n%s", private, doc)
		}
	}
	privB64 := base64.RawURLEncoding.EncodeToString(iss.set.Load().private.Seed())
	if bytes.Contains(doc, []byte(privB64)) {
		t.Error("JWKS contains the private seed")
	}

	// It parses with jwkset and describes our public key.
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	jwks, err := set.JWKSlice()
	if err != nil || len(jwks) != 1 {
		t.Fatalf("jwkset parse: %d keys, %v", len(jwks), err)
	}
	m := jwks[0].Marshal()
	if m.KTY != jwkset.KtyOKP || m.CRV != jwkset.CrvEd25519 || m.ALG != jwkset.AlgEdDSA || m.USE != jwkset.UseSig || m.KID != iss.KeyID() || m.D != "" {
		t.Errorf("JWK %+v", m)
	}
	pub, ok := jwks[0].Key().(ed25519.PublicKey)
	if !ok || !pub.Equal(iss.set.Load().public) {
		t.Errorf("JWK key is %T, not the issuer's public key", jwks[0].Key())
	}

	// Changing the returned bytes does not change the issuer's document.
	doc[0] = 'X'
	again, _ := iss.JWKS()
	if again[0] != '{' {
		t.Error("JWKS returns its internal buffer")
	}
}

// TestIssuerKeyIDIsThumbprint pins the kid to RFC 7638 with the RFC 8037
// appendix A.3 example key.
func TestIssuerKeyIDIsThumbprint(t *testing.T) {
	t.Parallel()
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("thumbprint %s, want %s", got, want)
	}
}

func TestDeriveSecretIsStablePerKeyAndLabel(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateIssuer(t.TempDir(), "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	a := first.DeriveSecret("consistency tokens")
	if len(a) != 32 {
		t.Fatalf("secret of %d bytes, want 32", len(a))
	}
	if !bytes.Equal(a, reloaded.DeriveSecret("consistency tokens")) {
		t.Error("the secret changed across a restart")
	}
	if bytes.Equal(a, first.DeriveSecret("another use")) {
		t.Error("two labels derive the same secret")
	}
	if bytes.Equal(a, other.DeriveSecret("consistency tokens")) {
		t.Error("two deployments derive the same secret")
	}
}
