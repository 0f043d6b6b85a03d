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
// Destroy crypto-shreds an organization: its key file is removed and a
// tombstone (keys/<org>.destroyed) written first, so that the keyring never
// hands out a fresh key for it afterwards (DataKey returns ErrDestroyed),
// also after a restart.
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
	"slices"
	"strings"
	"sync"

	"github.com/palisadehq/palisade/sealing"
)

// ErrDestroyed: the organization's data key was destroyed (the
// organization was closed); what it sealed can no longer be opened.
var ErrDestroyed = errors.New("keyring: the organization's data key was destroyed")

// Dir is the subdirectory of the data directory that holds the keys.
const Dir = "keys"

// Keyring hands out organizations' data keys.
type Keyring struct {
	dir    string // "" keeps wrapped keys in memory only (tests, one process)
	master sealing.MasterKey

	mu      sync.Mutex
	keys    map[string]sealing.DataKey
	wrapped map[string]sealing.WrappedKey // memory-only store
	// destroyed is the memory-only store's tombstones.
	destroyed map[string]bool
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
	return &Keyring{master: master, keys: map[string]sealing.DataKey{}, wrapped: map[string]sealing.WrappedKey{}, destroyed: map[string]bool{}}
}

// DataKey returns orgID's data key, creating it on first use; ErrDestroyed
// once it was destroyed.
func (k *Keyring) DataKey(_ context.Context, orgID string) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[orgID]; ok {
		return key, nil
	}
	destroyed, err := k.isDestroyed(orgID)
	if err != nil {
		return sealing.DataKey{}, err
	}
	if destroyed {
		return sealing.DataKey{}, ErrDestroyed
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

func (k *Keyring) tombstone(orgID string) string { return filepath.Join(k.dir, orgID+".destroyed") }

// isDestroyed reports whether orgID's key was destroyed. k.mu must be held.
func (k *Keyring) isDestroyed(orgID string) (bool, error) {
	if k.dir == "" {
		return k.destroyed[orgID], nil
	}
	_, err := os.Stat(k.tombstone(orgID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("keyring: %w", err)
}

// Destroy destroys orgID's data key for good: it writes the tombstone
// (durably: the file and the directory are synced), then removes the
// wrapped key and syncs the directory again, and forgets the unwrapped
// copy. Destroying a key that is already destroyed, or that was never
// created, leaves a tombstone and succeeds: afterwards DataKey returns
// ErrDestroyed either way.
func (k *Keyring) Destroy(_ context.Context, orgID string) error {
	if !validOrg(orgID) {
		return fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, orgID)
	if k.dir == "" {
		k.destroyed[orgID] = true
		delete(k.wrapped, orgID)
		return nil
	}
	// The tombstone first: a crash between the two steps leaves a key
	// file beside a tombstone, which DataKey refuses and Destroy removes
	// when it runs again.
	f, err := os.OpenFile(k.tombstone(orgID), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("keyring: destroy: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keyring: destroy: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keyring: destroy: %w", err)
	}
	if err := k.syncDir(); err != nil {
		return err
	}
	if err := os.Remove(k.path(orgID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: destroy: %w", err)
	}
	return k.syncDir()
}

// Orgs lists the organizations whose key is stored (a key beside a
// tombstone included: recovery after a crash between closing an
// organization and destroying its key looks for these).
func (k *Keyring) Orgs(_ context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	if k.dir == "" {
		for org := range k.wrapped {
			out = append(out, org)
		}
		slices.Sort(out)
		return out, nil
	}
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	for _, e := range entries {
		if org, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Type().IsRegular() && validOrg(org) {
			out = append(out, org)
		}
	}
	return out, nil
}

// syncDir makes the directory's entries (a tombstone written, a key file
// removed) durable.
func (k *Keyring) syncDir() error {
	d, err := os.Open(k.dir)
	if err != nil {
		return fmt.Errorf("keyring: sync %s: %w", k.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keyring: sync %s: %w", k.dir, err)
	}
	return nil
}

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
