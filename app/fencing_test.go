package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/app"
)

// TestStaleRelayTermStops plays, against one replica on the shared stack
// (in-test EventStoreDB, PostgreSQL, kfake), what another replica does
// when it is elected for the log relay while this one has not yet noticed
// that it lost the role: it begins a term of its own (the worker's epoch
// moves on in PostgreSQL). This replica's next checkpoint save is refused
// as fenced, its relay stops at once instead of publishing on, and once
// it is elected again it begins a new term and carries on from the
// position the fenced term had saved. PostgreSQL is required
// (PALISADE_TEST_POSTGRES_URL).
func TestStaleRelayTermStops(t *testing.T) {
	const worker = "relay.kafka.log"
	ctx := context.Background()
	dir := t.TempDir()
	owner, appURL, schema := postgresForTest(t, dir)
	logs := &syncBuffer{}
	h := openHarnessWith(t, dir, func(cfg *app.Config) {
		cfg.EventStoreURL = esdbForTest(t, dir)
		cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
		cfg.KafkaBrokers = kafkaForTest(t)
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	conn, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	row := func() (epoch, position int64) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT epoch, position FROM `+schema+`.worker_checkpoints WHERE worker = $1`, worker).Scan(&epoch, &position)
		if err != nil && err != pgx.ErrNoRows {
			t.Fatal(err)
		}
		return epoch, position
	}
	eventually(t, "this replica begins a term of the log relay", func() bool { epoch, _ := row(); return epoch >= 1 })
	h.createOrg("Before", "olivia")
	eventually(t, "the relay saves a position", func() bool { _, pos := row(); return pos > 0 })
	first, _ := row()

	// Another replica's term begins (as postgres.BeginWorkerTerm does).
	if _, err := conn.Exec(ctx, `UPDATE `+schema+`.worker_checkpoints SET epoch = epoch + 1 WHERE worker = $1`, worker); err != nil {
		t.Fatal(err)
	}
	_, fencedAt := row()
	// The relay writes its position through at most every 100 ms: let
	// that pass, so that the next batch's save goes to PostgreSQL.
	time.Sleep(150 * time.Millisecond)
	h.createOrg("During", "olivia") // events for the relay to publish and save
	eventually(t, "the stale term's save is refused and its relay stops", func() bool {
		return strings.Contains(logs.String(), "another replica has taken the worker's role")
	})
	if _, pos := row(); pos != fencedAt {
		t.Fatalf("the fenced term moved the checkpoint from %d to %d", fencedAt, pos)
	}

	// Elected again (the other replica is only simulated), a new term.
	eventually(t, "a new term begins and the relay saves again", func() bool {
		epoch, pos := row()
		return epoch >= first+2 && pos > fencedAt
	})
}
