package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

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
