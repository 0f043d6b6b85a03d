package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
)

func TestClaim(t *testing.T) {
	t.Parallel()
	advance := func(t *testing.T, b *bundle, position uint64) {
		t.Helper()
		err := b.store.Checkpoints().Advance(b.ctx, "bots", position, func(context.Context) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		bound   string // claimed first by this log, at position 0
		reached uint64 // then advanced to this position
		logID   string
		head    uint64
		want    error
	}{
		{name: "empty read models bind to the log", logID: "log-a", head: 7},
		{name: "same log, behind its head", bound: "log-a", reached: 5, logID: "log-a", head: 7},
		{name: "same log, at its head", bound: "log-a", reached: 7, logID: "log-a", head: 7},
		{name: "another log", bound: "log-a", reached: 5, logID: "log-b", head: 70, want: ErrOtherLog},
		{name: "another log, even when empty", bound: "log-a", logID: "log-b", head: 0, want: ErrOtherLog},
		{name: "ahead of the log", bound: "log-a", reached: 9, logID: "log-a", head: 7, want: ErrAheadOfLog},
		{name: "rows without an identity", reached: 3, logID: "log-a", head: 7, want: ErrUnbound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tt.bound != "" {
				if _, err := b.store.Claim(b.ctx, tt.bound, 0); err != nil {
					t.Fatal(err)
				}
			}
			if tt.reached > 0 {
				advance(t, b, tt.reached)
			}
			o, err := b.store.Claim(b.ctx, tt.logID, tt.head)
			if !errors.Is(err, tt.want) || (tt.want != nil && !errors.Is(err, ErrNotThisLog)) {
				t.Fatalf("Claim(%s, %d) = %v, want %v", tt.logID, tt.head, err, tt.want)
			}
			if err != nil {
				return
			}
			if o.LogID != tt.logID || o.Position != tt.reached {
				t.Errorf("Claim = %+v, want log %s at %d", o, tt.logID, tt.reached)
			}
		})
	}
}

func TestResetEmptiesTheReadModelsAndTheirLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.store.Claim(b.ctx, "log-a", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Checkpoints().Advance(b.ctx, "bots", 9, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// The embedding store is a cache, not a read model: a reset keeps it.
	if _, err := b.owner.Exec(b.ctx, `SELECT set_config('palisade.org_id', 'o1', false);
		INSERT INTO embedding_cache (org_id, model, hash, embedding) VALUES ('o1', 'm', 'h', '[1,2,3]')`); err != nil {
		t.Fatal(err)
	}
	cached := 1
	// Nor is the audit chain's record: it is the witness the log is
	// checked against, never rebuilt from it.
	record := b.store.ChainRecord("log-a")
	fence, _, err := record.Claim(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := chain.Head{Seq: 1, Hash: chain.Digest{1}}
	if err := record.Commit(b.ctx, fence, chain.Batch{Position: 3, Heads: map[string]chain.Head{"o1": head},
		Entries: []chain.Entry{{OrgID: "o1", Seq: 1, EventID: uuid.New(), Type: "T", Stream: "s", Hash: head.Hash}}}); err != nil {
		t.Fatal(err)
	}

	if err := Reset(b.ctx, b.db.ownerURL, b.schema); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if _, st, err := record.Claim(b.ctx); err != nil || st.Position != 3 || st.Heads["o1"] != head {
		t.Errorf("the audit chain's record after Reset: %+v, %v; want it kept", st, err)
	}
	if _, _, err := b.store.ChainRecord("log-b").Claim(b.ctx); !errors.Is(err, ErrChainOfAnotherLog) {
		t.Errorf("the record of log-a claimed for log-b: %v, want ErrChainOfAnotherLog", err)
	}
	o, err := b.store.Origin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o != (Origin{}) {
		t.Errorf("after Reset the origin is %+v, want none", o)
	}
	var after int
	if err := b.owner.QueryRow(b.ctx, `SELECT set_config('palisade.org_id', 'o1', false), count(*) FROM embedding_cache GROUP BY 1`).Scan(new(string), &after); err != nil || after != cached {
		t.Errorf("embedding store has %d rows after Reset (%v), want the %d it had", after, err, cached)
	}
	if o, err := b.store.Claim(b.ctx, "log-b", 0); err != nil || o.LogID != "log-b" {
		t.Errorf("after Reset Claim(log-b) = %+v, %v; want it bound", o, err)
	}
}
