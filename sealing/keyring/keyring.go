// Package keyring keeps the organizations' data keys: each wrapped by the
// deployment's master key and stored as one file per organization in a
// directory of the data directory (keys/<org>.json, 0600), created on first
// use and unwrapped into memory once.
//
// The wrapped keys are kept outside the event log on purpose: a key that
// must be destroyed (crypto-shredding an organization) cannot live in an
// append-only log. With one replica the directory is the data directory's;
// several replicas need shared storage for it (issue 13).
//
// The package must never write a data key unwrapped, and never log or
// return key material in an error.
package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/palisadehq/palisade/sealing"
)

// Dir is the subdirectory of the data directory that holds the keys.
const Dir = "keys"

// Keyring hands out organizations' data keys.
type Keyring struct {
	dir    string // "" keeps wrapped keys in memory only (tests, one process)
	master sealing.MasterKey

	mu      sync.Mutex
	keys    map[string]sealing.DataKey
	wrapped map[string]sealing.WrappedKey // memory-only store
}

// Open returns the keyring kept in dir, creating dir (0700) if needed.
func Open(dir string, master sealing.MasterKey) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &Keyring{dir: dir, master: master, keys: map[string]sealing.DataKey{}}, nil
}

// NewMemory returns a keyring that keeps its wrapped keys in memory: what
// it seals cannot be opened by another process or after a restart.
func NewMemory(master sealing.MasterKey) *Keyring {
	return &Keyring{master: master, keys: map[string]sealing.DataKey{}, wrapped: map[string]sealing.WrappedKey{}}
}

// DataKey returns orgID's data key, creating it on first use.
func (k *Keyring) DataKey(_ context.Context, orgID string) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[orgID]; ok {
		return key, nil
	}
	wrapped, found, err := k.load(orgID)
	if err != nil {
		return sealing.DataKey{}, err
	}
	var key sealing.DataKey
	if found {
		if key, err = sealing.UnwrapDataKey(k.master, wrapped, orgID); err != nil {
			return sealing.DataKey{}, fmt.Errorf("keyring: data key of organization %s: %w", orgID, err)
		}
	} else {
		if key, wrapped, err = sealing.NewDataKey(k.master, orgID, 1); err != nil {
			return sealing.DataKey{}, fmt.Errorf("keyring: new data key: %w", err)
		}
		if err := k.store(orgID, wrapped); err != nil {
			return sealing.DataKey{}, err
		}
	}
	k.keys[orgID] = key
	return key, nil
}

func (k *Keyring) load(orgID string) (sealing.WrappedKey, bool, error) {
	if k.dir == "" {
		w, ok := k.wrapped[orgID]
		return w, ok, nil
	}
	b, err := os.ReadFile(k.path(orgID))
	if errors.Is(err, fs.ErrNotExist) {
		return sealing.WrappedKey{}, false, nil
	}
	if err != nil {
		return sealing.WrappedKey{}, false, fmt.Errorf("keyring: %w", err)
	}
	var w sealing.WrappedKey
	if err := json.Unmarshal(b, &w); err != nil {
		return sealing.WrappedKey{}, false, fmt.Errorf("keyring: key file of organization %s is not a wrapped key", orgID)
	}
	return w, true, nil
}

// store writes the wrapped key atomically and never over an existing one,
// so two processes racing on a first use agree on the first key written.
func (k *Keyring) store(orgID string, w sealing.WrappedKey) error {
	if k.dir == "" {
		k.wrapped[orgID] = w
		return nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(k.dir, ".new-*")
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := os.Link(tmp.Name(), k.path(orgID)); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

func (k *Keyring) path(orgID string) string { return filepath.Join(k.dir, orgID+".json") }

// validOrg accepts organization ids that are safe file names.
func validOrg(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
