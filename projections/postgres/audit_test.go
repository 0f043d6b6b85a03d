package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// TestAuditSequenceBackfill migrates a schema up to the version before
// audit sequences, writes interleaved events of two organizations as the
// adapter of that version did, migrates to the latest version, and checks
// that each organization's events are numbered 1, 2, 3 … by position, and
// that the next event added continues from there.
func TestAuditSequenceBackfill(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t) // versions 2 to 6 need the vector extension
	ctx := context.Background()
	schema := newSchemaName()
	t.Cleanup(func() { dropSchema(t, db, schema) })
	const beforeSequences = 6
	if err := migrate(ctx, db.ownerURL, schema, migrateConfig{appRole: db.appRole, target: beforeSequences}); err != nil {
		t.Fatal(err)
	}
	// Row-level security is forced, so the owner writes each row with its
	// organization set, as the application did.
	owner := pool(t, db, db.ownerURL, schema)
	orgs := []string{"org-a", "org-b", "org-b", "org-a", "org-b", "org-a", "org-a"}
	want := map[string][]uint64{} // each organization's positions, in order
	// Inserted out of position order: the numbers follow positions, not
	// the order rows happen to be in.
	for i := len(orgs) - 1; i >= 0; i-- {
		org, position := orgs[i], uint64(10+3*i)
		err := pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, setOrgSQL, org); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO audit_events (org_id, position, id, type, stream_category, stream_org_id,
					stream_entity_id, stream_version, actor_subject, actor_kind, correlation_id, causation_id, trace_id,
					authorization_reason, idempotency_key, schema_version, occurred_at)
				VALUES ($1, $2, gen_random_uuid(), 'BotCreated', 'bot', $1, 'bot-1', 0, 'alice', 'user', '', '', '', '', '', 1, now())`,
				org, int64(position))
			return err
		})
		if err != nil {
			t.Fatalf("insert %s at %d: %v", org, position, err)
		}
	}
	for i, org := range orgs {
		want[org] = append(want[org], uint64(10+3*i))
	}

	if err := Migrate(ctx, db.ownerURL, schema, WithAppRole(db.appRole)); err != nil {
		t.Fatal(err)
	}
	store, err := open(ctx, db.appURL, schema, db.vector)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	for org, positions := range want {
		got, err := store.Audit().Events(ctx, scope(t, org), projections.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(backfilled(got)) != fmt.Sprint(numbered(positions)) {
			t.Errorf("%s after the migration: %v, want %v", org, backfilled(got), numbered(positions))
		}
	}
	// The adapter continues each organization's numbers.
	next := eventstore.Envelope{
		ID: eventstore.NewEventID(), Type: "BotUpdated", Stream: eventstore.MustStreamName("bot", "org-a", "bot-1"), StreamVersion: 1,
		Position: 1000, Data: []byte(`{}`), Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: "alice", Kind: "user"}},
	}
	if err := store.Checkpoints().Advance(ctx, "audit", 1000, func(ctx context.Context) error {
		return store.Audit().Add(ctx, scope(t, "org-a"), next)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Audit().Events(ctx, scope(t, "org-a"), projections.AuditQuery{After: uint64(len(want["org-a"]))})
	if err != nil || len(got) != 1 || got[0].Sequence != uint64(len(want["org-a"])+1) || got[0].Event.ID != next.ID {
		t.Fatalf("the event added after the migration: %v, %v", backfilled(got), err)
	}
}

// backfilled lists the events' sequence and position pairs.
func backfilled(events []projections.AuditEvent) [][2]uint64 {
	out := make([][2]uint64, len(events))
	for i, e := range events {
		out[i] = [2]uint64{e.Sequence, e.Event.Position}
	}
	return out
}

// numbered pairs positions with 1, 2, 3 ….
func numbered(positions []uint64) [][2]uint64 {
	out := make([][2]uint64, len(positions))
	for i, p := range positions {
		out[i] = [2]uint64{uint64(i + 1), p}
	}
	return out
}
