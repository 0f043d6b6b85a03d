package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresArgs returns the serve flags of a fresh PostgreSQL schema of the
// test's own, dropped at the end, and the owner's URL. It runs whatever
// PALISADE_TEST_READ_MODELS says: the test is about PostgreSQL read models.
func postgresArgs(t *testing.T) (args []string, owner, schema string) {
	t.Helper()
	owner = os.Getenv("PALISADE_TEST_POSTGRES_URL")
	if owner == "" {
		t.Fatal("this test needs PALISADE_TEST_POSTGRES_URL (make test sets it)")
	}
	u, err := url.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("palisade_app", "palisade_app")
	schema = fmt.Sprintf("rebuild_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), owner)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return []string{"--postgres-owner-url", owner, "--postgres-url", u.String(), "--postgres-schema", schema}, owner, schema
}

// As an operator would: a server on a new data directory refuses the read
// models another log built, says how to rebuild, and after
// `palisade migrate --rebuild` starts on them.
func TestServeRefusesReadModelsOfAnotherLogUntilMigrateRebuild(t *testing.T) {
	pgArgs, owner, schema := postgresArgs(t)
	first := startServer(t, t.TempDir(), pgArgs...)
	first.kill()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	var stderr bytes.Buffer
	err := serve(ctx, append([]string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--log-level", "error"}, pgArgs...), &stderr)
	if err == nil || !strings.Contains(err.Error(), "built from another log") || !strings.Contains(err.Error(), "palisade migrate --rebuild") {
		t.Fatalf("serve on another log's read models = %v, want a refusal that says how to rebuild", err)
	}

	var stdout bytes.Buffer
	if err := migrate(ctx, []string{"--owner-url", owner, "--schema", schema, "--rebuild"}, &stdout, &stderr); err != nil {
		t.Fatalf("migrate --rebuild: %v", err)
	}
	if !strings.Contains(stdout.String(), "read models emptied") {
		t.Errorf("migrate --rebuild said %q", stdout.String())
	}
	second := startServer(t, dir, pgArgs...)
	second.kill()
	// The read models are the new log's now: a restart is the ordinary path.
	startServer(t, dir, pgArgs...).kill()
}

// migrate --index-organizations migrates, then runs one pass over the
// organization indexes and says what it did; on a schema without chunks,
// nothing.
func TestMigrateIndexesOrganizations(t *testing.T) {
	t.Parallel()
	_, owner, schema := postgresArgs(t)
	var stdout, stderr bytes.Buffer
	if err := migrate(context.Background(), []string{"--owner-url", owner, "--schema", schema, "--index-organizations"}, &stdout, &stderr); err != nil {
		t.Fatalf("migrate --index-organizations: %v (%s)", err, stderr.String())
	}
	for _, want := range []string{"read-model schema is up to date", "organization indexes: 0 built, 0 rebuilt, 0 dropped, 0 kept"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output %q does not say %q", stdout.String(), want)
		}
	}
}
