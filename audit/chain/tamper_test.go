package chain_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/esdb"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/identity"
)

// tamperer edits a log behind its store's back, as an operator with
// access to the database's files could.
type tamperer interface {
	// alter changes one byte of the event's data.
	alter(t *testing.T, id uuid.UUID)
	remove(t *testing.T, id uuid.UUID)
	// swap exchanges the places of two events in the log.
	swap(t *testing.T, a, b uuid.UUID)
	// insert puts a new event right after after in the log and returns
	// its id.
	insert(t *testing.T, after uuid.UUID) uuid.UUID
	// log is the store to verify, reopened after the edits if need be.
	log(t *testing.T) chain.Log
}

// backend opens a fresh, empty log of one adapter.
type backend struct {
	name string
	open func(t *testing.T) (eventstore.Store, tamperer)
}

func backends() []backend {
	return []backend{
		{"embedded", openEmbedded},
		{"esdb", openESDB},
	}
}

// embeddedTamperer edits the SQLite file with database/sql while the
// store is closed.
type embeddedTamperer struct {
	path  string
	store *embedded.Store
}

func openEmbedded(t *testing.T) (eventstore.Store, tamperer) {
	path := filepath.Join(t.TempDir(), "events.db")
	store, err := embedded.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	e := &embeddedTamperer{path: path, store: store}
	t.Cleanup(func() { e.store.Close() })
	return store, e
}

