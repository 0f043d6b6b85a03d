// Package sealing owns envelope encryption of tenant secrets such as data
// source credentials: a deployment-wide [MasterKey] wraps one data key per
// organization ([NewDataKey]), and the data key seals each secret ([Seal])
// with the organization and the purpose bound as additional authenticated
// data, so a sealed value opens only for the organization and the resource
// it was sealed for.
//
// The content of events (what members wrote, uploaded or asked) is sealed
// with [SealContent] under the same data keys, bound to its event and field
// (package eventstore/sealed does it for every event).
//
// What goes into an event, a read model or a message is a [Sealed] or a
// [WrappedKey], never plaintext; a password held in memory is a [Secret],
// which prints, logs and marshals as a redaction. The package must never
// log, print or return key material or plaintext in an error, and it keeps
// no state between calls: keys are values the caller passes in.
package sealing

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size in bytes of master keys and data keys (AES-256).
const KeySize = 32

// MasterKeyFile is the name of the key file [LoadOrCreateMasterKey] keeps in
// the data directory.
const MasterKeyFile = "master.key"

// maxKeyFileSize bounds what is read from a key file: the encoded key and a
// newline, with room for a carriage return or stray whitespace.
const maxKeyFileSize = 128

// idLabel separates the key identifier hash from any other use of the key.
const idLabel = "palisade master key id v1\x00"

// ErrMasterKey is wrapped by every error about loading or parsing a master key.
var ErrMasterKey = errors.New("sealing: invalid master key")

// MasterKey is the deployment's key-encryption key. It only wraps and
// unwraps data keys. Its zero value is not a key; formatting it shows its
// identifier only.
type MasterKey struct {
	key [KeySize]byte
	id  string
}

// ParseMasterKey parses the PALISADE_MASTER_KEY format: 32 random bytes in
// standard, padded base64 (44 characters, as printed by
// `head -c 32 /dev/urandom | base64`). Surrounding whitespace is ignored.
// The error never contains the input.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MasterKey{}, fmt.Errorf("%w: empty (want %d bytes in standard base64)", ErrMasterKey, KeySize)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		// The decoder's error names an offset, never the content.
		return MasterKey{}, fmt.Errorf("%w: not standard base64 (%v)", ErrMasterKey, err)
	}
	if len(raw) != KeySize {
		return MasterKey{}, fmt.Errorf("%w: decodes to %d bytes, want %d", ErrMasterKey, len(raw), KeySize)
	}
	return newMasterKey(raw), nil
}

// GenerateMasterKey returns a new random master key.
func GenerateMasterKey() (MasterKey, error) {
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return MasterKey{}, fmt.Errorf("sealing: generate master key: %w", err)
	}
	return newMasterKey(raw), nil
}

func newMasterKey(raw []byte) MasterKey {
	var k MasterKey
	copy(k.key[:], raw)
	sum := sha256.Sum256(append([]byte(idLabel), raw...))
	k.id = hex.EncodeToString(sum[:8])
	return k
}

// ID identifies the key without revealing it: the first 8 bytes of a
// labelled SHA-256 of the key, in hex. Wrapped data keys carry it so that
// unwrapping under the wrong master key is reported as such, and so that a
// rotation can tell which keys still need [Rewrap].
func (k MasterKey) ID() string { return k.id }

// IsZero reports whether k is the zero value, which is not a usable key.
func (k MasterKey) IsZero() bool { return k.id == "" }

// String shows the key identifier only.
func (k MasterKey) String() string { return "sealing.MasterKey{id: " + k.id + "}" }

// GoString shows the key identifier only.
func (k MasterKey) GoString() string { return k.String() }

// Format makes every fmt verb print [MasterKey.String], so that %x or %d
// cannot reach the key bytes.
func (k MasterKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// Encode returns the key in the PALISADE_MASTER_KEY format. It is the one
// way to get the key material out, for writing the key file.
func (k MasterKey) Encode() string { return base64.StdEncoding.EncodeToString(k.key[:]) }

// LoadOrCreateMasterKey returns the master key kept in dir/master.key, the
// default for the embedded deployment when PALISADE_MASTER_KEY is unset. On
// first use it creates dir (0700) and the file (0600) atomically, so two
// processes starting together agree on one key. It refuses a key file that
// is not a regular file, is readable or writable by group or others, or
// does not hold exactly one key.
func LoadOrCreateMasterKey(dir string) (MasterKey, error) {
	if dir == "" {
		return MasterKey{}, fmt.Errorf("%w: no data directory given", ErrMasterKey)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return MasterKey{}, fmt.Errorf("sealing: create data directory: %w", err)
	}
	path := filepath.Join(dir, MasterKeyFile)
	key, err := loadMasterKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = GenerateMasterKey()
	if err != nil {
		return MasterKey{}, err
	}
	if err := createKeyFile(dir, path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use theirs.
			return loadMasterKeyFile(path)
		}
		return MasterKey{}, err
	}
	return key, nil
}

// createKeyFile writes the key to a temporary file and links it into place,
// so the key file is either absent or complete, and never replaced.
func createKeyFile(dir, path string, key MasterKey) error {
	tmp, err := os.CreateTemp(dir, ".master.key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("sealing: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("sealing: create key file: %w", err)
	}
	if _, err := io.WriteString(tmp, key.Encode()+"\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("sealing: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sealing: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sealing: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("sealing: install key file: %w", err)
	}
	return nil
}

func loadMasterKeyFile(path string) (MasterKey, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("sealing: key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return MasterKey{}, fmt.Errorf("%w: key file %s is not a regular file (%s)", ErrMasterKey, path, info.Mode().Type())
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return MasterKey{}, fmt.Errorf("%w: key file %s has mode %04o; group and others must have no access (chmod 600)", ErrMasterKey, path, perm)
	}
	if info.Size() > maxKeyFileSize {
		return MasterKey{}, fmt.Errorf("%w: key file %s is %d bytes, want one base64 key of %d bytes", ErrMasterKey, path, info.Size(), KeySize)
	}
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return MasterKey{}, fmt.Errorf("sealing: key file: %w", err)
	}
	defer f.Close()
	opened, err := f.Stat()
	if err != nil {
		return MasterKey{}, fmt.Errorf("sealing: key file: %w", err)
	}
	if !os.SameFile(info, opened) {
		return MasterKey{}, fmt.Errorf("%w: key file %s was replaced while opened", ErrMasterKey, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return MasterKey{}, fmt.Errorf("sealing: read key file: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return MasterKey{}, fmt.Errorf("%w: key file %s grew while read", ErrMasterKey, path)
	}
	key, err := ParseMasterKey(string(data))
	if err != nil {
		return MasterKey{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}
