package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/esdb"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
)

// TestAuditReplayReadsTheConfiguredStore puts different events in the
// data directory's log and in an in-test EventStoreDB, and checks that
// audit replay prints those of the store it is configured with, by flag or
// by environment, in global order and filtered by organization: the whole
// log with global positions, one organization's events numbered 1, 2, 3 …
// by its sequence and without a position.
func TestAuditReplayReadsTheConfiguredStore(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	local, err := embedded.Open(ctx, filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	inFile := map[string][]uuid.UUID{
		"file-a": appendBots(t, local, "file-a", 3),
		"file-b": appendBots(t, local, "file-b", 2),
	}
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}
	srv := esdbtest.New(t)
	remote, err := esdb.Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	inESDB := map[string][]uuid.UUID{
		"esdb-a": appendBots(t, remote, "esdb-a", 2),
		"esdb-b": appendBots(t, remote, "esdb-b", 3),
	}
	if err := remote.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		env  string // PALISADE_EVENTSTORE_URL
		want []uuid.UUID
	}{
		{"embedded, whole log", nil, "", concat(inFile["file-a"], inFile["file-b"])},
		{"embedded, one org", []string{"--org", "file-b"}, "", inFile["file-b"]},
		{"esdb by flag, whole log", []string{"--eventstore-url", srv.URL()}, "", concat(inESDB["esdb-a"], inESDB["esdb-b"])},
		{"esdb by flag, one org", []string{"--eventstore-url", srv.URL(), "--org", "esdb-a"}, "", inESDB["esdb-a"]},
		{"esdb by environment, one org", []string{"--org", "esdb-b"}, srv.URL(), inESDB["esdb-b"]},
		{"esdb has none of the file's orgs", []string{"--eventstore-url", srv.URL(), "--org", "file-a"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PALISADE_EVENTSTORE_URL", tt.env)
			var out, stderr bytes.Buffer
			args := append([]string{"audit", "replay", "--data-dir", dataDir, "--log-level", "error"}, tt.args...)
			if err := run(ctx, args, &out, &stderr); err != nil {
				t.Fatalf("audit replay: %v\n%s", err, stderr.Bytes())
			}
			oneOrg := slices.Contains(tt.args, "--org")
			var got []uuid.UUID
			var last uint64
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				var line struct {
					ID       uuid.UUID `json:"id"`
					Position *uint64   `json:"position"`
					Sequence *uint64   `json:"sequence"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("line %q: %v", sc.Bytes(), err)
				}
				got = append(got, line.ID)
				if oneOrg {
					if line.Position != nil || line.Sequence == nil || *line.Sequence != uint64(len(got)) {
						t.Errorf("line %d of one organization: %s; want sequence %d and no position", len(got), sc.Bytes(), len(got))
					}
					continue
				}
				if line.Position == nil || line.Sequence != nil {
					t.Fatalf("line of the whole log: %s; want a position and no sequence", sc.Bytes())
				}
				if *line.Position <= last {
					t.Errorf("position %d after %d: not in global order", *line.Position, last)
				}
				last = *line.Position
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("replayed events %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAuditReplayFailsOnAnUnreachableStore checks that a configured
// EventStoreDB that does not answer is an error, not a fallback to the
// data directory's log.
func TestAuditReplayFailsOnAnUnreachableStore(t *testing.T) {
	srv, err := esdbtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL()
	srv.Close()
	// The store waits for a server that is not up yet; the deadline ends
	// the wait, and the error must reach the caller.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	args := []string{"audit", "replay", "--data-dir", t.TempDir(), "--eventstore-url", url, "--log-level", "error"}
	var out bytes.Buffer
	if err := run(ctx, args, &out, io.Discard); err == nil {
		t.Fatalf("audit replay on a stopped EventStoreDB succeeded, printing %q", out.Bytes())
	}
}

// appendBots appends n events to one bot stream of org and returns their ids.
func appendBots(t *testing.T, store eventstore.Store, org string, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	var events []eventstore.NewEvent
	for i := 0; i < n; i++ {
		id := eventstore.NewEventID()
		ids = append(ids, id)
		events = append(events, eventstore.NewEvent{
			ID:       id,
			Type:     "BotUpdated",
			Metadata: eventstore.Metadata{OrgID: org, SchemaVersion: 1},
			Data:     json.RawMessage(`{"name":"replayed"}`),
		})
	}
	stream := eventstore.MustStreamName("bot", org, "b1")
	if _, err := store.Append(context.Background(), stream, eventstore.NoStream(), events); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return ids
}

func concat(lists ...[]uuid.UUID) []uuid.UUID { return slices.Concat(lists...) }
