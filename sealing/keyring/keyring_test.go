package keyring_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
