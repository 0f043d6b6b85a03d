package app_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections/postgres"
)

// These tests are about PostgreSQL read models, which outlive a server and
// may meet a log they were not built from: they run on PostgreSQL whatever
// PALISADE_TEST_READ_MODELS says, and fail without it.

// onSchema points a configuration at the read models of schema, kept in
// PostgreSQL.
func onSchema(owner, appURL, schema string, rebuild bool) func(*app.Config) {
	return func(cfg *app.Config) {
		cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
		cfg.RebuildReadModels = rebuild
	}
}

// refusal checks that err refuses the read models for want, and tells the
// operator how to rebuild them.
func refusal(t *testing.T, err error, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("Open = %v, want a refusal (%v)", err, want)
	}
	for _, part := range []string{"refusing to serve the read models", "palisade migrate --rebuild", "--rebuild-read-models"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("refusal %q does not say %q", err, part)
		}
	}
}

// A fresh data directory (a new log) against read models built from
// another log: refused; rebuilt when asked, and then its own members are
// served and the other log's are not.
func TestReadModelsOfAnotherLogAreRefused(t *testing.T) {
	t.Parallel()
	dirA, dirB := t.TempDir(), t.TempDir()
	owner, appURL, schema := postgresForTest(t, dirA)

	a := openHarness(t, dirA, onSchema(owner, appURL, schema, false))
	orgA, aliceA := a.createOrg("Alpha", "alice")
	botA := a.createBot(aliceA, "Alpha helpdesk")
	a.close()

	if _, err := openApp(t, dirB, onSchema(owner, appURL, schema, false)); err != nil {
		refusal(t, err, postgres.ErrOtherLog)
	} else {
		t.Fatal("a new log opened on read models built from another log")
	}

	b := openHarness(t, dirB, onSchema(owner, appURL, schema, true))
	orgB, bob := b.createOrg("Bravo", "bob")
	carol := b.addMember(orgB, bob, "carol", "viewer")
	b.must(http.StatusOK, http.MethodGet, "/v1/bots", carol, nil)
	// The other log's organization, member and bot are gone: a token for
	// them (here signed by this server's own issuer) is a stranger's.
	b.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots/"+botA, b.mint(identity.Claims{Kind: identity.KindUser, Org: orgA}, "alice"), nil)
	b.close()

	// The read models are B's now: A is refused in turn.
	if _, err := openApp(t, dirA, onSchema(owner, appURL, schema, false)); err != nil {
		refusal(t, err, postgres.ErrOtherLog)
	} else {
		t.Fatal("a log opened on read models rebuilt from another log")
	}

	// A restart of B is the ordinary path: no refusal, nothing rebuilt away.
	b = openHarness(t, dirB, onSchema(owner, appURL, schema, false))
	b.must(http.StatusOK, http.MethodGet, "/v1/bots", b.userToken(orgB, "carol"), nil)
}

// A log restored from an older copy, next to read models that saw more:
// refused; rebuilt when asked, and then what the log no longer holds is
// not served.
func TestReadModelsAheadOfTheLogAreRefused(t *testing.T) {
	t.Parallel()
	dir, backup := t.TempDir(), filepath.Join(t.TempDir(), "backup")
	owner, appURL, schema := postgresForTest(t, dir)
	// The restore is of the embedded log's file, whatever log the suite
	// runs on.
	embeddedLog := func(rebuild bool) func(*app.Config) {
		return func(cfg *app.Config) {
			onSchema(owner, appURL, schema, rebuild)(cfg)
			cfg.EventStoreURL = ""
		}
	}

	h := openHarness(t, dir, embeddedLog(false))
	org, alice := h.createOrg("Alpha", "alice")
	kept := h.createBot(alice, "Kept")
	h.close()
	copyDir(t, dir, backup)

	h = openHarness(t, dir, embeddedLog(false))
	lost := h.createBot(h.userToken(org, "alice"), "Lost")
	dave := h.addMember(org, h.userToken(org, "alice"), "dave", "viewer")
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+lost, dave, nil)
	h.close()

	// The operator restores the older copy of the data directory.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, dir)
	if _, err := openApp(t, dir, embeddedLog(false)); err != nil {
		refusal(t, err, postgres.ErrAheadOfLog)
	} else {
		t.Fatal("a restored log opened on read models ahead of it")
	}

	h = openHarness(t, dir, embeddedLog(true))
	alice = h.userToken(org, "alice")
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+kept, alice, nil)
	h.must(http.StatusNotFound, http.MethodGet, "/v1/bots/"+lost, alice, nil)
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/bots", h.userToken(org, "dave"), nil)
	// The log goes on from where the copy ended.
	h.createBot(alice, "After the restore")
	h.close()

	h = openHarness(t, dir, embeddedLog(false))
	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+kept, h.userToken(org, "alice"), nil)
}

// The rebuild needs the owner role: without its URL the flag cannot help,
// and says so.
func TestRebuildReadModelsNeedsTheOwner(t *testing.T) {
	t.Parallel()
	dirA, dirB := t.TempDir(), t.TempDir()
	owner, appURL, schema := postgresForTest(t, dirA)
	a := openHarness(t, dirA, onSchema(owner, appURL, schema, false))
	a.createOrg("Alpha", "alice")
	a.close()
	_, err := openApp(t, dirB, func(cfg *app.Config) {
		onSchema("", appURL, schema, true)(cfg)
	})
	if !errors.Is(err, postgres.ErrOtherLog) || !strings.Contains(err.Error(), "PALISADE_POSTGRES_OWNER_URL") {
		t.Fatalf("Open with --rebuild-read-models and no owner URL = %v, want a refusal naming PALISADE_POSTGRES_OWNER_URL", err)
	}
}

// copyDir copies a closed data directory, as a backup does.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", from, to, err)
	}
}
