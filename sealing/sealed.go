package sealing

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SealVersion is the format version of a [Sealed].
const SealVersion = 1

// MaxPlaintext bounds what [Seal] accepts: credentials, not documents.
const MaxPlaintext = 64 << 10

// textPrefix starts the text form of a [Sealed].
const textPrefix = "sealed:v"

// b64 is the one base64 encoding of nonces and ciphertexts. Strict decoding
// refuses non-zero padding bits, so each value has exactly one encoding.
var b64 = base64.StdEncoding.Strict()

// Sealed is a secret encrypted under an organization's data key with
// AES-256-GCM, fit to store in an event. It carries no plaintext and no key
// material; formatting it shows its versions and size only.
//
// Its JSON form is an object with the format, the data key version and the
// nonce and ciphertext in standard base64; its text form is
// "sealed:v1:<key version>:<nonce>:<ciphertext>".
type Sealed struct {
	// Format is the seal format version, [SealVersion].
	Format int
	// KeyVersion is [DataKey.Version] of the key that sealed it.
	KeyVersion uint32
	Nonce      []byte
	// Ciphertext includes the GCM tag.
	Ciphertext []byte
}

// Seal encrypts plaintext with the organization's data key. The
// organization id and the purpose (for example
// "datasource:<id>:credentials") are bound as additional data: [Open]
// fails unless given the same two, so a sealed value cannot be moved to
// another organization or resource. Each call draws a fresh random nonce;
// with 96-bit nonces a data key should seal fewer than 2^32 values.
func Seal(key DataKey, orgID string, plaintext []byte, purpose string) (Sealed, error) {
	if key.IsZero() {
		return Sealed{}, errors.New("sealing: seal: zero data key")
	}
	if orgID == "" || purpose == "" {
		return Sealed{}, errors.New("sealing: seal: organization id and purpose are required")
	}
	if len(plaintext) > MaxPlaintext {
		return Sealed{}, fmt.Errorf("sealing: seal: %d bytes exceeds the limit of %d", len(plaintext), MaxPlaintext)
	}
	aead, err := key.gcm()
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return Sealed{}, fmt.Errorf("sealing: seal: %w", err)
	}
	return Sealed{
		Format:     SealVersion,
		KeyVersion: key.version,
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plaintext, sealAAD(key.version, orgID, purpose)),
	}, nil
}

// Open decrypts a value sealed by [Seal] for the same organization and
// purpose. It fails with [ErrWrongKeyVersion] if s names another data key
// version than key, [ErrMalformed] if s is not well formed, and
// [ErrAuthentication] for anything else: another key, organization or
// purpose, or an altered value.
func Open(key DataKey, orgID string, s Sealed, purpose string) ([]byte, error) {
	if key.IsZero() {
		return nil, errors.New("sealing: open: zero data key")
	}
	if s.Format != SealVersion {
		return nil, fmt.Errorf("%w: sealed format %d, want %d", ErrMalformed, s.Format, SealVersion)
	}
	if s.KeyVersion != key.version {
		return nil, fmt.Errorf("%w: sealed under version %d, given version %d", ErrWrongKeyVersion, s.KeyVersion, key.version)
	}
	aead, err := key.gcm()
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(s.Nonce), aead.NonceSize())
	}
	if len(s.Ciphertext) < aead.Overhead() {
		return nil, fmt.Errorf("%w: ciphertext is %d bytes, shorter than the %d-byte tag", ErrMalformed, len(s.Ciphertext), aead.Overhead())
	}
	plaintext, err := aead.Open(nil, s.Nonce, s.Ciphertext, sealAAD(s.KeyVersion, orgID, purpose))
	if err != nil {
		return nil, fmt.Errorf("open sealed value for organization %q, purpose %q: %w", orgID, purpose, ErrAuthentication)
	}
	return plaintext, nil
}

func sealAAD(version uint32, orgID, purpose string) []byte {
	return additionalData(sealLabel, version, orgID, purpose)
}

