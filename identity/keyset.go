package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/MicahParks/jwkset"

	"github.com/palisadehq/palisade/strictjson"
)

// IssuerKey is one Ed25519 private key of the built-in issuer's key set,
// with the kid that tokens and audit checkpoints name it by.
type IssuerKey struct {
	KeyID   string
	Private ed25519.PrivateKey
}

// ErrKeySetExists: a key set file is already there and was not replaced.
var ErrKeySetExists = errors.New("issuer key set file already exists")

// maxKeySetBytes bounds what ReadIssuerKeys reads; one key is about 200
// bytes of JSON.
const maxKeySetBytes = 1 << 20

// GenerateIssuerKey returns a fresh Ed25519 key whose kid is its RFC 7638
// thumbprint, as the data directory's key has.
func GenerateIssuerKey() (IssuerKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return IssuerKey{}, fmt.Errorf("identity: generate issuer key: %w", err)
	}
	return IssuerKey{KeyID: thumbprint(pub), Private: key}, nil
}

// ReadIssuerKeys reads a key set file: a JSON Web Key Set (RFC 7517) of
// Ed25519 private keys (RFC 8037), in the order the file lists them. A file
// readable by others, or by its group unless root owns it, is refused (see
// checkKeySetMode); so is every key set ParseIssuerKeys refuses.
func ReadIssuerKeys(path string) ([]IssuerKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: issuer key set: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: issuer key set %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: issuer key set %s is not a regular file", path)
	}
	if err := checkKeySetMode(path, info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeySetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("identity: read issuer key set %s: %w", path, err)
	}
	if len(data) > maxKeySetBytes {
		return nil, fmt.Errorf("identity: issuer key set %s is larger than %d bytes", path, maxKeySetBytes)
	}
	keys, err := ParseIssuerKeys(data)
	if err != nil {
		return nil, fmt.Errorf("identity: issuer key set %s: %w", path, err)
	}
	return keys, nil
}

// checkKeySetMode refuses a key set file that others may read, or that its
// group may read unless root owns it. The exception is PostgreSQL's rule
// for its TLS key, and for the same reason: a Kubernetes Secret volume is
// owned by root, and a server that does not run as root can read it only
// through its group (fsGroup, mode 0440).
func checkKeySetMode(path string, info fs.FileInfo) error {
	if runtime.GOOS == "windows" { // no Unix permission bits worth checking
		return nil
	}
	perm := info.Mode().Perm()
	if perm&0o037 == 0 || (perm&0o037 == 0o040 && ownedByRoot(info)) {
		return nil
	}
	return fmt.Errorf("identity: issuer key set %s has mode %#o; it holds private keys and must not be readable by group or others "+
		"(chmod 600; or 440 when owned by root, as a Kubernetes Secret mounted with defaultMode 0440 and fsGroup is)", path, perm)
}

// ParseIssuerKeys parses a JWK Set document of Ed25519 private keys. Each
// key needs kty OKP, crv Ed25519, x and d (x must be d's public key); alg,
// when given, must be EdDSA and use, when given, sig. A key's kid is the
// file's, or its RFC 7638 thumbprint when the file gives none. An empty
// set, a repeated kid or a key listed twice is refused.
func ParseIssuerKeys(doc []byte) ([]IssuerKey, error) {
	if err := strictjson.CheckKeys(doc); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New(`the key set holds no key (want {"keys":[…]} with at least one Ed25519 private key)`)
	}
	keys := make([]IssuerKey, 0, len(set.Keys))
	kids := map[string]int{}
	publics := map[string]int{}
	for i, raw := range set.Keys {
		key, err := parseIssuerKey(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if j, ok := kids[key.KeyID]; ok {
			return nil, fmt.Errorf("key %d: kid %q is also key %d's; every kid must be unique", i+1, key.KeyID, j+1)
		}
		pub := string(key.Private.Public().(ed25519.PublicKey))
		if j, ok := publics[pub]; ok {
			return nil, fmt.Errorf("key %d (kid %q) is the same key as key %d", i+1, key.KeyID, j+1)
		}
		kids[key.KeyID], publics[pub] = i, i
		keys = append(keys, key)
	}
	return keys, nil
}

