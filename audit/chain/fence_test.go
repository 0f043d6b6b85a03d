package chain_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/identity"
)

// chainSetup is an embedded log, an issuer and its keys, for the tests of
// several chainers on one record.
type chainSetup struct {
	store  *embedded.Store
	issuer *identity.Issuer
	keys   chain.PublicKeys
	logger *slog.Logger
}

func newChainSetup(t *testing.T) chainSetup {
	t.Helper()
	dir := t.TempDir()
	store, err := embedded.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := issuer.JWKS()
	keys, err := chain.KeysFromJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	return chainSetup{store: store, issuer: issuer, keys: keys, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (s chainSetup) chainer(record chain.RecordWriter, every uint64, interval time.Duration) *chain.Chainer {
	c := chain.NewChainer(s.store, record, s.issuer, nil, s.logger)
	c.Every, c.Interval = every, interval
	return c
}

// TestAStaleClaimWritesNothing: once the record is claimed again, every
// write under the earlier claim fails with ErrFenced and changes nothing,
// and so does a batch that does not continue from the record's position;
// the latest claim writes.
func TestAStaleClaimWritesNothing(t *testing.T) {
	for _, rb := range recordBackends() {
		t.Run(rb.name, func(t *testing.T) {
			ctx := context.Background()
			record := rb.open(t).record
			old, st, err := record.Claim(ctx)
			if err != nil || st.Position != 0 || len(st.Heads) != 0 {
				t.Fatalf("first claim of an empty record: %+v, %v", st, err)
			}
			latest, _, err := record.Claim(ctx)
			if err != nil || latest <= old {
				t.Fatalf("second claim %d after %d, %v", latest, old, err)
			}
			org := uuid.NewString()
			head := chain.Head{Seq: 1, Hash: chain.Digest{1}}
			b := chain.Batch{From: 0, Position: 7, Heads: map[string]chain.Head{org: head},
				Entries: []chain.Entry{{OrgID: org, Seq: 1, EventID: uuid.New(), Type: "T", Stream: "s", Hash: head.Hash}},
				Checkpoints: []chain.StoredCheckpoint{{Position: 7, Checkpoint: chain.Checkpoint{
					OrgID: org, Seq: 1, Head: head.Hash, Time: time.Unix(0, 12345).UTC(), KeyID: "k", Signature: []byte("sig")}}}}
			if err := record.Commit(ctx, old, b); !errors.Is(err, chain.ErrFenced) {
				t.Fatalf("commit under the stale claim: %v, want ErrFenced", err)
			}
			if heads, err := record.Heads(ctx); err != nil || len(heads) != 0 {
				t.Fatalf("heads after a fenced commit: %v, %v", heads, err)
			}
			if err := record.Commit(ctx, latest, chain.Batch{From: 3, Position: 7}); !errors.Is(err, chain.ErrFenced) {
				t.Fatalf("commit of a batch from position 3 on a record at 0: %v, want ErrFenced", err)
			}
			if err := record.Commit(ctx, latest, b); err != nil {
				t.Fatalf("commit under the latest claim: %v", err)
			}
			if err := record.MarkPublished(ctx, old, b.Checkpoints[0].Checkpoint); !errors.Is(err, chain.ErrFenced) {
				t.Fatalf("mark published under the stale claim: %v, want ErrFenced", err)
			}
			if pending, err := record.Unpublished(ctx, 10); err != nil || len(pending) != 1 {
				t.Fatalf("unpublished after a fenced mark: %+v, %v", pending, err)
			}
			if err := record.MarkPublished(ctx, latest, b.Checkpoints[0].Checkpoint); err != nil {
				t.Fatal(err)
			}
			if pending, err := record.Unpublished(ctx, 10); err != nil || len(pending) != 0 {
				t.Fatalf("unpublished after the mark: %+v, %v", pending, err)
			}
			third, st, err := record.Claim(ctx)
			if err != nil || third <= latest || st.Position != 7 || st.Heads[org] != head || st.Checkpointed[org] != 1 {
				t.Fatalf("claim after the commit: %d %+v, %v", third, st, err)
			}
			cps, err := record.Checkpoints(ctx, org, 0, 0)
			if err != nil || len(cps) != 1 || cps[0].Time != b.Checkpoints[0].Time || string(cps[0].Signature) != "sig" {
				t.Fatalf("checkpoints %+v, %v", cps, err)
			}
		})
	}
}

// TestASecondChainerFencesTheFirst: a chainer that started (claimed the
// record) after another takes over; the first one's next step, with new
// events to chain, fails with ErrFenced and writes nothing; the second
// carries on from the record, and the chain verifies without a gap.
func TestASecondChainerFencesTheFirst(t *testing.T) {
	for _, rb := range recordBackends() {
		t.Run(rb.name, func(t *testing.T) {
			ctx := context.Background()
			s := newChainSetup(t)
			record := rb.open(t).record
			org := uuid.NewString()
			appendEvents(t, s.store, org, "b1", 150)
			first := s.chainer(record, 100, time.Hour)
			if n, err := first.CatchUp(ctx); err != nil || n != 150 {
				t.Fatalf("first: %d, %v", n, err)
			}
			appendEvents(t, s.store, org, "b2", 50)
			second := s.chainer(record, 100, time.Hour)
			if n, err := second.CatchUp(ctx); err != nil || n != 50 {
				t.Fatalf("second: %d, %v; want the 50 new events", n, err)
			}
			appendEvents(t, s.store, org, "b3", 30)
			if _, err := first.Step(ctx); !errors.Is(err, chain.ErrFenced) {
				t.Fatalf("first chainer after the second claimed: %v, want ErrFenced", err)
			}
			if heads, err := record.Heads(ctx); err != nil || heads[org].Seq != 200 {
				t.Fatalf("head after the fenced step: %+v, %v; want seq 200", heads[org], err)
			}
			if n, err := second.CatchUp(ctx); err != nil || n != 30 {
				t.Fatalf("second: %d, %v; want 30", n, err)
			}
			reports, err := chain.Verify(ctx, s.store, record, s.keys, org)
			if err != nil || len(reports) != 1 || !reports[0].OK || reports[0].VerifiedThroughSeq != 230 || reports[0].Checkpoints != 2 {
				t.Fatalf("verify: %+v, %v", reports, err)
			}
		})
	}
}

// TestChainersRacingLeaveOneChain runs chainers on one record at once,
// each claiming it anew in turn, while events are appended: every step
// either commits or is fenced off, and the record ends as one chain that
// verifies, with no event missing or chained twice and every checkpoint
// signed once.
func TestChainersRacingLeaveOneChain(t *testing.T) {
	for _, rb := range recordBackends() {
		t.Run(rb.name, func(t *testing.T) {
			ctx := context.Background()
			s := newChainSetup(t)
			record := rb.open(t).record
			orgs := []string{uuid.NewString(), uuid.NewString()}
			const rounds, per = 20, 25
			var wg sync.WaitGroup
			done := make(chan struct{})
			errs := make(chan error, 16)
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						c := s.chainer(record, 7, 0)
						for range 3 {
							if _, err := c.CatchUp(ctx); err != nil {
								if !errors.Is(err, chain.ErrFenced) {
									errs <- err
									return
								}
								break
							}
						}
					}
				}()
			}
			for i := range rounds {
				appendEvents(t, s.store, orgs[i%2], fmt.Sprintf("b%d", i), per)
				time.Sleep(5 * time.Millisecond)
			}
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a racing chainer: %v", err)
			}
			if _, err := s.chainer(record, 7, 0).CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			reports, err := chain.Verify(ctx, s.store, record, s.keys, "")
			if err != nil || len(reports) != 2 {
				t.Fatalf("verify: %+v, %v", reports, err)
			}
			for _, r := range reports {
				if !r.OK || r.Pending != 0 || r.VerifiedThroughSeq != rounds/2*per || r.Events != rounds/2*per {
					t.Errorf("report of %s: %+v", r.OrgID, r)
				}
				cps, err := record.Checkpoints(ctx, r.OrgID, 0, 0)
				if err != nil || len(cps) < rounds/2*per/7 {
					t.Fatalf("checkpoints of %s: %d, %v", r.OrgID, len(cps), err)
				}
				for i := 1; i < len(cps); i++ {
					if cps[i].Seq <= cps[i-1].Seq {
						t.Errorf("checkpoints of %s out of order at %d: %d after %d", r.OrgID, i, cps[i].Seq, cps[i-1].Seq)
					}
				}
			}
		})
	}
}
