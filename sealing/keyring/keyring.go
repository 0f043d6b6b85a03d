// Package keyring keeps the organizations' data keys: each wrapped by the
// deployment's master key and stored as one file per organization in a
// directory of the data directory (keys/<org>.json, 0600), created on first
// use and unwrapped into memory once.
//
// An organization's key has versions: [Keyring.Rotate] adds one, new
// values are sealed under the newest ([Keyring.DataKey]) and every older
// version still opens what it sealed ([Keyring.DataKeyVersion]), so a
// rotation never rewrites the log. A key file written before versions
// existed (one wrapped key) still loads, as the organization's only
// version.
//
// Per-subject keys ([Keyring.SubjectKey]) are data keys of one
// organization for one person who is not a member (an inbox contact), kept
// in keys/<org>.subjects/<handle>.json, so that [Keyring.Forget] can
// destroy that person's key alone and leave the rest of the organization's
// content readable. The handle is derived from the subject under the
// organization's first key version (sealing.DataKey.Handle), so the file
// name does not reveal the subject. No event seals under a subject key yet:
// the inbox, whose contacts they are for, has not landed.
//
// The wrapped keys are kept outside the event log on purpose: a key that
// must be destroyed (crypto-shredding an organization or a person) cannot
// live in an append-only log. With one replica the directory is the data
// directory's; several replicas need shared storage for it (issue 13).
//
// Destroy crypto-shreds an organization: a tombstone (keys/<org>.destroyed)
// is written first, then its key file and its subjects' keys are removed,
// so that the keyring never hands out a fresh key for it afterwards
// (DataKey returns ErrDestroyed), also after a restart.
//
// The package must never write a data key unwrapped, and never log or
// return key material in an error.
package keyring

import (
	"bytes"
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

// Dir is the subdirectory of the data directory that holds the keys.
const Dir = "keys"

// ErrNoKey is returned when the key asked for does not exist: never
// created, or destroyed. What was sealed under it cannot be opened again.
var ErrNoKey = sealing.ErrNoKey

// ErrDestroyed: the organization's data key was destroyed (the
// organization was closed); it is never created again.
var ErrDestroyed = errors.New("keyring: the organization's data key was destroyed")

// Keyring hands out organizations' data keys.
type Keyring struct {
	dir    string // "" keeps wrapped keys in memory only (tests, one process)
	master sealing.MasterKey

	mu   sync.Mutex
	orgs map[string]*orgKeys
	// subjects caches unwrapped subject keys by org and handle.
	subjects map[subjectRef]sealing.DataKey
	// memory-only stores
	wrapped        map[string][]sealing.WrappedKey
	wrappedSubject map[subjectRef]sealing.WrappedKey
	// destroyed is the memory-only store's tombstones.
	destroyed map[string]bool
}

// orgKeys is one organization's key versions, unwrapped; the newest last.
type orgKeys struct {
	versions []sealing.DataKey
}

func (o *orgKeys) newest() sealing.DataKey { return o.versions[len(o.versions)-1] }

func (o *orgKeys) version(v uint32) (sealing.DataKey, bool) {
	for _, k := range o.versions {
		if k.Version() == v {
			return k, true
		}
	}
	return sealing.DataKey{}, false
}

type subjectRef struct{ org, handle string }

// keyFile is the on-disk form of an organization's versions. A file that
// is a single sealing.WrappedKey (the form before rotation) is read as one
// version.
type keyFile struct {
	Versions []sealing.WrappedKey `json:"versions"`
}

// Open returns the keyring kept in dir, creating dir (0700) if needed.
func Open(dir string, master sealing.MasterKey) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &Keyring{dir: dir, master: master, orgs: map[string]*orgKeys{}, subjects: map[subjectRef]sealing.DataKey{}}, nil
}

// NewMemory returns a keyring that keeps its wrapped keys in memory: what
// it seals cannot be opened by another process or after a restart.
func NewMemory(master sealing.MasterKey) *Keyring {
	return &Keyring{master: master, orgs: map[string]*orgKeys{}, subjects: map[subjectRef]sealing.DataKey{},
		wrapped: map[string][]sealing.WrappedKey{}, wrappedSubject: map[subjectRef]sealing.WrappedKey{}, destroyed: map[string]bool{}}
}

