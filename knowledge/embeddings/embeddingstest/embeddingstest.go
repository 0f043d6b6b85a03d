// Package embeddingstest is the contract suite of the embedding store port
// (declared by its users, commands and projections). Every adapter's tests
// call [Run]: memory, SQLite and PostgreSQL must not drift apart.
//
// It must never depend on an adapter: it sees only [Store].
package embeddingstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/palisadehq/palisade/domain/access"
)

// Store is what every adapter offers: vectors per organization by (model,
// content hash).
type Store interface {
	Get(ctx context.Context, scope access.Scope, model string, hashes []string) (map[string][]float32, error)
	Put(ctx context.Context, scope access.Scope, model string, vectors map[string][]float32) error
	PurgeOrg(ctx context.Context, scope access.Scope) error
}

// Options describes an adapter's limits.
type Options struct {
	// Reopen, when set, closes the store given and opens the same storage
	// again: the suite then checks that vectors survive it.
	Reopen func(t *testing.T, s Store) Store
}

func scope(t *testing.T, org string) access.Scope {
	t.Helper()
	s, err := access.EventScope(org)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func vector(seed float32, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		v[i] = seed + float32(i)/float32(dims)
	}
	return v
}

// Run checks the contract. newStore is called once per subtest and may
// register cleanups on the t it is given.
func Run(t *testing.T, newStore func(t *testing.T) Store, opts Options) {
	t.Helper()
	ctx := context.Background()

	t.Run("MissingHashesAreAbsent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		got, err := s.Get(ctx, scope(t, "org-a"), "m", []string{"h1", "h2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("Get on an empty store = %v", got)
		}
		got, err = s.Get(ctx, scope(t, "org-a"), "m", nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("Get(nil) = %v, %v", got, err)
		}
	})

	t.Run("PutThenGetExactly", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		sc := scope(t, "org-a")
		want := map[string][]float32{"h1": vector(0.5, 384), "h2": vector(-0.25, 384), "h3": {1e-30, -3.5e20, 0}}
		if err := s.Put(ctx, sc, "m", want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, sc, "m", []string{"h1", "h2", "h3", "absent"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("Get returned %d vectors, want 3", len(got))
		}
		for h, v := range want {
			if !slices.Equal(got[h], v) {
				t.Errorf("vector %s changed in the round trip", h)
			}
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		sc := scope(t, "org-a")
		if err := s.Put(ctx, sc, "m", map[string][]float32{"h": vector(1, 8)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, sc, "m", map[string][]float32{"h": vector(2, 8)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, sc, "m", []string{"h"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got["h"], vector(2, 8)) {
			t.Fatalf("after a second Put, Get = %v", got["h"])
		}
	})

	t.Run("ModelsAreSeparate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		sc := scope(t, "org-a")
		if err := s.Put(ctx, sc, "model-a", map[string][]float32{"h": vector(1, 4)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, sc, "model-b", map[string][]float32{"h": vector(3, 16)}); err != nil {
			t.Fatal(err)
		}
		for model, want := range map[string][]float32{"model-a": vector(1, 4), "model-b": vector(3, 16)} {
			got, err := s.Get(ctx, sc, model, []string{"h"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got["h"], want) {
				t.Errorf("%s: Get = %v, want %v", model, got["h"], want)
			}
		}
		got, err := s.Get(ctx, sc, "model-c", []string{"h"})
		if err != nil || len(got) != 0 {
			t.Fatalf("an unused model: Get = %v, %v", got, err)
		}
	})

	t.Run("OrganizationsAreSeparate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.Put(ctx, scope(t, "org-a"), "m", map[string][]float32{"h": vector(1, 4)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, scope(t, "org-b"), "m", []string{"h"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("org-b read org-a's vector: %v", got)
		}
	})

	t.Run("PurgeOrgRemovesOneOrganizationUnderEveryModel", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := scope(t, "org-a"), scope(t, "org-b")
		for _, model := range []string{"model-a", "model-b"} {
			for _, sc := range []access.Scope{a, b} {
				if err := s.Put(ctx, sc, model, map[string][]float32{"h1": vector(1, 4), "h2": vector(2, 4)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.PurgeOrg(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.PurgeOrg(ctx, a); err != nil {
			t.Fatalf("a second PurgeOrg: %v", err)
		}
		for _, model := range []string{"model-a", "model-b"} {
			got, err := s.Get(ctx, a, model, []string{"h1", "h2"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("%s: org-a still has %d vectors after PurgeOrg", model, len(got))
			}
			got, err = s.Get(ctx, b, model, []string{"h1", "h2"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Errorf("%s: PurgeOrg of org-a left org-b %d of 2 vectors", model, len(got))
			}
		}
	})

	t.Run("NoScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, err := s.Get(ctx, access.Scope{}, "m", []string{"h"}); !errors.Is(err, access.ErrNoScope) {
			t.Errorf("Get without a scope = %v, want ErrNoScope", err)
		}
		if err := s.Put(ctx, access.Scope{}, "m", map[string][]float32{"h": {1}}); !errors.Is(err, access.ErrNoScope) {
			t.Errorf("Put without a scope = %v, want ErrNoScope", err)
		}
		if err := s.PurgeOrg(ctx, access.Scope{}); !errors.Is(err, access.ErrNoScope) {
			t.Errorf("PurgeOrg without a scope = %v, want ErrNoScope", err)
		}
	})

	t.Run("EmptyVectorIsRefused", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		sc := scope(t, "org-a")
		if err := s.Put(ctx, sc, "m", map[string][]float32{"ok": {1}, "empty": {}}); err == nil {
			t.Fatal("Put of an empty vector succeeded")
		}
		got, err := s.Get(ctx, sc, "m", []string{"ok", "empty"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got["empty"]) != 0 {
			t.Fatalf("an empty vector was stored: %v", got)
		}
	})

	t.Run("ManyHashesAtOnce", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		sc := scope(t, "org-a")
		const n = 1200
		want := make(map[string][]float32, n)
		hashes := make([]string, 0, n)
		for i := range n {
			h := fmt.Sprintf("hash-%04d", i)
			want[h], hashes = vector(float32(i), 4), append(hashes, h)
		}
		if err := s.Put(ctx, sc, "m", want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, sc, "m", hashes)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("Get returned %d of %d vectors", len(got), n)
		}
		for h, v := range want {
			if !slices.Equal(got[h], v) {
				t.Fatalf("vector %s changed", h)
			}
		}
	})

	if opts.Reopen != nil {
		t.Run("SurvivesReopen", func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			sc := scope(t, "org-a")
			if err := s.Put(ctx, sc, "m", map[string][]float32{"h": vector(7, 384)}); err != nil {
				t.Fatal(err)
			}
			s = opts.Reopen(t, s)
			got, err := s.Get(ctx, sc, "m", []string{"h"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got["h"], vector(7, 384)) {
				t.Fatalf("after reopening, Get = %v", got)
			}
		})
	}
}
