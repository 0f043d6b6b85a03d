// Package consistency owns the consistency token: an opaque, sealed value
// that tells a query "wait until the read models have applied at least this
// write" without telling the tenant holding it anything about the global
// log.
//
// A token carries a log position and the organization it was issued to,
// sealed with AES-256-GCM under a key only this deployment holds (every
// replica holds the same) and a random nonce, so two tokens for one position differ and tokens cannot be
// compared or decoded outside the deployment. It must never hand out a bare
// position, and never open a token for an organization other than the one
// it was issued to.
package consistency

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrInvalidToken is returned for a token that is malformed, tampered
// with, sealed by another deployment or issued to another organization.
var ErrInvalidToken = errors.New("invalid consistency token")

// keyLabel separates the sealing key from every other use of the secret it
// is derived from.
const keyLabel = "palisade consistency token v1"

// version is the first byte of every sealed token.
const version byte = 1

// maxTokenLen bounds what Open decodes; a token is about 50 characters.
const maxTokenLen = 256

// Sealer seals and opens consistency tokens. It is safe for concurrent use.
type Sealer struct {
	// aead seals; opens holds it first, then the keys that only open.
	aead  cipher.AEAD
	opens []cipher.AEAD
}

// NewSealer derives the sealing key from secret (HMAC-SHA256 of a fixed
// label) and returns a Sealer. The secret must be at least 32 bytes of
// private key material of this deployment. Tokens sealed under any of
// alsoOpen (derived likewise) open too: the secrets of keys being rotated
// in or out, so that a token sealed by a replica that signs with another
// key of the set, or sealed before the signing key changed, still opens.
func NewSealer(secret []byte, alsoOpen ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	for i, sec := range append([][]byte{secret}, alsoOpen...) {
		aead, err := newAEAD(sec)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.aead = aead
		}
		s.opens = append(s.opens, aead)
	}
	return s, nil
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	if len(secret) < 32 {
		return nil, errors.New("consistency: secret must be at least 32 bytes")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(keyLabel))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("consistency: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("consistency: gcm: %w", err)
	}
	return aead, nil
}

// Seal returns a token for position, readable only for orgID.
func (s *Sealer) Seal(orgID string, position uint64) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+8+s.aead.Overhead()+1)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("consistency: nonce: %w", err)
	}
	var plain [8]byte
	binary.BigEndian.PutUint64(plain[:], position)
	out := append([]byte{version}, nonce...)
	out = s.aead.Seal(out, nonce, plain[:], additional(orgID))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Open returns the position sealed in token, provided it was issued to
// orgID by this deployment. Anything else is ErrInvalidToken.
func (s *Sealer) Open(orgID, token string) (uint64, error) {
	if len(token) > maxTokenLen {
		return 0, ErrInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, ErrInvalidToken
	}
	ns := s.aead.NonceSize()
	if len(raw) != 1+ns+8+s.aead.Overhead() || raw[0] != version {
		return 0, ErrInvalidToken
	}
	// The token does not say which key sealed it (that would tell which
	// replica or rotation issued it): each key is tried, a handful at most.
	for _, aead := range s.opens {
		plain, err := aead.Open(nil, raw[1:1+ns], raw[1+ns:], additional(orgID))
		if err == nil && len(plain) == 8 {
			return binary.BigEndian.Uint64(plain), nil
		}
	}
	return 0, ErrInvalidToken
}

// additional binds a token to its organization and format version.
func additional(orgID string) []byte {
	return append([]byte{version}, orgID...)
}
