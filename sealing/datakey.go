package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WrapVersion is the format version of a [WrappedKey].
const WrapVersion = 1

// wrapLabel and sealLabel separate the additional data of wrapped keys from
// that of sealed values, so one can never be taken for the other.
const (
	wrapLabel = "palisade sealing wrapped data key v1"
	sealLabel = "palisade sealing sealed value v1"
)

var (
	// ErrWrongMasterKey is returned when a wrapped key names another master
	// key than the one given.
	ErrWrongMasterKey = errors.New("sealing: data key is wrapped under another master key")
	// ErrWrongKeyVersion is returned when a sealed value names another data
	// key version than the key given.
	ErrWrongKeyVersion = errors.New("sealing: value is sealed under another data key version")
	// ErrMalformed is returned for input that is not a well-formed wrapped
	// key or sealed value (bad version, nonce size, encoding, truncation).
	ErrMalformed = errors.New("sealing: malformed input")
	// ErrAuthentication is returned when decryption fails: the key, the
	// organization or the purpose differ from those used when sealing, or
	// the ciphertext was altered. AES-GCM cannot tell these apart.
	ErrAuthentication = errors.New("sealing: authentication failed (wrong key, organization or purpose, or altered ciphertext)")
	// ErrNoKey is returned by keepers of data keys (package keyring) for a
	// key that does not exist: never created, or destroyed. What was sealed
	// under it cannot be opened again.
	ErrNoKey = errors.New("sealing: no such data key")
)

// DataKey is an organization's data-encryption key, unwrapped. It lives in
// memory only; what is stored is its [WrappedKey]. Formatting it shows its
// version only.
type DataKey struct {
	key     [KeySize]byte
	version uint32
	valid   bool
	// id caches [DataKey.ID], which every sealed content value names.
	id string
	// aead is the key's AES-GCM, made once: every content value of every
	// event is sealed and opened with it, and making it (the AES key
	// schedule, the GHASH tables) cost as much as sealing a short value.
	// The standard library's GCM keeps no state between calls, so one
	// serves concurrent seals and opens.
	aead cipher.AEAD
}

// gcm returns the key's AES-GCM, made once at construction (or now, for a
// key made another way).
func (k DataKey) gcm() (cipher.AEAD, error) {
	if k.aead != nil {
		return k.aead, nil
	}
	return newGCM(k.key[:])
}

// Version is the data key version that [Seal] writes into a [Sealed], so
// that an organization's data key can be rotated while older values still
// name the key that opens them.
func (k DataKey) Version() uint32 { return k.version }

// IsZero reports whether k is the zero value, which is not a usable key.
func (k DataKey) IsZero() bool { return !k.valid }

// String shows the version only.
func (k DataKey) String() string { return fmt.Sprintf("sealing.DataKey{version: %d}", k.version) }

// GoString shows the version only.
func (k DataKey) GoString() string { return k.String() }