func parseIssuerKey(raw json.RawMessage) (IssuerKey, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return IssuerKey{}, fmt.Errorf("not a JSON Web Key: %w", err)
	}
	if m.KTY != jwkset.KtyOKP || m.CRV != jwkset.CrvEd25519 {
		return IssuerKey{}, fmt.Errorf("kty %q crv %q: the built-in issuer's keys must be Ed25519 (kty OKP, crv Ed25519)", m.KTY, m.CRV)
	}
	if m.ALG != "" && m.ALG != jwkset.AlgEdDSA {
		return IssuerKey{}, fmt.Errorf("alg %q: an Ed25519 key signs with EdDSA", m.ALG)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return IssuerKey{}, fmt.Errorf("use %q: the issuer's keys sign (use sig)", m.USE)
	}
	if m.D == "" {
		return IssuerKey{}, errors.New(`the private part ("d") is missing: the key set must hold private keys (palisade issuer-keys generate writes one)`)
	}
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
	if err != nil {
		return IssuerKey{}, err
	}
	parsed, ok := jwk.Key().(ed25519.PrivateKey)
	if !ok {
		return IssuerKey{}, fmt.Errorf("not an Ed25519 private key but %T", jwk.Key())
	}
	// jwkset joins d and x as given; a key whose x is not d's public key
	// would sign tokens that the published JWKS does not verify.
	key := ed25519.NewKeyFromSeed(parsed.Seed())
	if !key.Public().(ed25519.PublicKey).Equal(parsed.Public()) {
		return IssuerKey{}, errors.New(`"x" is not the public key of "d"`)
	}
	kid := m.KID
	if kid == "" {
		kid = thumbprint(key.Public().(ed25519.PublicKey))
	}
	if !validKID(kid) {
		return IssuerKey{}, fmt.Errorf("kid %q is not 1 to %d printable ASCII characters without spaces: the verifier would refuse every token it signs", kid, maxKIDLen)
	}
	return IssuerKey{KeyID: kid, Private: key}, nil
}

// MarshalIssuerKeys returns keys as a JWK Set document with their private
// parts (kty, crv, x, d, kid, alg EdDSA, use sig), the form ReadIssuerKeys
// reads.
func MarshalIssuerKeys(keys []IssuerKey) ([]byte, error) {
	return keySetJSON(keys, true)
}

// keySetJSON builds the JWK Set of keys with jwkset, private parts or not.
func keySetJSON(keys []IssuerKey, private bool) ([]byte, error) {
	set := jwkset.NewMemoryStorage()
	for _, k := range keys {
		var key any = k.Private.Public()
		if private {
			key = k.Private
		}
		jwk, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{
			Marshal:  jwkset.JWKMarshalOptions{Private: private},
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgEdDSA, KID: k.KeyID, USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, fmt.Errorf("identity: issuer JWK %q: %w", k.KeyID, err)
		}
		if err := set.KeyWrite(context.Background(), jwk); err != nil {
			return nil, fmt.Errorf("identity: issuer JWK set: %w", err)
		}
	}
	var doc []byte
	var err error
	if private {
		doc, err = set.JSONPrivate(context.Background())
	} else {
		doc, err = set.JSONPublic(context.Background())
	}
	if err != nil {
		return nil, fmt.Errorf("identity: issuer JWK set: %w", err)
	}
	return doc, nil
}

// WriteIssuerKeys writes keys to path (mode 0600) through a temporary
// file in the same directory, so that a reader never sees half a set. With
// create it refuses a path that exists (ErrKeySetExists); without, it
// replaces the file.
func WriteIssuerKeys(path string, keys []IssuerKey, create bool) error {
	if len(keys) == 0 {
		return errors.New("identity: a key set needs at least one key")
	}
	doc, err := MarshalIssuerKeys(keys)
	if err != nil {
		return err
	}
	var pretty []byte
	if pretty, err = indentJSON(doc); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".issuer-keys-*.tmp") // created 0600
	if err != nil {
		return fmt.Errorf("identity: write issuer key set: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, pretty); err != nil {
		return fmt.Errorf("identity: write issuer key set: %w", err)
	}
	if create {
		// A link fails if the name exists: never replace a set by accident.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", ErrKeySetExists, path)
			}
			return fmt.Errorf("identity: install issuer key set: %w", err)
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("identity: install issuer key set: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func indentJSON(doc []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("identity: issuer JWK set: %w", err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("identity: issuer JWK set: %w", err)
	}
	return append(out, '\n'), nil
}

