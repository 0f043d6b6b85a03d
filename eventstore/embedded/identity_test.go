package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
)

func logID(t *testing.T, s *Store) string {
	t.Helper()
	id, err := s.LogID(context.Background())
	if err != nil {
		t.Fatalf("LogID: %v", err)
	}
	if id == "" {
		t.Fatal("LogID is empty")
	}
	return id
}

// copyFile copies a closed store's file, as an operator restoring a
// backup does.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLogIDIsTheFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first := logID(t, s)
	stream := eventstore.StreamName{Category: "bot", OrgID: "o1", EntityID: "b1"}
	if _, err := s.Append(ctx, stream, eventstore.NoStream(), []eventstore.NewEvent{testEvent("o1")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LogID(ctx); err == nil {
		t.Error("LogID of a closed store succeeded")
	}

	reopened := mustOpen(t, path, defaultConfig())
	if got := logID(t, reopened); got != first {
		t.Errorf("after a restart LogID = %s, want %s", got, first)
	}

	restored := filepath.Join(t.TempDir(), "restored.db")
	copyFile(t, path, restored)
	if got := logID(t, mustOpen(t, restored, defaultConfig())); got != first {
		t.Errorf("a copy of the file has LogID %s, want the original's %s", got, first)
	}

	if other := logID(t, mustOpen(t, tempPath(t), defaultConfig())); other == first {
		t.Errorf("a new file has the same LogID %s as another", other)
	}
}

// A file written by schema version 1, before logs had an identity, gets
// one when it is opened, keeps its events, and keeps the id afterwards.
func TestLogIDAddedToSchemaVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := tempPath(t)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := strings.TrimSuffix(schema, identitySchema)
	if v1 == schema {
		t.Fatal("the schema no longer ends with the identity table; update this test")
	}
	for _, stmt := range []string{
		`PRAGMA journal_mode = WAL`,
		v1,
		`INSERT INTO events (position, id, stream, version, category, org_id, type, occurred_at, metadata, data)
		 VALUES (1, x'00112233445566778899aabbccddeeff', 'bot-o1_b1', 0, 'bot', 'o1', 'BotCreated', 0, '{"org_id":"o1"}', CAST('{}' AS BLOB))`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open a schema version 1 file: %v", err)
	}
	id := logID(t, s)
	if head, err := s.Head(ctx); err != nil || head != 1 {
		t.Errorf("Head = %d, %v; want the file's one event", head, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := logID(t, mustOpen(t, path, defaultConfig())); got != id {
		t.Errorf("after a restart LogID = %s, want %s", got, id)
	}
}

func testEvent(org string) eventstore.NewEvent {
	return eventstore.NewEvent{
		Type:     "BotCreated",
		Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "u", Kind: "user"}, SchemaVersion: 1},
		Data:     json.RawMessage(`{}`),
	}
}
