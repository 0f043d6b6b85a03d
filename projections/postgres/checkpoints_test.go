package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

func TestCheckpointsAdvanceAtomically(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	cp := b.store.Checkpoints()
	a, other := scope(t, "org-a"), scope(t, "org-b")
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	writeBoth := func(ctx context.Context) error {
		if err := b.store.Bots().PutBot(ctx, a, projections.Bot{ID: "bot-1", Name: "b", CreatedAt: at, UpdatedAt: at}); err != nil {
			return err
		}
		return b.store.Tenancy().PutMember(ctx, other, projections.Member{Sub: "bob", AddedAt: at, UpdatedAt: at})
	}
	nothingWritten := func(t *testing.T, when string) {
		t.Helper()
		if pos, err := cp.Position(ctx, "bots"); err != nil || pos != 0 {
			t.Fatalf("%s: checkpoint %d, %v; want 0", when, pos, err)
		}
		if _, err := b.store.Bots().Bot(ctx, a, "bot-1"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("%s: the bot is there: %v", when, err)
		}
		if _, err := b.store.Tenancy().Member(ctx, other, "", "bob"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("%s: the member is there: %v", when, err)
		}
	}

	nothingWritten(t, "at the start")

	boom := errors.New("boom")
	err := cp.Advance(ctx, "bots", 10, func(ctx context.Context) error {
		if err := writeBoth(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Advance = %v, want the apply error", err)
	}
	nothingWritten(t, "after an apply error")

	// A refused write fails the unit, whatever was written before it.
	err = cp.Advance(ctx, "bots", 10, func(ctx context.Context) error {
		if err := writeBoth(ctx); err != nil {
			return err
		}
		return b.store.Audit().Add(ctx, a, eventstore.Envelope{Position: 10, Metadata: eventstore.Metadata{OrgID: "org-b"}})
	})
	if !errors.Is(err, eventstore.ErrOrgMismatch) {
		t.Fatalf("Advance = %v, want ErrOrgMismatch", err)
	}
	nothingWritten(t, "after a refused write")

	// A failing statement, too.
	err = cp.Advance(ctx, "bots", 10, func(ctx context.Context) error {
		if err := writeBoth(ctx); err != nil {
			return err
		}
		return b.store.Tenancy().PutMember(ctx, a, projections.Member{Sub: "carol\x00"})
	})
	if err == nil {
		t.Fatal("Advance with an invalid statement succeeded")
	}
	nothingWritten(t, "after a failing statement")

	if err := cp.Advance(ctx, "bots", 10, writeBoth); err != nil {
		t.Fatal(err)
	}
	if pos, err := cp.Position(ctx, "bots"); err != nil || pos != 10 {
		t.Fatalf("checkpoint = %d, %v; want 10", pos, err)
	}
	if _, err := b.store.Bots().Bot(ctx, a, "bot-1"); err != nil {
		t.Fatalf("bot after a successful unit: %v", err)
	}
	if _, err := b.store.Tenancy().Member(ctx, other, "", "bob"); err != nil {
		t.Fatalf("member after a successful unit: %v", err)
	}

	// A checkpoint never moves back, and projections are independent.
	if err := cp.Advance(ctx, "bots", 5, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if pos, _ := cp.Position(ctx, "bots"); pos != 10 {
		t.Fatalf("checkpoint after an older unit = %d, want 10", pos)
	}
	if pos, err := cp.Position(ctx, "tenancy"); err != nil || pos != 0 {
		t.Fatalf("another projection's checkpoint = %d, %v", pos, err)
	}

	// A cancelled context rolls the unit back.
	cctx, cancel := context.WithCancel(ctx)
	err = cp.Advance(cctx, "tenancy", 20, func(ctx context.Context) error {
		if err := b.store.Bots().PutBot(ctx, a, projections.Bot{ID: "bot-2", CreatedAt: at, UpdatedAt: at}); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if err == nil {
		t.Fatal("Advance with a cancelled context succeeded")
	}
	if pos, _ := cp.Position(ctx, "tenancy"); pos != 0 {
		t.Fatalf("checkpoint after a cancelled unit = %d", pos)
	}
	if _, err := b.store.Bots().Bot(ctx, a, "bot-2"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("bot of a cancelled unit: %v", err)
	}
}

// TestCheckpointsApplyEachEventOnceAcrossReplicas: replicas share the
// read models and each runs the projections. Three writers advancing the
// same projection through the same positions at once apply each position
// exactly once between them; a batch that overlaps positions another
// replica applied learns how far that one got and skips those.
func TestCheckpointsApplyEachEventOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const positions = 150
	var mu sync.Mutex
	applied := map[uint64]int{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := b.store.Checkpoints()
			for pos := uint64(1); pos <= positions; pos++ {
				err := cp.Advance(b.ctx, "shared", pos, func(ctx context.Context) error {
					mu.Lock()
					applied[pos]++
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for pos := uint64(1); pos <= positions; pos++ {
		if applied[pos] != 1 {
			t.Fatalf("position %d applied %d times, want once", pos, applied[pos])
		}
	}

	// A batch 141..200 after positions up to 150 were applied: it runs,
	// and is told 150 so it applies 151..200 only.
	var through uint64
	err := b.store.Checkpoints().Advance(b.ctx, "shared", 200, func(ctx context.Context) error {
		through = consumer.AppliedThrough(ctx)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if through != positions {
		t.Fatalf("the overlapping batch was told %d was applied, want %d", through, positions)
	}
	if pos, err := b.store.Checkpoints().Position(b.ctx, "shared"); err != nil || pos != 200 {
		t.Fatalf("checkpoint %d, %v; want 200", pos, err)
	}
}

// TestWorkerCheckpointBelongsToItsLog: a worker's position is shared by
// every replica, never moves back, and is none in another log.
func TestWorkerCheckpointBelongsToItsLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a1, a2 := b.store.WorkerCheckpoint("log-a", "relay"), b.store.WorkerCheckpoint("log-a", "relay")
	if pos, err := a1.Load(b.ctx); err != nil || pos != 0 {
		t.Fatalf("fresh checkpoint %d, %v; want 0", pos, err)
	}
	if err := a1.Save(b.ctx, 40); err != nil {
		t.Fatal(err)
	}
	if pos, err := a2.Load(b.ctx); err != nil || pos != 40 {
		t.Fatalf("another replica loads %d, %v; want 40", pos, err)
	}
	// A late save of an older position (a holder that lost the role).
	if err := a2.Save(b.ctx, 30); err != nil {
		t.Fatal(err)
	}
	if pos, _ := a1.Load(b.ctx); pos != 40 {
		t.Fatalf("after a late save of 30 the checkpoint is %d, want 40", pos)
	}
	other := b.store.WorkerCheckpoint("log-b", "relay")
	if pos, err := other.Load(b.ctx); err != nil || pos != 0 {
		t.Fatalf("another log loads %d, %v; want 0", pos, err)
	}
	if err := other.Save(b.ctx, 5); err != nil {
		t.Fatal(err)
	}
	if pos, _ := other.Load(b.ctx); pos != 5 {
		t.Fatalf("another log's first save: %d, want 5", pos)
	}
	if pos, _ := a1.Load(b.ctx); pos != 0 {
		t.Fatalf("the first log's position after the other log's save: %d, want 0 (replaced)", pos)
	}
	// A rebuild keeps it.
	if err := Reset(b.ctx, b.db.ownerURL, b.schema); err != nil {
		t.Fatal(err)
	}
	if pos, _ := other.Load(b.ctx); pos != 5 {
		t.Fatalf("after a rebuild the checkpoint is %d, want 5", pos)
	}
}

// TestWorkerTermsFenceStaleHolders plays two replicas taking one worker's
// role in turn on one database: A holds it and saves, then B is elected
// while A has not noticed it lost the role. A's next save is refused
// (ErrFenced), even of a position ahead of B's, and B's saves go on; a
// third term fences B in turn. A save outside any term is refused.
func TestWorkerTermsFenceStaleHolders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	begin := func() uint64 {
		t.Helper()
		epoch, err := b.store.BeginWorkerTerm(b.ctx, "log-a", "process.ingestion")
		if err != nil {
			t.Fatal(err)
		}
		return epoch
	}
	position := func() uint64 {
		t.Helper()
		pos, err := b.store.WorkerCheckpoint("log-a", "process.ingestion").Load(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	termA := begin()
	a := b.store.FencedWorkerCheckpoint("log-a", "process.ingestion", termA)
	if pos, err := a.Load(b.ctx); err != nil || pos != 0 {
		t.Fatalf("a fresh worker loads %d, %v; want 0", pos, err)
	}
	if err := a.Save(b.ctx, 40); err != nil {
		t.Fatalf("the holder's save: %v", err)
	}

	termB := begin()
	if termB <= termA {
		t.Fatalf("the second term's epoch %d is not after the first's %d", termB, termA)
	}
	nb := b.store.FencedWorkerCheckpoint("log-a", "process.ingestion", termB)
	if pos, err := nb.Load(b.ctx); err != nil || pos != 40 {
		t.Fatalf("the new holder loads %d, %v; want 40, the last save of the term before", pos, err)
	}
	for _, stale := range []uint64{41, 500} {
		if err := a.Save(b.ctx, stale); !errors.Is(err, ErrFenced) {
			t.Fatalf("the stale holder's save of %d: %v; want ErrFenced", stale, err)
		}
	}
	if pos := position(); pos != 40 {
		t.Fatalf("after the stale holder's saves the position is %d, want 40", pos)
	}
	if err := nb.Save(b.ctx, 45); err != nil {
		t.Fatalf("the new holder's save: %v", err)
	}
	if pos := position(); pos != 45 {
		t.Fatalf("after the new holder's save the position is %d, want 45", pos)
	}

	begin()
	if err := nb.Save(b.ctx, 46); !errors.Is(err, ErrFenced) {
		t.Fatalf("a save of the second term after a third began: %v; want ErrFenced", err)
	}
	if err := b.store.FencedWorkerCheckpoint("log-a", "process.ingestion", 0).Save(b.ctx, 50); !errors.Is(err, ErrFenced) {
		t.Fatalf("a save outside any term: %v; want ErrFenced", err)
	}
	// Other workers have terms of their own.
	other, err := b.store.BeginWorkerTerm(b.ctx, "log-a", "relay.log")
	if err != nil || other != 1 {
		t.Fatalf("another worker's first term: %d, %v; want 1", other, err)
	}
}