// OpenIssuerKeys returns the issuer of the key set file at path: it signs
// with the key named signingKID (the file's first key when empty) and
// verifies with every key of the set.
func OpenIssuerKeys(path, signingKID, issuerName, audience string) (*Issuer, error) {
	keys, err := ReadIssuerKeys(path)
	if err != nil {
		return nil, err
	}
	return NewIssuer(keys, signingKID, issuerName, audience)
}

// NewIssuer returns an issuer over a key set: it signs tokens and audit
// checkpoints with the key named signingKID (keys[0] when empty), verifies
// tokens with whichever key of the set their kid names, and publishes
// every public key in its JWKS. Replicas given the same set and signing kid
// mint and verify the same tokens.
func NewIssuer(keys []IssuerKey, signingKID, issuerName, audience string) (*Issuer, error) {
	if issuerName == "" || audience == "" {
		return nil, errors.New("identity: issuer name and audience are required")
	}
	if len(keys) == 0 {
		return nil, errors.New("identity: the issuer needs at least one key")
	}
	signing := -1
	seen := map[string]bool{}
	kids := make([]string, len(keys))
	for i, k := range keys {
		if k.KeyID == "" {
			return nil, fmt.Errorf("identity: issuer key %d has no kid", i+1)
		}
		if !validKID(k.KeyID) {
			// The verifier refuses such a kid in a token's header: every
			// token the key signed would be refused.
			return nil, fmt.Errorf("identity: issuer key %d: kid %q is not 1 to %d printable ASCII characters without spaces", i+1, k.KeyID, maxKIDLen)
		}
		if len(k.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("identity: issuer key %q is not an Ed25519 private key", k.KeyID)
		}
		if seen[k.KeyID] {
			return nil, fmt.Errorf("identity: kid %q names two keys of the set", k.KeyID)
		}
		seen[k.KeyID] = true
		kids[i] = k.KeyID
		if signing < 0 && (signingKID == "" || k.KeyID == signingKID) {
			signing = i
		}
	}
	if signing < 0 {
		return nil, fmt.Errorf("identity: signing kid %q is not in the key set (its kids: %s)", signingKID, quoteList(kids))
	}
	// The signing key first: DeriveSecrets and the JWKS list it first.
	ordered := append([]IssuerKey{keys[signing]}, keys[:signing]...)
	ordered = append(ordered, keys[signing+1:]...)
	return newIssuerSet(ordered, issuerName, audience)
}

func quoteList(items []string) string {
	out := ""
	for i, s := range items {
		if i > 0 {
			out += ", "
		}
		out += quote(s)
	}
	return out
}

// PublicJWKS returns the public JWK Set of keys: what the issuer of that set
// publishes, and what palisade audit verify --jwks reads.
func PublicJWKS(keys []IssuerKey) ([]byte, error) {
	return keySetJSON(keys, false)
}

// DataDirIssuerKey reads the key a data directory's issuer signs with
// (never creating it), with its thumbprint kid: the key to put first in a
// new key set, so that tokens it signed keep verifying when the replicas
// move to the set.
func DataDirIssuerKey(dataDir string) (IssuerKey, error) {
	path := filepath.Join(dataDir, IssuerKeyFile)
	key, err := loadKey(path)
	if err != nil {
		return IssuerKey{}, fmt.Errorf("identity: issuer key of %s: %w", dataDir, err)
	}
	return IssuerKey{KeyID: thumbprint(key.Public().(ed25519.PublicKey)), Private: key}, nil
}