// DataKey returns the newest version of orgID's data key, creating the
// first version on first use. New values are sealed under it.
func (k *Keyring) DataKey(_ context.Context, orgID string) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(orgID, true)
	if err != nil {
		return sealing.DataKey{}, err
	}
	return keys.newest(), nil
}

// DataKeyVersion returns the given version of orgID's data key, to open
// what it sealed. It never creates a key: a version that does not exist,
// or an organization without keys, is [ErrNoKey].
func (k *Keyring) DataKeyVersion(_ context.Context, orgID string, version uint32) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(orgID, false)
	if err != nil {
		return sealing.DataKey{}, err
	}
	key, ok := keys.version(version)
	if !ok {
		return sealing.DataKey{}, fmt.Errorf("%w: organization %s has no version %d", ErrNoKey, orgID, version)
	}
	return key, nil
}

// Rotate adds a new version of orgID's data key (the first, if it has
// none) and returns it. Older versions are kept: what they sealed still
// opens. Another process holding the keyring open keeps sealing under the
// version it loaded until it restarts; that is safe, only less fresh.
func (k *Keyring) Rotate(_ context.Context, orgID string) (sealing.DataKey, error) {
	if !validOrg(orgID) {
		return sealing.DataKey{}, fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if destroyed, err := k.isDestroyed(orgID); err != nil || destroyed {
		if err == nil {
			err = ErrDestroyed
		}
		return sealing.DataKey{}, err
	}
	wrapped, found, err := k.load(orgID)
	if err != nil {
		return sealing.DataKey{}, err
	}
	if !found {
		keys, err := k.orgLocked(orgID, true)
		if err != nil {
			return sealing.DataKey{}, err
		}
		return keys.newest(), nil
	}
	keys, err := k.unwrapAll(orgID, wrapped)
	if err != nil {
		return sealing.DataKey{}, err
	}
	key, w, err := sealing.NewDataKey(k.master, orgID, keys.newest().Version()+1)
	if err != nil {
		return sealing.DataKey{}, fmt.Errorf("keyring: new data key version: %w", err)
	}
	if err := k.replace(orgID, append(wrapped, w)); err != nil {
		return sealing.DataKey{}, err
	}
	keys.versions = append(keys.versions, key)
	k.orgs[orgID] = keys
	return key, nil
}

// orgLocked returns orgID's versions, loading them, or creating the first
// when create is set; without create, no key is [ErrNoKey].
func (k *Keyring) orgLocked(orgID string, create bool) (*orgKeys, error) {
	if keys, ok := k.orgs[orgID]; ok {
		return keys, nil
	}
	destroyed, err := k.isDestroyed(orgID)
	if err != nil {
		return nil, err
	}
	if destroyed {
		// Also ErrNoKey: what the key sealed reads as shredded.
		return nil, fmt.Errorf("%w (%w)", ErrDestroyed, ErrNoKey)
	}
	wrapped, found, err := k.load(orgID)
	if err != nil {
		return nil, err
	}
	if !found {
		if !create {
			return nil, fmt.Errorf("%w: organization %s has no data key", ErrNoKey, orgID)
		}
		key, w, err := sealing.NewDataKey(k.master, orgID, 1)
		if err != nil {
			return nil, fmt.Errorf("keyring: new data key: %w", err)
		}
		if err := k.create(orgID, []sealing.WrappedKey{w}); err != nil {
			return nil, err
		}
		keys := &orgKeys{versions: []sealing.DataKey{key}}
		k.orgs[orgID] = keys
		return keys, nil
	}
	keys, err := k.unwrapAll(orgID, wrapped)
	if err != nil {
		return nil, err
	}
	k.orgs[orgID] = keys
	return keys, nil
}

func (k *Keyring) unwrapAll(orgID string, wrapped []sealing.WrappedKey) (*orgKeys, error) {
	keys := &orgKeys{}
	for _, w := range wrapped {
		key, err := sealing.UnwrapDataKey(k.master, w, orgID)
		if err != nil {
			return nil, fmt.Errorf("keyring: data key of organization %s: %w", orgID, err)
		}
		keys.versions = append(keys.versions, key)
	}
	return keys, nil
}

func (k *Keyring) load(orgID string) ([]sealing.WrappedKey, bool, error) {
	if k.dir == "" {
		w, ok := k.wrapped[orgID]
		return w, ok, nil
	}
	b, err := os.ReadFile(k.path(orgID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("keyring: %w", err)
	}
	wrapped, err := parseKeyFile(b)
	if err != nil {
		return nil, false, fmt.Errorf("keyring: key file of organization %s: %w", orgID, err)
	}
	return wrapped, true, nil
}

// parseKeyFile reads both forms of a key file: {"versions": [...]}, or
// one wrapped key (files written before rotation existed).
func parseKeyFile(b []byte) ([]sealing.WrappedKey, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, errors.New("not a wrapped key")
	}
	if _, ok := probe["versions"]; !ok {
		var w sealing.WrappedKey
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, errors.New("not a wrapped key")
		}
		return []sealing.WrappedKey{w}, nil
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil || len(f.Versions) == 0 {
		return nil, errors.New("not a list of wrapped key versions")
	}
	seen := map[uint32]bool{}
	for i, w := range f.Versions {
		if seen[w.Version] || (i > 0 && w.Version < f.Versions[i-1].Version) {
			return nil, errors.New("key versions repeat or are out of order")
		}
		seen[w.Version] = true
	}
	return f.Versions, nil
}

// create writes the first key file atomically and never over an existing
// one, so two processes racing on a first use agree on the first key
// written.
func (k *Keyring) create(orgID string, w []sealing.WrappedKey) error {
	if k.dir == "" {
		k.wrapped[orgID] = w
		return nil
	}
	b, err := encodeKeyFile(w)
	if err != nil {
		return err
	}
	return writeFile(k.dir, k.path(orgID), b, os.Link)
}

// replace writes a new list of versions over the key file, atomically.
func (k *Keyring) replace(orgID string, w []sealing.WrappedKey) error {
	if k.dir == "" {
		k.wrapped[orgID] = w
		return nil
	}
	b, err := encodeKeyFile(w)
	if err != nil {
		return err
	}
	return writeFile(k.dir, k.path(orgID), b, os.Rename)
}

// encodeKeyFile keeps the old one-key form while there is one version, so
// that a deployment rolled back to a build before rotation still reads it.
func encodeKeyFile(w []sealing.WrappedKey) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if len(w) == 1 {
		b, err = json.Marshal(w[0])
	} else {
		b, err = json.Marshal(keyFile{Versions: w})
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return b, nil
}

// writeFile writes b to a synced temporary file of dir and installs it at
// path with install (os.Link: never over an existing file; os.Rename:
// replacing it).
func writeFile(dir, path string, b []byte, install func(old, new string) error) error {
	tmp, err := os.CreateTemp(dir, ".new-*")
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
	if err := install(tmp.Name(), path); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

func (k *Keyring) path(orgID string) string { return filepath.Join(k.dir, orgID+".json") }

func (k *Keyring) subjectDir(orgID string) string {
	return filepath.Join(k.dir, orgID+".subjects")
}

// SubjectHandle returns the opaque name of subject's key in orgID: what a
// sealed value records instead of the subject. It needs the organization's
// key (created on first use).
func (k *Keyring) SubjectHandle(ctx context.Context, orgID, subject string) (string, error) {
	if subject == "" {
		return "", errors.New("keyring: empty subject")
	}
	if !validOrg(orgID) {
		return "", fmt.Errorf("keyring: invalid organization id")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	keys, err := k.orgLocked(orgID, true)
	if err != nil {
		return "", err
	}
	return keys.versions[0].Handle(subject), nil
}

// SubjectKey returns the data key of one subject of orgID (a person who is
// not a member), with its handle, creating it on first use.
func (k *Keyring) SubjectKey(ctx context.Context, orgID, subject string) (sealing.DataKey, string, error) {
	handle, err := k.SubjectHandle(ctx, orgID, subject)
	if err != nil {
		return sealing.DataKey{}, "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.subjectLocked(orgID, handle, true)
	return key, handle, err
}

// SubjectKeyByHandle returns the subject key a sealed value names by its
// handle. It never creates one: a forgotten subject is [ErrNoKey].
func (k *Keyring) SubjectKeyByHandle(_ context.Context, orgID, handle string) (sealing.DataKey, error) {
	if !validOrg(orgID) || !validHandle(handle) {
		return sealing.DataKey{}, fmt.Errorf("%w: invalid organization or subject handle", ErrNoKey)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subjectLocked(orgID, handle, false)
}

// Forget destroys subject's key in orgID: everything sealed under it
// becomes unreadable, everywhere it was copied, while the rest of the
// organization's content stays readable. Forgetting a subject without a
// key is not an error.
func (k *Keyring) Forget(ctx context.Context, orgID, subject string) error {
	handle, err := k.SubjectHandle(ctx, orgID, subject)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ref := subjectRef{orgID, handle}
	delete(k.subjects, ref)
	if k.dir == "" {
		delete(k.wrappedSubject, ref)
		return nil
	}
	err = os.Remove(filepath.Join(k.subjectDir(orgID), handle+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: forget subject: %w", err)
	}
	return nil
}

func (k *Keyring) subjectLocked(orgID, handle string, create bool) (sealing.DataKey, error) {
	ref := subjectRef{orgID, handle}
	if key, ok := k.subjects[ref]; ok {
		return key, nil
	}
	// A subject key is bound to its organization and handle when wrapped,
	// so one person's key file cannot stand in for another's.
	binding := orgID + "/subject/" + handle
	path := filepath.Join(k.subjectDir(orgID), handle+".json")
	var (
		w     sealing.WrappedKey
		found bool
	)
	if k.dir == "" {
		w, found = k.wrappedSubject[ref]
	} else {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return sealing.DataKey{}, fmt.Errorf("keyring: %w", err)
		default:
			if err := json.Unmarshal(b, &w); err != nil {
				return sealing.DataKey{}, errors.New("keyring: subject key file is not a wrapped key")
			}
			found = true
		}
	}
	var key sealing.DataKey
	var err error
	switch {
	case found:
		if key, err = sealing.UnwrapDataKey(k.master, w, binding); err != nil {
			return sealing.DataKey{}, fmt.Errorf("keyring: subject key: %w", err)
		}
	case !create:
		return sealing.DataKey{}, fmt.Errorf("%w: subject key of organization %s", ErrNoKey, orgID)
	default:
		if key, w, err = sealing.NewDataKey(k.master, binding, 1); err != nil {
			return sealing.DataKey{}, fmt.Errorf("keyring: new subject key: %w", err)
		}
		if k.dir == "" {
			k.wrappedSubject[ref] = w
		} else {
			if err := os.MkdirAll(k.subjectDir(orgID), 0o700); err != nil {
				return sealing.DataKey{}, fmt.Errorf("keyring: %w", err)
			}
			b, err := json.Marshal(w)
			if err != nil {
				return sealing.DataKey{}, fmt.Errorf("keyring: %w", err)
			}
			if err := writeFile(k.subjectDir(orgID), path, b, os.Link); err != nil {
				return sealing.DataKey{}, err
			}
		}
	}
	k.subjects[ref] = key
	return key, nil
}

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
	delete(k.orgs, orgID)
	for ref := range k.subjects {
		if ref.org == orgID {
			delete(k.subjects, ref)
		}
	}
	if k.dir == "" {
		k.destroyed[orgID] = true
		delete(k.wrapped, orgID)
		for ref := range k.wrappedSubject {
			if ref.org == orgID {
				delete(k.wrappedSubject, ref)
			}
		}
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
	if err := os.RemoveAll(k.subjectDir(orgID)); err != nil {
		return fmt.Errorf("keyring: destroy subject keys: %w", err)
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

// validHandle accepts what sealing.DataKey.Handle returns: 32 lower-case
// hex digits.
func validHandle(h string) bool {
	return len(h) == 32 && len(bytes.Trim([]byte(h), "0123456789abcdef")) == 0
}
