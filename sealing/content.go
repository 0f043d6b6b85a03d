package sealing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// contentLabel separates the additional data of sealed event content from
// that of sealed secrets and wrapped keys, so a value of one kind can never
// be opened as another.
const contentLabel = "palisade sealing event content v1"

// idLabel and handleLabel separate the key's identifier and the handles it
// derives from any other use of the key.
const (
	keyIDLabel  = "palisade data key id v1\x00"
	handleLabel = "palisade data key handle v1\x00"
)

// MaxContent bounds what [SealContent] accepts: one field of one event.
const MaxContent = 64 << 20

// ID names the key without revealing it: "<version>-<8 hex digits>", the
// digits being the start of a labelled HMAC of the key. A value sealed
// under a key records its ID, so that a key destroyed and later created
// again under the same version is never mistaken for the one that sealed
// the value (the value then reads as shredded, not as tampered with).
func (k DataKey) ID() string {
	if k.id != "" {
		return k.id
	}
	return k.computeID()
}

func (k DataKey) computeID() string {
	if !k.valid {
		return ""
	}
	mac := hmac.New(sha256.New, k.key[:])
	mac.Write([]byte(keyIDLabel))
	return strconv.FormatUint(uint64(k.version), 10) + "-" + hex.EncodeToString(mac.Sum(nil)[:4])
}

// ParseKeyID returns the version of an ID written by [DataKey.ID].
func ParseKeyID(id string) (uint32, error) {
	v, fp, ok := strings.Cut(id, "-")
	if !ok || len(fp) != 8 {
		return 0, fmt.Errorf("%w: key id", ErrMalformed)
	}
	if _, err := hex.DecodeString(fp); err != nil {
		return 0, fmt.Errorf("%w: key id", ErrMalformed)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != v {
		return 0, fmt.Errorf("%w: key id version", ErrMalformed)
	}
	return uint32(n), nil
}

// Handle derives a stable, opaque name for value under the key: 32 hex
// digits of a labelled HMAC. Without the key a handle cannot be linked to
// the value it names, so it can stand in a log for, say, the person whose
// key it names, where a plain hash of a short value could be guessed.
func (k DataKey) Handle(value string) string {
	mac := hmac.New(sha256.New, k.key[:])
	mac.Write([]byte(handleLabel))
	mac.Write([]byte(value))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// SealContent encrypts one content value of an event (text a member wrote,
// uploaded or asked) with AES-256-GCM under key, with the organization, the
// key's ID and purpose (which names the event and the field) bound as
// additional data. It returns the nonce followed by the ciphertext and tag.
// Unlike [Seal], which takes credentials, it accepts documents up to
// [MaxContent].
func SealContent(key DataKey, orgID string, plaintext []byte, purpose string) ([]byte, error) {
	if key.IsZero() {
		return nil, errors.New("sealing: seal content: zero data key")
	}
	if orgID == "" || purpose == "" {
		return nil, errors.New("sealing: seal content: organization id and purpose are required")
	}
	if len(plaintext) > MaxContent {
		return nil, fmt.Errorf("sealing: seal content: %d bytes exceeds the limit of %d", len(plaintext), MaxContent)
	}
	aead, err := key.gcm()
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, out); err != nil {
		return nil, fmt.Errorf("sealing: seal content: %w", err)
	}
	return aead.Seal(out, out, plaintext, contentAAD(key, orgID, purpose)), nil
}

// OpenContent decrypts what [SealContent] returned for the same key,
// organization and purpose. It fails with [ErrMalformed] for a box too short
// to hold a nonce and a tag, and with [ErrAuthentication] otherwise.
func OpenContent(key DataKey, orgID string, box []byte, purpose string) ([]byte, error) {
	if key.IsZero() {
		return nil, errors.New("sealing: open content: zero data key")
	}
	aead, err := key.gcm()
	if err != nil {
		return nil, err
	}
	if len(box) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: sealed content is %d bytes, shorter than nonce and tag", ErrMalformed, len(box))
	}
	n := aead.NonceSize()
	plaintext, err := aead.Open(nil, box[:n], box[n:], contentAAD(key, orgID, purpose))
	if err != nil {
		return nil, fmt.Errorf("open sealed content of organization %q, purpose %q: %w", orgID, purpose, ErrAuthentication)
	}
	return plaintext, nil
}

func contentAAD(key DataKey, orgID, purpose string) []byte {
	return additionalData(contentLabel, key.version, key.ID(), orgID, purpose)
}
