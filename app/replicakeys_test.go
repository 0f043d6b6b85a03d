package app_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections/postgres"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// TestReplicasShareDataKeys runs two replicas, each with a data directory
// of its own, on one EventStoreDB (in-test) and one PostgreSQL schema, with
// the same master key: the data key an organization got on replica A is in
// PostgreSQL, not in A's data directory, so replica B opens A's events and
// serves A's organization and documents. It always runs on this stack
// (PostgreSQL must be configured: PALISADE_TEST_POSTGRES_URL).
func TestReplicasShareDataKeys(t *testing.T) {
	const canary = "canary-replica-7d2e"
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	esdbURL := esdbForTest(t, dirA)
	owner, appURL, schema := postgresForTest(t, dirA)
	replica := func(dir string) *harness {
		return openHarnessWith(t, dir, func(cfg *app.Config) {
			cfg.EventStoreURL = esdbURL
			cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
			cfg.KafkaBrokers = nil
			cfg.MasterKey = sealing.NewSecret(master.Encode())
		})
	}
	a := replica(dirA)
	org, ownerA := a.createOrg("Acme", "alice")
	kb := a.createKB(ownerA, "Handbook")
	doc := a.addDoc(ownerA, kb, "Leave", "text/plain", canary+" paid leave is twenty days")
	if doc.State != "ready" {
		t.Fatalf("document on replica A: %+v", doc)
	}
	// No key file on A's disk: the key lives in PostgreSQL.
	if files, err := filepath.Glob(filepath.Join(dirA, keyring.Dir, "*.json")); err != nil || len(files) != 0 {
		t.Fatalf("key files in replica A's data directory: %v, %v", files, err)
	}

	b := replica(dirB)
	ownerB := b.userToken(org, "alice")
	b.must(http.StatusOK, http.MethodGet, "/v1/org", ownerB, nil)
	if got := b.waitDoc(ownerB, kb, doc.ID); got.State != "ready" {
		t.Fatalf("document through replica B: %+v", got)
	}
	res := b.search(ownerB, map[string]any{"query": "how many days of paid leave", "k": 3})
	if len(res.Results) == 0 {
		t.Fatalf("search through replica B found nothing: %+v", res)
	}

	// B opens every event A sealed as A does: none reads as shredded there.
	ctx := context.Background()
	seenA, err := a.app.Store.ReadAll(ctx, 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	seenB, err := b.app.Store.ReadAll(ctx, 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(seenA) == 0 || len(seenA) > len(seenB) {
		t.Fatalf("replica A read %d events, B %d", len(seenA), len(seenB))
	}
	found := false
	for i, e := range seenA {
		if !bytes.Equal(e.Data, seenB[i].Data) {
			t.Fatalf("event %d (%s) reads differently on replica B:\nA %s\nB %s", e.Position, e.Type, e.Data, seenB[i].Data)
		}
		found = found || bytes.Contains(e.Data, []byte(canary))
	}
	if !found {
		t.Fatal("the canary is in no event opened by replica A")
	}

	// Closing the organization on A destroys the key for B too: B, which
	// holds a copy, drops it as soon as it has seen the close (not after
	// its keyring's recheck, 30 s later).
	a.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, a.platform, map[string]string{"confirm": "Acme"})
	head, err := a.app.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.app.Engine.WaitFor(wait, head); err != nil {
		t.Fatal(err)
	}
	onB, err := b.app.Store.ReadAll(ctx, 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range onB {
		if bytes.Contains(e.Data, []byte(canary)) {
			t.Fatalf("replica B still opens event %d (%s) after it saw the close", e.Position, e.Type)
		}
	}
	fresh := replica(t.TempDir())
	after, err := fresh.app.Store.ReadAll(ctx, 0, eventstore.Filter{}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range after {
		if bytes.Contains(e.Data, []byte(canary)) {
			t.Fatalf("a replica started after the close opened event %d (%s)", e.Position, e.Type)
		}
	}
}

// TestReplicatedStackMovesKeyFilesIntoPostgreSQL: a deployment that ran
// with one replica (key files in the data directory) and starts on the
// replicated stack gets its keys, subject keys and tombstones moved into
// PostgreSQL, the files removed; a key file that differs from the key
// PostgreSQL holds stops the start.
func TestReplicatedStackMovesKeyFilesIntoPostgreSQL(t *testing.T) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := keyring.Open(filepath.Join(dir, keyring.Dir), master)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := files.DataKey(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := files.Rotate(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	subject, handle, err := files.SubjectKey(ctx, "org-a", "carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := files.DataKey(ctx, "org-closed"); err != nil {
		t.Fatal(err)
	}
	if err := files.Destroy(ctx, "org-closed"); err != nil {
		t.Fatal(err)
	}
	esdbURL := esdbForTest(t, dir)
	owner, appURL, schema := postgresForTest(t, dir)
	configure := func(cfg *app.Config) {
		cfg.EventStoreURL = esdbURL
		cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
		cfg.KafkaBrokers = nil
		cfg.MasterKey = sealing.NewSecret(master.Encode())
	}
	h := openHarnessWith(t, dir, configure)
	h.close()
	if left, err := os.ReadDir(filepath.Join(dir, keyring.Dir)); err != nil || len(left) != 0 {
		t.Fatalf("left in the key directory after the move: %v, %v", left, err)
	}

	shared, err := postgres.OpenDataKeys(ctx, appURL, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	ring := keyring.New(shared, master)
	for _, want := range []sealing.DataKey{v1, v2} {
		if got, err := ring.DataKeyVersion(ctx, "org-a", want.Version()); err != nil || got.ID() != want.ID() {
			t.Fatalf("version %d in PostgreSQL: %v (same key %v)", want.Version(), err, got.ID() == want.ID())
		}
	}
	if got, err := ring.SubjectKeyByHandle(ctx, "org-a", handle); err != nil || got.ID() != subject.ID() {
		t.Fatalf("subject key in PostgreSQL: %v", err)
	}
	if _, err := ring.DataKey(ctx, "org-closed"); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("the destroyed organization's key in PostgreSQL: %v, want ErrDestroyed", err)
	}

	// Another replica's data directory holds a different key for org-a.
	other := t.TempDir()
	stray, err := keyring.Open(filepath.Join(other, keyring.Dir), master)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stray.DataKey(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	_, err = openApp(t, other, configure)
	if err == nil || !strings.Contains(err.Error(), "differs from the one in PostgreSQL") {
		t.Fatalf("start with a conflicting key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, keyring.Dir, "org-a.json")); err != nil {
		t.Fatalf("the conflicting key file was not kept: %v", err)
	}
}

// TestReplicasDestroyTheKeyOfAnOrganizationClosedBeforeACrash: on the
// replicated stack, a crash between the OrganizationClosed append and the
// destruction of the key in PostgreSQL leaves the key there; the next
// replica to start destroys it, and no other organization's.
func TestReplicasDestroyTheKeyOfAnOrganizationClosedBeforeACrash(t *testing.T) {
	ctx := context.Background()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	esdbURL := esdbForTest(t, dir)
	owner, appURL, schema := postgresForTest(t, dir)
	configure := func(cfg *app.Config) {
		cfg.EventStoreURL = esdbURL
		cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
		cfg.KafkaBrokers = nil
		cfg.MasterKey = sealing.NewSecret(master.Encode())
	}
	h := openHarnessWith(t, dir, configure)
	org, _ := h.createOrg("Acme", "alice")
	other, _ := h.createOrg("Globex", "olga")
	shared, err := postgres.OpenDataKeys(ctx, appURL, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	ring := keyring.New(shared, master)
	for _, o := range []string{org, other} {
		if _, err := ring.DataKey(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	stored, _, err := shared.Load(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	h.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, h.platform, map[string]string{"confirm": "Acme"})
	h.close()

	// The crash: the log says closed, the key was never destroyed.
	conn, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM `+schema+`.data_key_tombstones WHERE organization = $1`, org); err != nil {
		t.Fatal(err)
	}
	for _, w := range stored {
		if _, err := shared.Add(ctx, org, w); err != nil {
			t.Fatal(err)
		}
	}
	if orgs, err := shared.Orgs(ctx); err != nil || !slices.Contains(orgs, org) {
		t.Fatalf("the crash was not simulated: %v, %v", orgs, err)
	}

	h = openHarnessWith(t, t.TempDir(), configure)
	if _, err := keyring.New(shared, master).DataKey(ctx, org); !errors.Is(err, keyring.ErrDestroyed) {
		t.Fatalf("the closed organization's key after a restart: %v, want ErrDestroyed", err)
	}
	if orgs, err := shared.Orgs(ctx); err != nil || !slices.Equal(orgs, []string{other}) {
		t.Fatalf("keys after recovery: %v, %v; want only %s", orgs, err, other)
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/org", h.userToken(other, "olga"), nil)
}
