package chain

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Checkpoint is a signed statement that an organization's chain had head
// Head after its Seq-th event, at Time. It carries no global log position:
// a number that grows with every tenant's writes would let one tenant watch
// the others (the record keeps the position for itself).
type Checkpoint struct {
	OrgID string    `json:"org"`
	Seq   uint64    `json:"seq"`
	Head  Digest    `json:"head"`
	Time  time.Time `json:"time"`
	// KeyID names the key that signed, as the JWKS lists it.
	KeyID     string `json:"kid"`
	Signature []byte `json:"signature"`
}

// Canonical returns the bytes the signature covers: the checkpoint
// without its signature as JSON with its keys in sorted order, no spaces,
// the head in hex and the time in RFC 3339 UTC with nanoseconds.
func (c Checkpoint) Canonical() []byte {
	b, err := json.Marshal(struct {
		Head  string `json:"head"`
		KeyID string `json:"kid"`
		OrgID string `json:"org"`
		Seq   uint64 `json:"seq"`
		Time  string `json:"time"`
	}{c.Head.String(), c.KeyID, c.OrgID, c.Seq, c.Time.UTC().Format(time.RFC3339Nano)})
	if err != nil { // strings and a number always marshal
		panic(fmt.Sprintf("chain: canonical checkpoint: %v", err))
	}
	return b
}

// MarshalJSON writes the checkpoint with its signature in unpadded
// base64url, as JWS does.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	type plain Checkpoint
	return json.Marshal(struct {
		plain
		Time      string `json:"time"`
		Signature string `json:"signature"`
	}{plain(c), c.Time.UTC().Format(time.RFC3339Nano), base64.RawURLEncoding.EncodeToString(c.Signature)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	type plain Checkpoint
	var v struct {
		plain
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(v.Signature)
	if err != nil {
		return fmt.Errorf("chain: checkpoint signature: %w", err)
	}
	*c = Checkpoint(v.plain)
	c.Signature = sig
	return nil
}

// Signer signs checkpoints with the deployment's key (identity.Issuer).
type Signer interface {
	// SigningKey returns the kid of the key that signs now, as the
	// published JWKS names it, and a function returning the Ed25519
	// signature of a message under that key. One call gives both, so a
	// checkpoint names the key that signed it even when the signer's key
	// set is replaced meanwhile (a server following its key set file).
	SigningKey() (kid string, sign func(msg []byte) []byte)
}

// sign fills in the key id and the signature.
func sign(c Checkpoint, s Signer) Checkpoint {
	kid, signBytes := s.SigningKey()
	c.KeyID = kid
	c.Time = c.Time.UTC()
	c.Signature = signBytes(c.Canonical())
	return c
}

// PublicKeys finds a verification key by its kid.
type PublicKeys func(kid string) (ed25519.PublicKey, bool)

// ErrBadSignature: a checkpoint's signature does not verify, or its key
// is not known.
var ErrBadSignature = errors.New("checkpoint signature does not verify")

// VerifySignature checks c's signature with the key its kid names.
func (c Checkpoint) VerifySignature(keys PublicKeys) error {
	key, ok := keys(c.KeyID)
	if !ok {
		return fmt.Errorf("%w: unknown key %q", ErrBadSignature, c.KeyID)
	}
	if !ed25519.Verify(key, c.Canonical(), c.Signature) {
		return ErrBadSignature
	}
	return nil
}

// KeysFromJWKS returns the Ed25519 keys of a JWK Set document (the one
// served at /.well-known/jwks.json), by kid.
func KeysFromJWKS(doc []byte) (PublicKeys, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("chain: JWKS: %w", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("chain: JWKS key %q: bad x", k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, errors.New("chain: JWKS holds no Ed25519 key")
	}
	return func(kid string) (ed25519.PublicKey, bool) {
		k, ok := keys[kid]
		return k, ok
	}, nil
}
