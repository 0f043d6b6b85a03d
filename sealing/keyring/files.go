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

// Dir is the subdirectory of the data directory that holds the key files.
const Dir = "keys"

// FileStorage keeps wrapped keys as files of one directory (0600): an
// organization's versions in <org>.json, its subjects' keys in
// <org>.subjects/<handle>.json, its tombstone as <org>.destroyed. A key
// file written before versions existed (one wrapped key) still loads, as
// the organization's only version. Processes sharing the directory agree
// on a first key (it is installed with a link, never over another file);
// rotations by two processes at once may lose one of them.
type FileStorage struct {
	dir string
	// mu serializes this process's read-modify-write of a key file.
	mu sync.Mutex
}

// OpenFileStorage returns the storage of dir, creating it (0700) if
// needed.
func OpenFileStorage(dir string) (*FileStorage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &FileStorage{dir: dir}, nil
}

// keyFile is the on-disk form of an organization's versions. A file that
// is a single sealing.WrappedKey (the form before rotation) is read as one
// version.
type keyFile struct {
	Versions []sealing.WrappedKey `json:"versions"`
}

func (s *FileStorage) path(orgID string) string { return filepath.Join(s.dir, orgID+".json") }

func (s *FileStorage) subjectDir(orgID string) string {
	return filepath.Join(s.dir, orgID+".subjects")
}

func (s *FileStorage) tombstone(orgID string) string {
	return filepath.Join(s.dir, orgID+".destroyed")
}

// Load implements [Storage].
func (s *FileStorage) Load(_ context.Context, orgID string) ([]sealing.WrappedKey, bool, error) {
	b, err := os.ReadFile(s.path(orgID))
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

// Add implements [Storage]: the first version is written atomically and
// never over an existing file, so two processes racing on a first use
// agree on the first key written; a later version replaces the file.
func (s *FileStorage) Add(ctx context.Context, orgID string, w sealing.WrappedKey) ([]sealing.WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if destroyed, err := s.Destroyed(ctx, orgID); err != nil {
		return nil, err
	} else if destroyed {
		return nil, ErrDestroyed
	}
	for {
		stored, found, err := s.Load(ctx, orgID)
		if err != nil {
			return nil, err
		}
		if found {
			if hasVersion(stored, w.Version) {
				return stored, nil
			}
			stored = append(stored, w)
			b, err := encodeKeyFile(stored)
			if err != nil {
				return nil, err
			}
			if err := writeFile(s.dir, s.path(orgID), b, os.Rename); err != nil {
				return nil, err
			}
			return stored, nil
		}
		b, err := encodeKeyFile([]sealing.WrappedKey{w})
		if err != nil {
			return nil, err
		}
		err = writeFile(s.dir, s.path(orgID), b, os.Link)
		if errors.Is(err, fs.ErrExist) {
			continue // another process wrote it first: read it
		}
		if err != nil {
			return nil, err
		}
		return []sealing.WrappedKey{w}, nil
	}
}

func hasVersion(ws []sealing.WrappedKey, v uint32) bool {
	return slices.ContainsFunc(ws, func(w sealing.WrappedKey) bool { return w.Version == v })
}

// Destroyed implements [Storage].
func (s *FileStorage) Destroyed(_ context.Context, orgID string) (bool, error) {
	_, err := os.Stat(s.tombstone(orgID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("keyring: %w", err)
}

// Destroy implements [Storage]: it writes the tombstone (durably: the file
// and the directory are synced), then removes the key file and the
// subjects' keys and syncs the directory again. A crash between the two
// steps leaves a key file beside a tombstone, which the keyring refuses
// and Destroy removes when it runs again.
func (s *FileStorage) Destroy(_ context.Context, orgID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.tombstone(orgID), os.O_CREATE|os.O_WRONLY, 0o600)
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
	if err := s.syncDir(); err != nil {
		return err
	}
	if err := os.Remove(s.path(orgID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: destroy: %w", err)
	}
	if err := os.RemoveAll(s.subjectDir(orgID)); err != nil {
		return fmt.Errorf("keyring: destroy subject keys: %w", err)
	}
	return s.syncDir()
}

// LoadSubject implements [Storage].
func (s *FileStorage) LoadSubject(_ context.Context, orgID, handle string) (sealing.WrappedKey, bool, error) {
	var w sealing.WrappedKey
	b, err := os.ReadFile(filepath.Join(s.subjectDir(orgID), handle+".json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return w, false, nil
	case err != nil:
		return w, false, fmt.Errorf("keyring: %w", err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, false, errors.New("keyring: subject key file is not a wrapped key")
	}
	return w, true, nil
}

// AddSubject implements [Storage].
func (s *FileStorage) AddSubject(ctx context.Context, orgID, handle string, w sealing.WrappedKey) (sealing.WrappedKey, error) {
	if err := os.MkdirAll(s.subjectDir(orgID), 0o700); err != nil {
		return sealing.WrappedKey{}, fmt.Errorf("keyring: %w", err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return sealing.WrappedKey{}, fmt.Errorf("keyring: %w", err)
	}
	err = writeFile(s.subjectDir(orgID), filepath.Join(s.subjectDir(orgID), handle+".json"), b, os.Link)
	if errors.Is(err, fs.ErrExist) {
		stored, found, err := s.LoadSubject(ctx, orgID, handle)
		if err != nil {
			return sealing.WrappedKey{}, err
		}
		if found {
			return stored, nil
		}
		return sealing.WrappedKey{}, errors.New("keyring: subject key vanished while being created")
	}
	if err != nil {
		return sealing.WrappedKey{}, err
	}
	return w, nil
}

// ForgetSubject implements [Storage].
func (s *FileStorage) ForgetSubject(_ context.Context, orgID, handle string) error {
	err := os.Remove(filepath.Join(s.subjectDir(orgID), handle+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: %w", err)
	}
	return nil
}

// Orgs implements [Storage].
func (s *FileStorage) Orgs(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var out []string
	for _, e := range entries {
		if org, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Type().IsRegular() && validOrg(org) {
			out = append(out, org)
		}
	}
	return out, nil
}

// Tombstones lists, sorted, the organizations whose key was destroyed (to
// carry them over to another storage).
func (s *FileStorage) Tombstones(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var out []string
	for _, e := range entries {
		if org, ok := strings.CutSuffix(e.Name(), ".destroyed"); ok && e.Type().IsRegular() && validOrg(org) {
			out = append(out, org)
		}
	}
	return out, nil
}

// Subjects lists the handles of orgID's subject keys (to carry them over
// to another storage).
func (s *FileStorage) Subjects(_ context.Context, orgID string) ([]string, error) {
	entries, err := os.ReadDir(s.subjectDir(orgID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var out []string
	for _, e := range entries {
		if h, ok := strings.CutSuffix(e.Name(), ".json"); ok && e.Type().IsRegular() && validHandle(h) {
			out = append(out, h)
		}
	}
	return out, nil
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

// syncDir makes the directory's entries (a tombstone written, a key file
// removed) durable.
func (s *FileStorage) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("keyring: sync %s: %w", s.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keyring: sync %s: %w", s.dir, err)
	}
	return nil
}

// Remove removes everything the directory holds of orgID (its key file,
// its subjects' keys, then its tombstone) without destroying anything
// elsewhere: for keys moved to another storage.
func (s *FileStorage) Remove(_ context.Context, orgID string) error {
	if !validOrg(orgID) {
		return fmt.Errorf("keyring: invalid organization id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path(orgID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := os.RemoveAll(s.subjectDir(orgID)); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if err := os.Remove(s.tombstone(orgID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keyring: %w", err)
	}
	return s.syncDir()
}
