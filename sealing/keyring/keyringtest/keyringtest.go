// Package keyringtest is the contract every keyring.Storage keeps, run by
// the tests of each implementation, and the behaviour of keyrings sharing
// one storage (replicas).
package keyringtest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// Fresh returns an empty storage, and a function that opens another handle
// on the same storage, as a second process (replica) would.
type Fresh func(t *testing.T) (store keyring.Storage, another func(t *testing.T) keyring.Storage)

// Run runs the contract against the storage fresh makes.
func Run(t *testing.T, fresh Fresh) {
	t.Run("versions", func(t *testing.T) { testVersions(t, fresh) })
	t.Run("first key race", func(t *testing.T) { testFirstKeyRace(t, fresh) })
	t.Run("destroy", func(t *testing.T) { testDestroy(t, fresh) })
	t.Run("subjects", func(t *testing.T) { testSubjects(t, fresh) })
	t.Run("keyrings sharing the storage", func(t *testing.T) { testShared(t, fresh) })
}

func wrapped(t *testing.T, master sealing.MasterKey, org string, version uint32) sealing.WrappedKey {
	t.Helper()
	_, w, err := sealing.NewDataKey(master, org, version)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func same(a, b sealing.WrappedKey) bool {
	return a.Version == b.Version && bytes.Equal(a.Ciphertext, b.Ciphertext) && bytes.Equal(a.Nonce, b.Nonce)
}

func master(t *testing.T) sealing.MasterKey {
	t.Helper()
	m, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testVersions(t *testing.T, fresh Fresh) {
	ctx := context.Background()
	m := master(t)
	s, another := fresh(t)
	if _, found, err := s.Load(ctx, "org-a"); err != nil || found {
		t.Fatalf("Load of an organization without keys: found %v, %v", found, err)
	}
	v1 := wrapped(t, m, "org-a", 1)
	got, err := s.Add(ctx, "org-a", v1)
	if err != nil || len(got) != 1 || !same(got[0], v1) {
		t.Fatalf("Add v1 = %d versions, %v", len(got), err)
	}
	// A second version 1 loses to the stored one.
	got, err = another(t).Add(ctx, "org-a", wrapped(t, m, "org-a", 1))
	if err != nil || len(got) != 1 || !same(got[0], v1) {
		t.Fatalf("Add of another version 1 = %d versions, %v; want the stored one", len(got), err)
	}
	v2 := wrapped(t, m, "org-a", 2)
	if got, err = s.Add(ctx, "org-a", v2); err != nil || len(got) != 2 || !same(got[0], v1) || !same(got[1], v2) {
		t.Fatalf("Add v2 = %d versions, %v", len(got), err)
	}
	loaded, found, err := another(t).Load(ctx, "org-a")
	if err != nil || !found || len(loaded) != 2 || !same(loaded[0], v1) || !same(loaded[1], v2) {
		t.Fatalf("Load after rotation: found %v, %d versions, %v", found, len(loaded), err)
	}
	if _, err := s.Add(ctx, "org-b", wrapped(t, m, "org-b", 1)); err != nil {
		t.Fatal(err)
	}
	if orgs, err := another(t).Orgs(ctx); err != nil || !slices.Equal(orgs, []string{"org-a", "org-b"}) {
		t.Fatalf("Orgs = %v, %v", orgs, err)
	}
}

func testFirstKeyRace(t *testing.T, fresh Fresh) {
	ctx := context.Background()
	m := master(t)
	s, another := fresh(t)
	stores := []keyring.Storage{s}
	for range 3 {
		stores = append(stores, another(t))
	}
	results := make([][]sealing.WrappedKey, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, st := range stores {
		w := wrapped(t, m, "org-race", 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = st.Add(ctx, "org-race", w)
		}()
	}
	wg.Wait()
	for i := range stores {
		if errs[i] != nil || len(results[i]) != 1 || !same(results[i][0], results[0][0]) {
			t.Fatalf("racer %d: %d versions, %v; every racer must get the one stored key", i, len(results[i]), errs[i])
		}
	}
}

func testDestroy(t *testing.T, fresh Fresh) {
	ctx := context.Background()
	m := master(t)
	s, another := fresh(t)
	if _, err := s.Add(ctx, "org-a", wrapped(t, m, "org-a", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, "org-b", wrapped(t, m, "org-b", 1)); err != nil {
		t.Fatal(err)
	}
	handle := "0123456789abcdef0123456789abcdef"
	if _, err := s.AddSubject(ctx, "org-a", handle, wrapped(t, m, "org-a/subject/"+handle, 1)); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Destroyed(ctx, "org-a"); err != nil || d {
		t.Fatalf("Destroyed before Destroy: %v, %v", d, err)
	}
	if err := another(t).Destroy(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Destroyed(ctx, "org-a"); err != nil || !d {
		t.Fatalf("Destroyed after Destroy: %v, %v", d, err)
	}
	if _, found, err := s.Load(ctx, "org-a"); err != nil || found {
		t.Fatalf("Load after Destroy: found %v, %v", found, err)
	}
	if _, found, err := s.LoadSubject(ctx, "org-a", handle); err != nil || found {
		t.Fatalf("LoadSubject after Destroy: found %v, %v", found, err)
	}
	if _, err := s.Add(ctx, "org-a", wrapped(t, m, "org-a", 1)); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("Add after Destroy: %v, want ErrDestroyed", err)
	}
	if err := s.Destroy(ctx, "org-a"); err != nil {
		t.Fatalf("Destroy again: %v", err)
	}
	if err := s.Destroy(ctx, "org-never"); err != nil {
		t.Fatalf("Destroy of an organization without keys: %v", err)
	}
	if d, err := s.Destroyed(ctx, "org-never"); err != nil || !d {
		t.Fatalf("Destroyed of an organization destroyed without keys: %v, %v", d, err)
	}
	if orgs, err := s.Orgs(ctx); err != nil || !slices.Equal(orgs, []string{"org-b"}) {
		t.Fatalf("Orgs after Destroy = %v, %v; want [org-b]", orgs, err)
	}
	if d, err := s.Destroyed(ctx, "org-b"); err != nil || d {
		t.Fatalf("another organization destroyed: %v, %v", d, err)
	}
}

func testSubjects(t *testing.T, fresh Fresh) {
	ctx := context.Background()
	m := master(t)
	s, another := fresh(t)
	h1, h2 := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	if _, found, err := s.LoadSubject(ctx, "org-a", h1); err != nil || found {
		t.Fatalf("LoadSubject of no key: %v, %v", found, err)
	}
	w1 := wrapped(t, m, "org-a/subject/"+h1, 1)
	if got, err := s.AddSubject(ctx, "org-a", h1, w1); err != nil || !same(got, w1) {
		t.Fatalf("AddSubject: %v", err)
	}
	if got, err := another(t).AddSubject(ctx, "org-a", h1, wrapped(t, m, "org-a/subject/"+h1, 1)); err != nil || !same(got, w1) {
		t.Fatalf("AddSubject of a second key: %v; want the stored one", err)
	}
	if _, err := s.AddSubject(ctx, "org-a", h2, wrapped(t, m, "org-a/subject/"+h2, 1)); err != nil {
		t.Fatal(err)
	}
	if err := another(t).ForgetSubject(ctx, "org-a", h1); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.LoadSubject(ctx, "org-a", h1); err != nil || found {
		t.Fatalf("LoadSubject after ForgetSubject: %v, %v", found, err)
	}
	if _, found, err := s.LoadSubject(ctx, "org-a", h2); err != nil || !found {
		t.Fatalf("the other subject's key: %v, %v", found, err)
	}
	if err := s.ForgetSubject(ctx, "org-a", h1); err != nil {
		t.Fatalf("ForgetSubject of no key: %v", err)
	}
}

// testShared runs two keyrings on one storage, as two replicas do.
func testShared(t *testing.T, fresh Fresh) {
	ctx := context.Background()
	m := master(t)
	s, another := fresh(t)
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	a := keyring.New(s, m, keyring.WithRecheck(time.Minute, clock))
	b := keyring.New(another(t), m, keyring.WithRecheck(time.Minute, clock))

	// Both create the first key at once: one key.
	var ka, kb sealing.DataKey
	var ea, eb error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ka, ea = a.DataKey(ctx, "org-a") }()
	go func() { defer wg.Done(); kb, eb = b.DataKey(ctx, "org-a") }()
	wg.Wait()
	if ea != nil || eb != nil || ka.ID() != kb.ID() {
		t.Fatalf("keyrings creating one organization's key at once: %v %v, same key %v", ea, eb, ka.ID() == kb.ID())
	}
	sealed, err := sealing.Seal(ka, "org-a", []byte("canary"), "content")
	if err != nil {
		t.Fatal(err)
	}

	// A rotation on a: b opens what the new version sealed at once, and
	// seals under it after the recheck age.
	v2, err := a.Rotate(ctx, "org-a")
	if err != nil || v2.Version() != 2 {
		t.Fatalf("rotate: %v, %v", v2, err)
	}
	if got, err := b.DataKeyVersion(ctx, "org-a", 2); err != nil || got.ID() != v2.ID() {
		t.Fatalf("version 2 through the other keyring: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if got, err := b.DataKey(ctx, "org-a"); err != nil || got.ID() != v2.ID() {
		t.Fatalf("newest through the other keyring after the recheck age: version %d, %v", got.Version(), err)
	}

	// A destroy on a: b refuses the key once its copy is older than the
	// recheck age.
	if _, err := b.DataKeyVersion(ctx, "org-a", 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if _, err := b.DataKey(ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("DataKey through the other keyring after the recheck age: %v, want ErrDestroyed", err)
	}
	if k, err := b.DataKeyVersion(ctx, "org-a", 1); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("DataKeyVersion through the other keyring: %v, want ErrNoKey", err)
	} else if _, err := sealing.Open(k, "org-a", sealed, "content"); err == nil {
		t.Fatal("the destroyed key still opened the sealed content")
	}
	// A fresh keyring on the storage never creates it again.
	if _, err := keyring.New(another(t), m).DataKey(ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("DataKey of a new keyring: %v, want ErrDestroyed", err)
	}
}
