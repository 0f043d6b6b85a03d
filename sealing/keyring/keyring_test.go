package keyring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

func TestKeysSurviveReopenAndStayPerOrganization(t *testing.T) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ring, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	keyA, err := ring.DataKey(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealing.Seal(keyA, "org-a", []byte("s3cret"), "datasource:x:password")
	if err != nil {
		t.Fatal(err)
	}

	reopened, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	again, err := reopened.DataKey(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := sealing.Open(again, "org-a", sealed, "datasource:x:password")
	if err != nil || string(plain) != "s3cret" {
		t.Fatalf("after reopening: %q, %v", plain, err)
	}
	keyB, err := reopened.DataKey(ctx, "org-b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealing.Open(keyB, "org-b", sealed, "datasource:x:password"); err == nil {
		t.Fatal("another organization's key opened the secret")
	}

	b, err := os.ReadFile(filepath.Join(dir, "org-a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("s3cret")) {
		t.Fatal("key file holds the plaintext")
	}
	info, err := os.Stat(filepath.Join(dir, "org-a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		t.Fatalf("key file mode %v is open to others", info.Mode().Perm())
	}
}

func TestOtherMasterKeyCannotUnwrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m1, _ := sealing.GenerateMasterKey()
	m2, _ := sealing.GenerateMasterKey()
	r1, err := keyring.Open(dir, m1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.DataKey(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	r2, err := keyring.Open(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.DataKey(ctx, "org-a"); err == nil {
		t.Fatal("a keyring under another master key unwrapped the data key")
	}
}

func TestRefusesIDsThatAreNotFileNames(t *testing.T) {
	master, _ := sealing.GenerateMasterKey()
	ring := keyring.NewMemory(master)
	for _, id := range []string{"", "../x", "a/b", "a.json", string(make([]byte, 200))} {
		if _, err := ring.DataKey(context.Background(), id); err == nil {
			t.Errorf("DataKey(%q) accepted", id)
		}
	}
	if _, err := ring.DataKey(context.Background(), "ok-org_1"); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFileBeforeRotationStillLoadsAndRotates(t *testing.T) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The form written before versions existed: one wrapped key.
	key, wrapped, err := sealing.NewDataKey(master, "org-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(wrapped)
	if err := os.WriteFile(filepath.Join(dir, "org-a.json"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ring.DataKey(ctx, "org-a")
	if err != nil || got.ID() != key.ID() {
		t.Fatalf("old key file: %v %v", got, err)
	}
	v2, err := ring.Rotate(ctx, "org-a")
	if err != nil || v2.Version() != 2 || v2.ID() == key.ID() {
		t.Fatalf("rotate: %v %v", v2, err)
	}
	reopened, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	newest, err := reopened.DataKey(ctx, "org-a")
	if err != nil || newest.ID() != v2.ID() {
		t.Fatalf("newest after reopen: %v %v", newest, err)
	}
	first, err := reopened.DataKeyVersion(ctx, "org-a", 1)
	if err != nil || first.ID() != key.ID() {
		t.Fatalf("version 1 after rotation: %v %v", first, err)
	}
	if _, err := reopened.DataKeyVersion(ctx, "org-a", 3); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("missing version: %v", err)
	}
	if _, err := reopened.DataKeyVersion(ctx, "org-b", 1); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("organization without keys: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "org-b.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("opening created a key")
	}
}

func TestForgetDestroysOneSubjectKey(t *testing.T) {
	ctx := context.Background()
	master, _ := sealing.GenerateMasterKey()
	for name, ring := range map[string]*keyring.Keyring{"memory": keyring.NewMemory(master), "disk": mustOpen(t, master)} {
		alice, ha, err := ring.SubjectKey(ctx, "org-a", "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		_, hb, err := ring.SubjectKey(ctx, "org-a", "bob@example.com")
		if err != nil || ha == hb {
			t.Fatalf("%s: handles %s %s, %v", name, ha, hb, err)
		}
		if strings.Contains(ha, "alice") {
			t.Fatalf("%s: handle reveals the subject", name)
		}
		again, err := ring.SubjectKeyByHandle(ctx, "org-a", ha)
		if err != nil || again.ID() != alice.ID() {
			t.Fatalf("%s: by handle: %v", name, err)
		}
		if err := ring.Forget(ctx, "org-a", "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := ring.SubjectKeyByHandle(ctx, "org-a", ha); !errors.Is(err, keyring.ErrNoKey) {
			t.Fatalf("%s: forgotten subject key: %v", name, err)
		}
		if _, err := ring.SubjectKeyByHandle(ctx, "org-a", hb); err != nil {
			t.Fatalf("%s: other subject's key: %v", name, err)
		}
		if _, err := ring.DataKeyVersion(ctx, "org-a", 1); err != nil {
			t.Fatalf("%s: organization's key: %v", name, err)
		}
	}
}

func mustOpen(t *testing.T, master sealing.MasterKey) *keyring.Keyring {
	t.Helper()
	ring, err := keyring.Open(t.TempDir(), master)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func TestDestroyedKeyIsNeverHandedOutAgain(t *testing.T) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rings := map[string]func() *keyring.Keyring{
		"memory": func() *keyring.Keyring { return keyring.NewMemory(master) },
		"dir": func() *keyring.Keyring {
			r, err := keyring.Open(dir, master)
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	}
	for name, open := range rings {
		t.Run(name, func(t *testing.T) {
			ring := open()
			key, err := ring.DataKey(ctx, "org-a")
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := sealing.Seal(key, "org-a", []byte("canary-text"), "content")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ring.DataKey(ctx, "org-b"); err != nil {
				t.Fatal(err)
			}
			if err := ring.Destroy(ctx, "org-a"); err != nil {
				t.Fatal(err)
			}
			if _, err := ring.DataKey(ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
				t.Fatalf("DataKey after Destroy: %v, want ErrDestroyed", err)
			}
			if err := ring.Destroy(ctx, "org-a"); err != nil {
				t.Fatalf("destroying again: %v", err)
			}
			if orgs, err := ring.Orgs(ctx); err != nil || !slices.Equal(orgs, []string{"org-b"}) {
				t.Fatalf("Orgs after Destroy = %v, %v; want [org-b]", orgs, err)
			}
			if name == "memory" {
				return
			}
			if _, err := os.Stat(filepath.Join(dir, "org-a.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the key file is still there: %v", err)
			}
			reopened := open()
			if _, err := reopened.DataKey(ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
				t.Fatalf("DataKey after reopening: %v, want ErrDestroyed", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "org-a.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatal("DataKey created a fresh key for a destroyed organization")
			}
			// Nothing on disk opens what the destroyed key sealed.
			for _, org := range []string{"org-a", "org-b"} {
				if k, err := reopened.DataKey(ctx, org); err == nil {
					if _, err := sealing.Open(k, "org-a", sealed, "content"); err == nil {
						t.Fatalf("the key of %s opened org-a's sealed content", org)
					}
				}
			}
			if _, err := reopened.DataKey(ctx, "org-b"); err != nil {
				t.Fatalf("another organization's key: %v", err)
			}
		})
	}
}

func TestDestroyFinishesAfterACrashBetweenTombstoneAndRemoval(t *testing.T) {
	ctx := context.Background()
	master, _ := sealing.GenerateMasterKey()
	dir := t.TempDir()
	ring, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.DataKey(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	// The crash: the tombstone was written, the key file not yet removed.
	if err := os.WriteFile(filepath.Join(dir, "org-a.destroyed"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	reopened, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reopened.DataKey(ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("DataKey beside a tombstone: %v, want ErrDestroyed", err)
	}
	if orgs, _ := reopened.Orgs(ctx); !slices.Equal(orgs, []string{"org-a"}) {
		t.Fatalf("Orgs = %v: recovery must still see the key file", orgs)
	}
	if err := reopened.Destroy(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "org-a.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the key file survived a second Destroy: %v", err)
	}
}

// TestDigestKeyOutlivesRotationAndGoesWithDestroy: the digest key is the
// same before and after a rotation and after a reopen (a digest recorded
// earlier still matches), differs per organization, and is gone with the
// organization's keys.
func TestDigestKeyOutlivesRotationAndGoesWithDestroy(t *testing.T) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ring, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	const sum = "8a2e0f9c47f0d62d9ae4c8dc1e2ad3e0c6d1b36f0b2ab3f10e5ef2bb5c1f9a01"
	digest := func(r *keyring.Keyring, org string) string {
		t.Helper()
		d, err := r.DigestKey(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		return d.Digest(sum)
	}
	before := digest(ring, "org-a")
	if _, err := ring.Rotate(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	if after := digest(ring, "org-a"); after != before {
		t.Fatal("the digest changed with a rotation")
	}
	reopened, err := keyring.Open(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	if again := digest(reopened, "org-a"); again != before {
		t.Fatal("the digest changed with a reopen")
	}
	if other := digest(reopened, "org-b"); other == before {
		t.Fatal("two organizations share a digest key")
	}
	if err := reopened.Destroy(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := reopened.DigestKey(ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("DigestKey after Destroy: %v, want ErrDestroyed", err)
	}
}
