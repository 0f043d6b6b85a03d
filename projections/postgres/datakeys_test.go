package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
	"github.com/palisadehq/palisade/sealing/keyring/keyringtest"
)

// openDataKeys opens another handle on the schema's data keys, as a
// replica does.
func openDataKeys(t *testing.T, db testDatabase, schema string) *DataKeys {
	t.Helper()
	d, err := OpenDataKeys(context.Background(), db.appURL, schema)
	if err != nil {
		t.Fatalf("open data keys of %s: %v", schema, err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestDataKeysStorage runs the keyring storage contract (first-key race,
// rotation and destroy seen by a second keyring) on PostgreSQL, each
// keyring with a pool of its own, as replicas have.
func TestDataKeysStorage(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	keyringtest.Run(t, func(t *testing.T) (keyring.Storage, func(*testing.T) keyring.Storage) {
		schema := migrateFresh(t, db)
		return openDataKeys(t, db, schema), func(t *testing.T) keyring.Storage { return openDataKeys(t, db, schema) }
	})
}

// TestDataKeysHoldOnlyWrappedKeys: what the table holds does not contain
// the key, and a rebuild's reset keeps the keys.
func TestDataKeysHoldOnlyWrappedKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.db.requireVector(t)
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	ring := keyring.New(openDataKeys(t, b.db, b.schema), master)
	key, err := ring.DataKey(b.ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealing.Seal(key, "org-a", []byte("canary-plaintext"), "content")
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := b.owner.QueryRow(b.ctx, `SELECT wrapped::text FROM data_keys WHERE organization = 'org-a'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stored, master.ID()) {
		t.Fatalf("stored key %s does not name the master key that wrapped it", stored)
	}
	if err := Reset(b.ctx, b.db.ownerURL, b.schema); err != nil {
		t.Fatal(err)
	}
	again, err := keyring.New(openDataKeys(t, b.db, b.schema), master).DataKey(b.ctx, "org-a")
	if err != nil || again.ID() != key.ID() {
		t.Fatalf("key after a read-model reset: %v (same %v)", err, again.ID() == key.ID())
	}
	if plain, err := sealing.Open(again, "org-a", sealed, "content"); err != nil || string(plain) != "canary-plaintext" {
		t.Fatalf("open after reset: %q %v", plain, err)
	}
	other, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.New(openDataKeys(t, b.db, b.schema), other).DataKey(b.ctx, "org-a"); err == nil {
		t.Fatal("a keyring under another master key unwrapped the stored key")
	}
	if err := ring.Destroy(b.ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := b.owner.QueryRow(b.ctx, `SELECT count(*) FROM data_keys WHERE organization = 'org-a'`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("rows of a destroyed key: %d, %v", rows, err)
	}
	if _, err := ring.DataKey(b.ctx, "org-a"); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("DataKey after Destroy: %v", err)
	}
}
