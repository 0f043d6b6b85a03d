package memory

import (
	"slices"
	"sync"

	"github.com/palisadehq/palisade/projections"
)

// orgTable holds one kind of record, partitioned by organization and keyed
// by a string id. Each organization's partition has its own lock, so one
// organization's long read never holds up another organization's writer;
// the table's own lock is held only to find or create a partition.
//
// Values are copied by clone on the way in and on the way out, so callers
// never share memory with what is stored.
type orgTable[V any] struct {
	clone func(V) V
	mu    sync.RWMutex
	orgs  map[string]*orgRows[V]
}

// orgRows is one organization's records, with their keys sorted for
// cursor pagination.
type orgRows[V any] struct {
	mu     sync.RWMutex
	byKey  map[string]V
	sorted []string
}

// newOrgTable returns an empty table copying values with clone; a nil
// clone means V holds no references and is copied by assignment.
func newOrgTable[V any](clone func(V) V) *orgTable[V] {
	if clone == nil {
		clone = func(v V) V { return v }
	}
	return &orgTable[V]{clone: clone, orgs: map[string]*orgRows[V]{}}
}

// rows returns org's partition, creating it when create is set; it
// returns nil when the partition does not exist and create is not set.
func (t *orgTable[V]) rows(org string, create bool) *orgRows[V] {
	t.mu.RLock()
	r := t.orgs[org]
	t.mu.RUnlock()
	if r != nil || !create {
		return r
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r = t.orgs[org]; r == nil {
		r = &orgRows[V]{byKey: map[string]V{}}
		t.orgs[org] = r
	}
	return r
}

// get returns a copy of org's record key.
func (t *orgTable[V]) get(org, key string) (V, bool) {
	r := t.rows(org, false)
	if r == nil {
		var zero V
		return zero, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.byKey[key]
	if !ok {
		return v, false
	}
	return t.clone(v), true
}

// put stores a copy of v as org's record key.
func (t *orgTable[V]) put(org, key string, v V) {
	v = t.clone(v)
	r := t.rows(org, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[key]; !ok {
		i, _ := slices.BinarySearch(r.sorted, key)
		r.sorted = slices.Insert(r.sorted, i, key)
	}
	r.byKey[key] = v
}

// delete removes org's record key; removing a missing record does nothing.
func (t *orgTable[V]) delete(org, key string) {
	r := t.rows(org, false)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[key]; !ok {
		return
	}
	delete(r.byKey, key)
	if i, found := slices.BinarySearch(r.sorted, key); found {
		r.sorted = slices.Delete(r.sorted, i, i+1)
	}
}

// page returns copies of up to projections.PageLimit(p.Limit) of org's
// records in key order after p.After, skipping those keep refuses (a nil
// keep keeps all). It never returns nil.
func (t *orgTable[V]) page(org string, p projections.Page, keep func(V) bool) []V {
	limit := projections.PageLimit(p.Limit)
	out := []V{}
	r := t.rows(org, false)
	if r == nil {
		return out
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	start := 0
	if p.After != "" {
		i, found := slices.BinarySearch(r.sorted, p.After)
		if found {
			i++
		}
		start = i
	}
	for _, key := range r.sorted[start:] {
		if len(out) == limit {
			break
		}
		if v := r.byKey[key]; keep == nil || keep(v) {
			out = append(out, t.clone(v))
		}
	}
	return out
}

// all returns copies of every record of org in key order, never nil.
func (t *orgTable[V]) all(org string) []V {
	r := t.rows(org, false)
	if r == nil {
		return []V{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]V, 0, len(r.sorted))
	for _, key := range r.sorted {
		out = append(out, t.clone(r.byKey[key]))
	}
	return out
}

// drop removes every record of org.
func (t *orgTable[V]) drop(org string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.orgs, org)
}
