package keyring

import (
	"context"
	"slices"
	"sync"

	"github.com/palisadehq/palisade/sealing"
)

// MemoryStorage keeps wrapped keys in memory: for tests, and one process
// whose sealed values need not outlive it.
type MemoryStorage struct {
	mu        sync.Mutex
	orgs      map[string][]sealing.WrappedKey
	subjects  map[subjectRef]sealing.WrappedKey
	destroyed map[string]bool
}

// NewMemoryStorage returns an empty memory storage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{orgs: map[string][]sealing.WrappedKey{}, subjects: map[subjectRef]sealing.WrappedKey{}, destroyed: map[string]bool{}}
}

// Load implements [Storage].
func (s *MemoryStorage) Load(_ context.Context, orgID string) ([]sealing.WrappedKey, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.orgs[orgID]
	return slices.Clone(w), ok, nil
}

// Add implements [Storage].
func (s *MemoryStorage) Add(_ context.Context, orgID string, w sealing.WrappedKey) ([]sealing.WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed[orgID] {
		return nil, ErrDestroyed
	}
	if !hasVersion(s.orgs[orgID], w.Version) {
		s.orgs[orgID] = append(s.orgs[orgID], w)
	}
	return slices.Clone(s.orgs[orgID]), nil
}

// Destroyed implements [Storage].
func (s *MemoryStorage) Destroyed(_ context.Context, orgID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.destroyed[orgID], nil
}

// Destroy implements [Storage].
func (s *MemoryStorage) Destroy(_ context.Context, orgID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.destroyed[orgID] = true
	delete(s.orgs, orgID)
	for ref := range s.subjects {
		if ref.org == orgID {
			delete(s.subjects, ref)
		}
	}
	return nil
}

// LoadSubject implements [Storage].
func (s *MemoryStorage) LoadSubject(_ context.Context, orgID, handle string) (sealing.WrappedKey, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.subjects[subjectRef{orgID, handle}]
	return w, ok, nil
}

// AddSubject implements [Storage].
func (s *MemoryStorage) AddSubject(_ context.Context, orgID, handle string, w sealing.WrappedKey) (sealing.WrappedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := subjectRef{orgID, handle}
	if stored, ok := s.subjects[ref]; ok {
		return stored, nil
	}
	s.subjects[ref] = w
	return w, nil
}

// ForgetSubject implements [Storage].
func (s *MemoryStorage) ForgetSubject(_ context.Context, orgID, handle string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subjects, subjectRef{orgID, handle})
	return nil
}

// Orgs implements [Storage].
func (s *MemoryStorage) Orgs(_ context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for org := range s.orgs {
		out = append(out, org)
	}
	slices.Sort(out)
	return out, nil
}
