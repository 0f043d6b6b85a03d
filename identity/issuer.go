package identity

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// IssuerKeyFile is the name of the built-in issuer's private key in the
// data directory: an Ed25519 key, PKCS#8, PEM, mode 0600.
const IssuerKeyFile = "issuer-ed25519.pem"

// algEdDSA is the only algorithm the built-in issuer signs with.
const algEdDSA = "EdDSA"

// maxKeyFileBytes bounds what LoadOrCreateIssuer reads; a PEM Ed25519 key is
// about 120 bytes.
const maxKeyFileBytes = 64 << 10

// ErrUnknownKey is returned by a key function when the token's kid is not in
// the trusted key set. Verify reports it as ReasonUnknownKey.
var ErrUnknownKey = errors.New("unknown signing key")

// Issuer is Palisade's built-in token issuer. It signs with one Ed25519
// key and verifies with every key of its set, each named by its kid, so
// that keys can be rotated: LoadOrCreateIssuer keeps a set of one key in
// the data directory (generated on first start, loaded afterwards, so
// tokens survive restarts); OpenIssuerKeys reads a shared key set file, so
// that every replica mints and verifies the same tokens. Swap replaces
// the set while the issuer is in use (a server following its key set
// file). It is safe for concurrent use.
type Issuer struct {
	name     string
	audience string
	set      atomic.Pointer[keySet]
	now      func() time.Time
}

// keySet is one key set of an issuer, never changed once built: Swap
// replaces the whole of it, and every method loads it once, so that a
// token's kid and signature, or a checkpoint's, always name one key, and
// a verification sees one set or the other, never half of each.
type keySet struct {
	// kid, private and public are the signing key's.
	kid     string
	private ed25519.PrivateKey
	public  ed25519.PublicKey
	// keys is the whole set, signing key first; verify finds a kid's
	// public key.
	keys   []IssuerKey
	verify map[string]ed25519.PublicKey
	jwks   []byte
}

// LoadOrCreateIssuer loads the issuer key from dataDir/issuer-ed25519.pem,
// creating it (mode 0600) if it does not exist. A key file readable by group
// or others is refused rather than used. issuerName becomes the iss of every
// token, audience their aud.
func LoadOrCreateIssuer(dataDir, issuerName, audience string) (*Issuer, error) {
	if dataDir == "" || issuerName == "" || audience == "" {
		return nil, errors.New("identity: data directory, issuer name and audience are required")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, IssuerKeyFile)
	key, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(dataDir, path)
	}
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("identity: issuer key has no Ed25519 public key")
	}
	return newIssuerSet([]IssuerKey{{KeyID: thumbprint(pub), Private: key}}, issuerName, audience)
}

// newIssuerSet builds the issuer of keys, which are valid and have unique
// kids; keys[0] signs.
func newIssuerSet(keys []IssuerKey, name, audience string) (*Issuer, error) {
	doc, err := PublicJWKS(keys)
	if err != nil {
		return nil, err
	}
	verify := make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		verify[k.KeyID] = k.Private.Public().(ed25519.PublicKey)
	}
	signing := keys[0]
	i := &Issuer{name: name, audience: audience, now: time.Now}
	i.set.Store(&keySet{
		kid:     signing.KeyID,
		private: signing.Private,
		public:  verify[signing.KeyID],
		keys:    append([]IssuerKey(nil), keys...),
		verify:  verify,
		jwks:    doc,
	})
	return i, nil
}

// Swap makes i sign, verify, publish and derive with next's key set from
// now on, as one step: a call already holding i's set (a verification, a
// mint) finishes with it, every later one uses next's. next is built and
// checked in full beforehand (NewIssuer, OpenIssuerKeys), so a set that
// fails to load never replaces a working one. Both must have the same
// name and audience: tokens keep their iss and aud across a rotation.
func (i *Issuer) Swap(next *Issuer) error {
	if next.name != i.name || next.audience != i.audience {
		return fmt.Errorf("identity: swap the keys of issuer %s (audience %s) for those of %s (audience %s)",
			quote(i.name), quote(i.audience), quote(next.name), quote(next.audience))
	}
	i.set.Store(next.set.Load())
	return nil
}

// SameKeys reports whether other holds the same keys as i, under the same
// kids and in the same order, with the same signing key: swapping one
// for the other would change nothing.
func (i *Issuer) SameKeys(other *Issuer) bool {
	a, b := i.set.Load(), other.set.Load()
	return slices.EqualFunc(a.keys, b.keys, func(x, y IssuerKey) bool {
		return x.KeyID == y.KeyID && x.Private.Equal(y.Private)
	})
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (RFC 8037 §2): a kid that is stable for the key and reveals nothing else.
func thumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // fs.ErrNotExist is how the caller knows to create it
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: stat issuer key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: issuer key %s is not a regular file", path)
	}
	// Windows reports no Unix permission bits worth checking.
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity: issuer key %s has mode %#o; it must not be readable by group or others (chmod 600)", path, info.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes))
	if err != nil {
		return nil, fmt.Errorf("identity: read issuer key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: issuer key %s is not a PEM PRIVATE KEY", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: issuer key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: issuer key %s is a %T, not Ed25519", path, parsed)
	}
	return key, nil
}