// String shows the versions and the ciphertext size only.
func (s Sealed) String() string {
	return fmt.Sprintf("sealing.Sealed{format: %d, key version: %d, %d bytes}", s.Format, s.KeyVersion, len(s.Ciphertext))
}

// GoString is [Sealed.String].
func (s Sealed) GoString() string { return s.String() }

// MarshalText returns "sealed:v1:<key version>:<nonce>:<ciphertext>".
func (s Sealed) MarshalText() ([]byte, error) {
	if s.Format != SealVersion {
		return nil, fmt.Errorf("%w: sealed format %d, want %d", ErrMalformed, s.Format, SealVersion)
	}
	text := textPrefix + strconv.Itoa(s.Format) + ":" + strconv.FormatUint(uint64(s.KeyVersion), 10) + ":" +
		b64.EncodeToString(s.Nonce) + ":" + b64.EncodeToString(s.Ciphertext)
	return []byte(text), nil
}

// UnmarshalText parses the form [Sealed.MarshalText] writes. It checks the
// shape only; [Open] checks the rest.
func (s *Sealed) UnmarshalText(text []byte) error {
	rest, ok := strings.CutPrefix(string(text), textPrefix)
	if !ok {
		return fmt.Errorf("%w: sealed text does not start with %q", ErrMalformed, textPrefix)
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 4 {
		return fmt.Errorf("%w: sealed text has %d fields, want 4", ErrMalformed, len(parts))
	}
	format, err := strconv.ParseUint(parts[0], 10, 8)
	if err != nil || strconv.FormatUint(format, 10) != parts[0] {
		return fmt.Errorf("%w: sealed text format version", ErrMalformed)
	}
	keyVersion, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || strconv.FormatUint(keyVersion, 10) != parts[1] {
		return fmt.Errorf("%w: sealed text key version", ErrMalformed)
	}
	nonce, err := decodeCanonical(parts[2])
	if err != nil {
		return fmt.Errorf("%w: sealed text nonce: %v", ErrMalformed, err)
	}
	ciphertext, err := decodeCanonical(parts[3])
	if err != nil {
		return fmt.Errorf("%w: sealed text ciphertext: %v", ErrMalformed, err)
	}
	*s = Sealed{Format: int(format), KeyVersion: uint32(keyVersion), Nonce: nonce, Ciphertext: ciphertext}
	return nil
}

// decodeCanonical decodes standard base64 and refuses any other spelling of
// the same bytes (the decoder skips line breaks), so that a stored value has
// one form only.
func decodeCanonical(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if b64.EncodeToString(b) != s {
		return nil, errors.New("not in canonical standard base64")
	}
	return b, nil
}

// sealedJSON is the JSON form of a Sealed.
type sealedJSON struct {
	Format     int    `json:"format"`
	KeyVersion uint32 `json:"key_version"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// MarshalJSON writes {"format":1,"key_version":…,"nonce":…,"ciphertext":…}.
func (s Sealed) MarshalJSON() ([]byte, error) {
	return json.Marshal(sealedJSON{
		Format:     s.Format,
		KeyVersion: s.KeyVersion,
		Nonce:      b64.EncodeToString(s.Nonce),
		Ciphertext: b64.EncodeToString(s.Ciphertext),
	})
}

// UnmarshalJSON reads the form [Sealed.MarshalJSON] writes and refuses
// unknown fields.
func (s *Sealed) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v sealedJSON
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%w: sealed JSON: %v", ErrMalformed, err)
	}
	nonce, err := decodeCanonical(v.Nonce)
	if err != nil {
		return fmt.Errorf("%w: sealed JSON nonce: %v", ErrMalformed, err)
	}
	ciphertext, err := decodeCanonical(v.Ciphertext)
	if err != nil {
		return fmt.Errorf("%w: sealed JSON ciphertext: %v", ErrMalformed, err)
	}
	*s = Sealed{Format: v.Format, KeyVersion: v.KeyVersion, Nonce: nonce, Ciphertext: ciphertext}
	return nil
}