// Format makes every fmt verb print [DataKey.String].
func (k DataKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// WrappedKey is a data key encrypted under a master key, fit to store in an
// event or a table. It is bound to one organization.
type WrappedKey struct {
	// Format is the wrap format version, [WrapVersion].
	Format int `json:"format"`
	// MasterKeyID is [MasterKey.ID] of the key that wrapped it.
	MasterKeyID string `json:"master_key_id"`
	// Version is the data key version.
	Version uint32 `json:"version"`
	// Nonce and Ciphertext are the AES-256-GCM nonce and the sealed key
	// with its tag; JSON carries them as standard base64.
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// NewDataKey returns a new random data key of the given version for the
// organization, and its form wrapped under master with the organization id
// as additional data, so that the wrapped key of one organization cannot be
// unwrapped as another's.
func NewDataKey(master MasterKey, orgID string, version uint32) (DataKey, WrappedKey, error) {
	if master.IsZero() {
		return DataKey{}, WrappedKey{}, fmt.Errorf("%w: zero master key", ErrMasterKey)
	}
	if orgID == "" {
		return DataKey{}, WrappedKey{}, errors.New("sealing: new data key: empty organization id")
	}
	key := DataKey{version: version, valid: true}
	if _, err := io.ReadFull(rand.Reader, key.key[:]); err != nil {
		return DataKey{}, WrappedKey{}, fmt.Errorf("sealing: new data key: %w", err)
	}
	key.id = key.computeID()
	aead, err := newGCM(key.key[:])
	if err != nil {
		return DataKey{}, WrappedKey{}, err
	}
	key.aead = aead
	wrapped, err := wrap(master, key, orgID)
	if err != nil {
		return DataKey{}, WrappedKey{}, err
	}
	return key, wrapped, nil
}

// UnwrapDataKey returns the data key that wrapped holds for the
// organization. It fails with [ErrWrongMasterKey] if wrapped was made under
// another master key, and with [ErrAuthentication] if it belongs to another
// organization or was altered.
func UnwrapDataKey(master MasterKey, wrapped WrappedKey, orgID string) (DataKey, error) {
	if master.IsZero() {
		return DataKey{}, fmt.Errorf("%w: zero master key", ErrMasterKey)
	}
	if wrapped.Format != WrapVersion {
		return DataKey{}, fmt.Errorf("%w: wrapped key format %d, want %d", ErrMalformed, wrapped.Format, WrapVersion)
	}
	if wrapped.MasterKeyID != master.ID() {
		return DataKey{}, fmt.Errorf("%w: wrapped under %q, given %q", ErrWrongMasterKey, wrapped.MasterKeyID, master.ID())
	}
	aead, err := newGCM(master.key[:])
	if err != nil {
		return DataKey{}, err
	}
	if len(wrapped.Nonce) != aead.NonceSize() {
		return DataKey{}, fmt.Errorf("%w: wrapped key nonce is %d bytes, want %d", ErrMalformed, len(wrapped.Nonce), aead.NonceSize())
	}
	if len(wrapped.Ciphertext) != KeySize+aead.Overhead() {
		return DataKey{}, fmt.Errorf("%w: wrapped key is %d bytes, want %d", ErrMalformed, len(wrapped.Ciphertext), KeySize+aead.Overhead())
	}
	raw, err := aead.Open(nil, wrapped.Nonce, wrapped.Ciphertext, wrapAAD(master.ID(), orgID, wrapped.Version))
	if err != nil {
		return DataKey{}, fmt.Errorf("unwrap data key for organization %q: %w", orgID, ErrAuthentication)
	}
	key := DataKey{version: wrapped.Version, valid: true}
	copy(key.key[:], raw)
	clear(raw)
	key.id = key.computeID()
	if key.aead, err = newGCM(key.key[:]); err != nil {
		return DataKey{}, err
	}
	return key, nil
}

// Rewrap moves a wrapped data key from one master key to another, for a
// master key rotation. The data key itself, and so every value sealed
// under it, is unchanged.
func Rewrap(old, next MasterKey, wrapped WrappedKey, orgID string) (WrappedKey, error) {
	if next.IsZero() {
		return WrappedKey{}, fmt.Errorf("%w: zero new master key", ErrMasterKey)
	}
	key, err := UnwrapDataKey(old, wrapped, orgID)
	if err != nil {
		return WrappedKey{}, fmt.Errorf("rewrap: %w", err)
	}
	return wrap(next, key, orgID)
}

func wrap(master MasterKey, key DataKey, orgID string) (WrappedKey, error) {
	aead, err := newGCM(master.key[:])
	if err != nil {
		return WrappedKey{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return WrappedKey{}, fmt.Errorf("sealing: wrap data key: %w", err)
	}
	return WrappedKey{
		Format:      WrapVersion,
		MasterKeyID: master.ID(),
		Version:     key.version,
		Nonce:       nonce,
		Ciphertext:  aead.Seal(nil, nonce, key.key[:], wrapAAD(master.ID(), orgID, key.version)),
	}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing: gcm: %w", err)
	}
	return aead, nil
}

func wrapAAD(masterID, orgID string, version uint32) []byte {
	return additionalData(wrapLabel, version, masterID, orgID)
}

// additionalData encodes a label, a version and fields, each field with
// its length first, so that no two different lists encode alike ("a:b" +
// "c" never equals "a" + "b:c").
func additionalData(label string, version uint32, fields ...string) []byte {
	b := make([]byte, 0, len(label)+4+8*len(fields))
	b = binary.BigEndian.AppendUint32(b, uint32(len(label)))
	b = append(b, label...)
	b = binary.BigEndian.AppendUint32(b, version)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}
