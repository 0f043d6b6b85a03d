package embeddings

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/palisadehq/palisade/domain/access"
)

// Memory keeps embeddings in memory; it forgets them when the process
// ends. It is safe for concurrent use.
type Memory struct {
	mu      sync.RWMutex
	vectors map[memoryKey][]float32
}

type memoryKey struct{ org, model, hash string }

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{vectors: map[memoryKey][]float32{}} }

// Get returns the stored vectors of hashes under model, by hash; hashes
// without one are absent from the map.
func (m *Memory) Get(_ context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string][]float32, len(hashes))
	for _, h := range hashes {
		if v, ok := m.vectors[memoryKey{org, model, h}]; ok {
			out[h] = slices.Clone(v)
		}
	}
	return out, nil
}

// Put stores vectors under model, by hash, replacing what was stored.
func (m *Memory) Put(_ context.Context, scope access.Scope, model string, vectors map[string][]float32) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	for h, v := range vectors {
		if len(v) == 0 {
			return fmt.Errorf("%w: %s", ErrEmptyVector, h)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, v := range vectors {
		m.vectors[memoryKey{org, model, h}] = slices.Clone(v)
	}
	return nil
}

// PurgeOrg removes every vector of the scope's organization, under every
// model.
func (m *Memory) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.vectors {
		if k.org == org {
			delete(m.vectors, k)
		}
	}
	return nil
}
