package app_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/identity"
)

// TestOpenStoreOpensTheLogOpenUses runs Palisade on each event store,
// writes through its API, and checks that OpenStore, given the same
// configuration, reads back exactly the log the server wrote.
func TestOpenStoreOpensTheLogOpenUses(t *testing.T) {
	for _, kind := range []string{"embedded", "esdb"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := app.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if kind == "esdb" {
				cfg.EventStoreURL = esdbtest.New(t).URL()
			}
			a, err := app.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("open app: %v", err)
			}
			h := &harness{t: t, app: a, srv: httptest.NewServer(a.Handler()), dataDir: cfg.DataDir}
			t.Cleanup(h.close)
			h.platform = h.mint(identity.Claims{Kind: identity.KindPlatform}, "platform-ops")
			org, owner := h.createOrg("Acme", "alice")
			h.createBot(owner, "Helper")
			want := readLog(t, a.Store)
			if len(want) == 0 {
				t.Fatal("the server's log is empty")
			}

			offline := cfg
			switch kind {
			case "embedded":
				// Same file: the server holds its lock.
				if s, err := app.OpenStore(ctx, offline); !errors.Is(err, embedded.ErrLocked) {
					if err == nil {
						s.Close()
					}
					t.Fatalf("OpenStore while the server runs: %v, want %v", err, embedded.ErrLocked)
				}
			case "esdb":
				// The log is in EventStoreDB: an empty data directory will do,
				// and stays empty.
				offline.DataDir = t.TempDir()
			}
			h.close()

			store, err := app.OpenStore(ctx, offline)
			if err != nil {
				t.Fatalf("OpenStore: %v", err)
			}
			defer store.Close()
			got := readLog(t, store)
			if !slices.Equal(got, want) {
				t.Errorf("OpenStore read %d events %v,\nthe server wrote %d %v", len(got), got, len(want), want)
			}
			orgEvents, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: org}, 1000)
			if err != nil || len(orgEvents) == 0 {
				t.Errorf("OpenStore read %d events of %s (err %v), want some", len(orgEvents), org, err)
			}
			if kind == "esdb" {
				entries, err := os.ReadDir(offline.DataDir)
				if err != nil || len(entries) > 0 {
					t.Errorf("OpenStore on EventStoreDB touched the data directory: %v %v", entries, err)
				}
			}
		})
	}
}

// loggedEvent is what identifies an event in the log.
type loggedEvent struct {
	ID       uuid.UUID
	Position uint64
	Type     string
}

// readLog reads the whole log in global order.
func readLog(t *testing.T, store eventstore.Store) []loggedEvent {
	t.Helper()
	var out []loggedEvent
	var after uint64
	for {
		envs, err := store.ReadAll(context.Background(), after, eventstore.Filter{}, 100)
		if err != nil {
			t.Fatalf("read log: %v", err)
		}
		for _, env := range envs {
			out = append(out, loggedEvent{ID: env.ID, Position: env.Position, Type: env.Type})
			after = env.Position
		}
		if len(envs) < 100 {
			return out
		}
	}
}