func (e *embeddedTamperer) edit(t *testing.T, f func(tx *sql.Tx) error) {
	t.Helper()
	if e.store != nil {
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}
		e.store = nil
	}
	db, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		t.Fatalf("tamper with %s: %v", e.path, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (e *embeddedTamperer) position(tx *sql.Tx, id uuid.UUID) (int64, error) {
	var p int64
	err := tx.QueryRow(`SELECT position FROM events WHERE id = ?`, id[:]).Scan(&p)
	return p, err
}

func (e *embeddedTamperer) alter(t *testing.T, id uuid.UUID) {
	e.edit(t, func(tx *sql.Tx) error {
		var data []byte
		if err := tx.QueryRow(`SELECT data FROM events WHERE id = ?`, id[:]).Scan(&data); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE events SET data = ? WHERE id = ?`, flipByte(t, data), id[:])
		return err
	})
}

func (e *embeddedTamperer) remove(t *testing.T, id uuid.UUID) {
	e.edit(t, func(tx *sql.Tx) error {
		res, err := tx.Exec(`DELETE FROM events WHERE id = ?`, id[:])
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("deleted %d rows", n)
		}
		return nil
	})
}

func (e *embeddedTamperer) swap(t *testing.T, a, b uuid.UUID) {
	e.edit(t, func(tx *sql.Tx) error {
		pa, err := e.position(tx, a)
		if err != nil {
			return err
		}
		pb, err := e.position(tx, b)
		if err != nil {
			return err
		}
		for _, q := range [][2]int64{{pa, -1}, {pb, pa}, {-1, pb}} {
			if _, err := tx.Exec(`UPDATE events SET position = ? WHERE position = ?`, q[1], q[0]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *embeddedTamperer) insert(t *testing.T, after uuid.UUID) uuid.UUID {
	id := uuid.New()
	e.edit(t, func(tx *sql.Tx) error {
		p, err := e.position(tx, after)
		if err != nil {
			return err
		}
		// Make room: every later event moves one place on.
		if _, err := tx.Exec(`UPDATE events SET position = -position WHERE position > ?`, p); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE events SET position = 1 - position WHERE position < 0`); err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO events (position, id, stream, version, category, org_id, type, occurred_at, metadata, data)
			SELECT position + 1, ?, stream || 'x', 0, category, org_id, type, occurred_at, metadata, data FROM events WHERE position = ?`, id[:], p)
		return err
	})
	return id
}

func (e *embeddedTamperer) log(t *testing.T) chain.Log {
	if e.store == nil {
		store, err := embedded.Open(context.Background(), e.path)
		if err != nil {
			t.Fatalf("reopen the tampered log: %v", err)
		}
		e.store = store
	}
	return e.store
}

// esdbTamperer rewrites the in-test KurrentDB's log: the real server
// offers no way to change an event, so this plays someone editing its
// chunk files offline.
type esdbTamperer struct {
	srv   *esdbtest.Server
	store *esdb.Store
}

func openESDB(t *testing.T) (eventstore.Store, tamperer) {
	srv := esdbtest.New(t)
	store, err := esdb.Open(context.Background(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, &esdbTamperer{srv: srv, store: store}
}

func (e *esdbTamperer) rewrite(t *testing.T, f func([]esdbtest.StoredEvent) []esdbtest.StoredEvent) {
	e.srv.RewriteLog(f)
}

func indexOf(t *testing.T, events []esdbtest.StoredEvent, id uuid.UUID) int {
	i := slices.IndexFunc(events, func(e esdbtest.StoredEvent) bool { return e.ID == id })
	if i < 0 {
		t.Fatalf("event %s not in the log", id)
	}
	return i
}

func (e *esdbTamperer) alter(t *testing.T, id uuid.UUID) {
	e.rewrite(t, func(events []esdbtest.StoredEvent) []esdbtest.StoredEvent {
		i := indexOf(t, events, id)
		events[i].Data = flipByte(t, events[i].Data)
		return events
	})
}

func (e *esdbTamperer) remove(t *testing.T, id uuid.UUID) {
	e.rewrite(t, func(events []esdbtest.StoredEvent) []esdbtest.StoredEvent {
		return slices.Delete(events, indexOf(t, events, id), indexOf(t, events, id)+1)
	})
}

func (e *esdbTamperer) swap(t *testing.T, a, b uuid.UUID) {
	e.rewrite(t, func(events []esdbtest.StoredEvent) []esdbtest.StoredEvent {
		i, j := indexOf(t, events, a), indexOf(t, events, b)
		events[i], events[j] = events[j], events[i]
		return events
	})
}

func (e *esdbTamperer) insert(t *testing.T, after uuid.UUID) uuid.UUID {
	id := uuid.New()
	e.rewrite(t, func(events []esdbtest.StoredEvent) []esdbtest.StoredEvent {
		i := indexOf(t, events, after)
		ins := events[i]
		ins.ID, ins.Stream, ins.Revision = id, ins.Stream+"x", 0
		return slices.Insert(events, i+1, ins)
	})
	return id
}

func (e *esdbTamperer) log(*testing.T) chain.Log { return e.store }

// flipByte changes one byte of an event's JSON data, keeping it JSON.
func flipByte(t *testing.T, data []byte) []byte {
	i := bytes.Index(data, []byte("bot"))
	if i < 0 {
		t.Fatalf("data %s has no byte to flip", data)
	}
	out := bytes.Clone(data)
	out[i+2] = 'u'
	return out
}

// fixture is a chained log of two organizations: A with 450 events,
// checkpointed every 100 and at its head, and B with 90.
type fixture struct {
	store      eventstore.Store
	tamper     tamperer
	record     chainRecord
	rec        *openRecord
	keys       chain.PublicKeys
	orgA, orgB string
	idsA, idsB []uuid.UUID // in log order: idsA[i] is A's seq i+1
}

func newFixture(t *testing.T, b backend, rb recordBackend) *fixture {
	t.Helper()
	ctx := context.Background()
	store, tamper := b.open(t)
	f := &fixture{store: store, tamper: tamper, orgA: uuid.NewString(), orgB: uuid.NewString()}
	for round := 0; round < 9; round++ {
		f.idsA = append(f.idsA, appendEvents(t, store, f.orgA, fmt.Sprintf("b%d", round), 50)...)
		f.idsB = append(f.idsB, appendEvents(t, store, f.orgB, fmt.Sprintf("b%d", round), 10)...)
	}
	dir := t.TempDir()
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoints verify with the published JWKS, not with the issuer.
	if f.keys, err = chain.KeysFromJWKS(jwks); err != nil {
		t.Fatal(err)
	}
	f.rec = rb.open(t)
	f.record = f.rec.record
	chainer := chain.NewChainer(store, f.record, issuer, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	chainer.Every, chainer.Interval = 100, 0
	if n, err := chainer.CatchUp(ctx); err != nil || n != 540 {
		t.Fatalf("chained %d events (%v), want 540", n, err)
	}
	return f
}

// appendEvents appends n events to one bot stream of org and returns
// their ids.
func appendEvents(t *testing.T, store eventstore.Store, org, bot string, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	var events []eventstore.NewEvent
	for i := 0; i < n; i++ {
		id := eventstore.NewEventID()
		ids = append(ids, id)
		events = append(events, eventstore.NewEvent{
			ID:   id,
			Type: "BotUpdated",
			Metadata: eventstore.Metadata{OrgID: org, SchemaVersion: 1, CorrelationID: uuid.NewString(),
				Actor: eventstore.Actor{Subject: "user-1", Kind: "user", Roles: []string{"owner"}}},
			Data: json.RawMessage(fmt.Sprintf(`{"name":"bot %s","n":%d}`, bot, i)),
		})
	}
	stream := eventstore.MustStreamName("bot", org, bot)
	if _, err := store.Append(context.Background(), stream, eventstore.NoStream(), events); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return ids
}

func (f *fixture) verify(t *testing.T) map[string]chain.Report {
	t.Helper()
	reports, err := chain.Verify(context.Background(), f.tamper.log(t), f.record, f.keys, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]chain.Report{}
	for _, r := range reports {
		out[r.OrgID] = r
	}
	if len(out) != 2 {
		t.Fatalf("reports of %d organizations, want 2: %+v", len(out), reports)
	}
	// Reading the log in many small ranges at once (on the embedded
	// store) gives the same reports as the default ranges.
	for _, perRange := range []uint64{1, 7, 64} {
		small, err := chain.VerifyInRanges(context.Background(), f.tamper.log(t), f.record, f.keys, "", perRange)
		if err != nil {
			t.Fatal(err)
		}
		if len(small) != len(reports) {
			t.Fatalf("ranges of %d events: %d reports, want %d", perRange, len(small), len(reports))
		}
		for i := range small {
			if !equalReports(small[i], reports[i]) {
				t.Errorf("ranges of %d events: %+v\nwant %+v", perRange, small[i], reports[i])
			}
		}
	}
	// Verifying one organization gives the same report as the whole log.
	for org, want := range out {
		one, err := chain.Verify(context.Background(), f.tamper.log(t), f.record, f.keys, org)
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != 1 || !equalReports(one[0], want) {
			t.Errorf("verify of %s alone: %+v\nof the whole log: %+v", org, one, want)
		}
	}
	return out
}

func equalReports(a, b chain.Report) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestVerifyFindsTampering tampers with a chained log in each way an
// operator could, on each adapter, and checks that verification names
// the first event concerned, what happened to it and the checkpoint it
// contradicts, while the other organization still verifies clean.
func TestVerifyFindsTampering(t *testing.T) {
	type want struct {
		kind          string
		event         func(f *fixture, inserted uuid.UUID) []uuid.UUID // any of these
		seq           []uint64
		checkpointSeq uint64
		through       uint64
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *fixture) uuid.UUID
		want   *want // nil: clean
	}{
		{name: "untouched", tamper: func(*testing.T, *fixture) uuid.UUID { return uuid.Nil }},
		{
			name:   "one byte of data changed",
			tamper: func(t *testing.T, f *fixture) uuid.UUID { f.tamper.alter(t, f.idsA[149]); return uuid.Nil },
			want: &want{kind: chain.KindAltered, seq: []uint64{150}, checkpointSeq: 200, through: 149,
				event: func(f *fixture, _ uuid.UUID) []uuid.UUID { return []uuid.UUID{f.idsA[149]} }},
		},
		{
			name:   "an event deleted",
			tamper: func(t *testing.T, f *fixture) uuid.UUID { f.tamper.remove(t, f.idsA[249]); return uuid.Nil },
			want: &want{kind: chain.KindRemoved, seq: []uint64{250}, checkpointSeq: 300, through: 249,
				event: func(f *fixture, _ uuid.UUID) []uuid.UUID { return []uuid.UUID{f.idsA[249]} }},
		},
		{
			name:   "the last event deleted",
			tamper: func(t *testing.T, f *fixture) uuid.UUID { f.tamper.remove(t, f.idsA[449]); return uuid.Nil },
			want: &want{kind: chain.KindRemoved, seq: []uint64{450}, checkpointSeq: 450, through: 449,
				event: func(f *fixture, _ uuid.UUID) []uuid.UUID { return []uuid.UUID{f.idsA[449]} }},
		},
		{
			name:   "two events swapped",
			tamper: func(t *testing.T, f *fixture) uuid.UUID { f.tamper.swap(t, f.idsA[309], f.idsA[319]); return uuid.Nil },
			want: &want{kind: chain.KindReordered, seq: []uint64{310, 320}, checkpointSeq: 400, through: 309,
				event: func(f *fixture, _ uuid.UUID) []uuid.UUID { return []uuid.UUID{f.idsA[309], f.idsA[319]} }},
		},
		{
			name:   "an event inserted",
			tamper: func(t *testing.T, f *fixture) uuid.UUID { return f.tamper.insert(t, f.idsA[419]) },
			want: &want{kind: chain.KindInserted, seq: []uint64{421}, checkpointSeq: 450, through: 420,
				event: func(_ *fixture, inserted uuid.UUID) []uuid.UUID { return []uuid.UUID{inserted} }},
		},
	}
	for _, b := range backends() {
		for _, rb := range recordBackends() {
			for _, tt := range tests {
				t.Run(b.name+"/"+rb.name+"/"+tt.name, func(t *testing.T) {
					f := newFixture(t, b, rb)
					inserted := tt.tamper(t, f)
					reports := f.verify(t)
					if r := reports[f.orgB]; !r.OK || r.VerifiedThroughSeq != 90 || len(r.Findings) != 0 {
						t.Errorf("untouched organization B: %+v", r)
					}
					r := reports[f.orgA]
					if r.Checkpoints != 5 {
						t.Errorf("A: %d checkpoints checked, want 5 (100 … 400 and the head)", r.Checkpoints)
					}
					if tt.want == nil {
						if !r.OK || r.VerifiedThroughSeq != 450 || r.Events != 450 || len(r.Findings) != 0 {
							t.Errorf("untouched A: %+v", r)
						}
						return
					}
					if r.OK || len(r.Findings) != 1 {
						t.Fatalf("A: ok %v, findings %+v; want one finding", r.OK, r.Findings)
					}
					got := r.Findings[0]
					ids := tt.want.event(f, inserted)
					if got.Kind != tt.want.kind || !slices.Contains(ids, uuid.MustParse(got.EventID)) ||
						!slices.Contains(tt.want.seq, got.Seq) || got.CheckpointSeq != tt.want.checkpointSeq ||
						got.Type != "BotUpdated" || got.Stream == "" || got.Detail == "" {
						t.Errorf("finding %+v; want kind %s, an event of %v at seq %v, checkpoint %d",
							got, tt.want.kind, ids, tt.want.seq, tt.want.checkpointSeq)
					}
					if r.VerifiedThroughSeq != tt.want.through {
						t.Errorf("verified through seq %d, want %d", r.VerifiedThroughSeq, tt.want.through)
					}
				})
			}
		}
	}
}

// TestVerifyCatchesARewrittenRecord plays a forger who alters an event
// and rewrites the record to match the altered log (recomputing every
// hash after it), and one who edits a checkpoint's signature: the signed
// heads catch both.
func TestVerifyCatchesARewrittenRecord(t *testing.T) {
	ctx := context.Background()
	for _, rb := range recordBackends() {
		for _, b := range backends() {
			t.Run(b.name+"/"+rb.name+"/record rewritten to match", func(t *testing.T) {
				f := newFixture(t, b, rb)
				f.tamper.alter(t, f.idsA[149])
				envs, err := f.tamper.log(t).ReadAll(ctx, 0, eventstore.Filter{OrgID: f.orgA}, -1)
				if err != nil {
					t.Fatal(err)
				}
				var prev chain.Digest
				for i, env := range envs {
					if prev, err = chain.Hash(prev, uint64(i+1), env); err != nil {
						t.Fatal(err)
					}
					f.rec.setHash(t, f.orgA, uint64(i+1), prev[:])
				}
				r := f.verify(t)[f.orgA]
				if r.OK || len(r.Findings) != 1 {
					t.Fatalf("findings %+v; want one", r.Findings)
				}
				got := r.Findings[0]
				if got.Kind != chain.KindRecordRewritten || got.CheckpointSeq != 200 || got.Seq != 200 || got.EventID != f.idsA[199].String() {
					t.Errorf("finding %+v; want the record rewritten, caught by checkpoint 200", got)
				}
			})
		}
		t.Run(rb.name+"/a checkpoint's signature edited", func(t *testing.T) {
			f := newFixture(t, backends()[0], rb)
			f.rec.setSignature(t, f.orgA, 300, bytes.Repeat([]byte{7}, 64))
			r := f.verify(t)[f.orgA]
			if r.OK || len(r.Findings) != 1 || r.Findings[0].Kind != chain.KindBadSignature || r.Findings[0].CheckpointSeq != 300 {
				t.Errorf("report %+v; want one bad signature at checkpoint 300", r)
			}
		})
		t.Run(rb.name+"/a recorded event deleted from the record", func(t *testing.T) {
			f := newFixture(t, backends()[0], rb)
			f.rec.deleteEntry(t, f.orgA, 120)
			r := f.verify(t)[f.orgA]
			if r.OK || r.Findings[0].Kind != chain.KindRecordRewritten || r.Findings[0].Seq != 121 {
				t.Errorf("report %+v; want the record's gap at seq 121 first", r)
			}
		})
	}
}

func openRecordFile(t *testing.T, path string) *sql.DB {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