// createKey writes a fresh key to a private temporary file and links it into
// place, so that the key file is never seen half written and two processes
// starting at once end up with the same key (the loser loads the winner's).
func createKey(dir, path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate issuer key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("identity: encode issuer key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	tmp, err := os.CreateTemp(dir, ".issuer-ed25519-*.tmp") // created 0600
	if err != nil {
		return nil, fmt.Errorf("identity: create issuer key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, data); err != nil {
		return nil, fmt.Errorf("identity: write issuer key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path)
		}
		return nil, fmt.Errorf("identity: install issuer key: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		_ = d.Close()
	}
	return key, nil
}

func writeAndSync(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Name returns the issuer name, the iss of every token it mints.
func (i *Issuer) Name() string { return i.name }

// KeyID returns the kid of the signing key (its RFC 7638 thumbprint for
// the data directory's key).
func (i *Issuer) KeyID() string { return i.set.Load().kid }

// KeyIDs returns the kids of every key of the set, the signing key's first.
func (i *Issuer) KeyIDs() []string {
	keys := i.set.Load().keys
	out := make([]string, len(keys))
	for n, k := range keys {
		out[n] = k.KeyID
	}
	return out
}

// Mint signs c as a token valid for ttl. It sets iss, aud, iat, nbf, exp and
// jti (a UUIDv7) itself, whatever c holds, and puts the key's kid in the
// header. It refuses claims that Verify would refuse (no subject, a bad kind,
// a user or service without org, a platform token with one, a malformed
// scope), so that it never hands out a token that cannot be used.
func (i *Issuer) Mint(c Claims, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("identity: token lifetime must be positive")
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("identity: token id: %w", err)
	}
	now := i.now().Truncate(time.Second)
	c.Issuer = i.name
	c.Audience = jwt.ClaimStrings{i.audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	c.ID = jti.String()
	if err := c.validate(true, true); err != nil {
		return "", fmt.Errorf("identity: mint: %w", err)
	}
	set := i.set.Load()
	token := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	token.Header["kid"] = set.kid
	return token.SignedString(set.private)
}

// JWKS returns the JWK Set document to serve at /.well-known/jwks.json:
// every public key of the set (the signing key first), each with its kid,
// alg EdDSA and use sig.
func (i *Issuer) JWKS() ([]byte, error) {
	return slices.Clone(i.set.Load().jwks), nil
}

// PublicKey returns the public key of the set that kid names: what checks
// a statement the issuer signed (an audit checkpoint) after Swap as
// before.
func (i *Issuer) PublicKey(kid string) (ed25519.PublicKey, bool) {
	key, ok := i.set.Load().verify[kid]
	return key, ok
}

// Keyfunc returns the key function for tokens of this issuer: the public
// key of the set that the token's kid names, and only for an EdDSA token.
// A kid not in the set is ErrUnknownKey. The key never comes from the
// token.
func (i *Issuer) Keyfunc() jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != algEdDSA {
			return nil, fmt.Errorf("%w: the built-in issuer signs only with EdDSA", ErrUnknownKey)
		}
		kid, _ := t.Header["kid"].(string)
		key, ok := i.set.Load().verify[kid]
		if !ok {
			return nil, fmt.Errorf("%w: kid %s", ErrUnknownKey, quote(kid))
		}
		return key, nil
	}
}

// Trusted returns the issuer as a TrustedIssuer for NewVerifier: EdDSA only,
// and the one issuer allowed to mint platform tokens.
func (i *Issuer) Trusted() TrustedIssuer {
	return TrustedIssuer{
		Issuer:        i.name,
		Keyfunc:       i.Keyfunc(),
		Algorithms:    []string{algEdDSA},
		AllowPlatform: true,
		BuiltIn:       true,
	}
}

// DeriveSecret derives a 32-byte secret for another use of this
// deployment's signing key (HMAC-SHA256 of label under the private key's
// seed), so that sealing keys need no configuration of their own. Different
// labels give independent secrets; the key itself never leaves. A secret
// derived from one key changes when the signing key does: what must still
// open after a rotation opens with DeriveSecrets.
func (i *Issuer) DeriveSecret(label string) []byte {
	return deriveSecret(i.set.Load().private, label)
}

// DeriveSecrets derives label's secret under every key of the set, the
// signing key's first (the one DeriveSecret returns). A value sealed under
// the first can then be opened by every replica holding the set, and one
// sealed before the signing key changed still opens while its key is in
// the set.
func (i *Issuer) DeriveSecrets(label string) [][]byte {
	keys := i.set.Load().keys
	out := make([][]byte, len(keys))
	for n, k := range keys {
		out[n] = deriveSecret(k.Private, label)
	}
	return out
}

func deriveSecret(key ed25519.PrivateKey, label string) []byte {
	mac := hmac.New(sha256.New, key.Seed())
	mac.Write([]byte("palisade derived secret: " + label))
	return mac.Sum(nil)
}

// SigningKey returns the kid of the key that signs now and a function
// that signs with that key, for statements other than tokens (the audit
// chain's checkpoints); a signature verifies with the key the JWKS
// publishes under that kid, so a statement must carry the kid beside the
// signature (a checkpoint's kid) for a verifier to pick the right key
// after a rotation. Both come from one key set, so that a Swap between
// naming the key and signing cannot make a statement name one key and be
// signed by another. Callers sign only their own canonical encodings,
// never bytes a client supplied, so that no signature can be passed off as
// a token's.
func (i *Issuer) SigningKey() (kid string, sign func(msg []byte) []byte) {
	set := i.set.Load()
	return set.kid, func(msg []byte) []byte { return ed25519.Sign(set.private, msg) }
}
