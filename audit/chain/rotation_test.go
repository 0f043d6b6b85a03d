package chain_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/identity"
)

// TestCheckpointsAcrossAKeyRotation: a chain checkpointed under one key,
// then (after the issuer's signing key changed) under another, verifies
// with the JWKS of a set holding both, each checkpoint by its own kid.
// With the old key gone from the set, its checkpoints are findings.
func TestCheckpointsAcrossAKeyRotation(t *testing.T) {
	for _, rb := range recordBackends() {
		t.Run(rb.name, func(t *testing.T) { testKeyRotation(t, rb) })
	}
}

func testKeyRotation(t *testing.T, rb recordBackend) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := embedded.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	record := rb.open(t).record
	oldKey, _ := identity.GenerateIssuerKey()
	newKey, _ := identity.GenerateIssuerKey()
	issuer := func(keys []identity.IssuerKey, kid string) *identity.Issuer {
		t.Helper()
		iss, err := identity.NewIssuer(keys, kid, "palisade", "palisade")
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	before := issuer([]identity.IssuerKey{oldKey}, "")
	switched := issuer([]identity.IssuerKey{oldKey, newKey}, newKey.KeyID)
	after := issuer([]identity.IssuerKey{newKey}, "")

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	org := uuid.NewString()
	for i, iss := range []*identity.Issuer{before, switched} {
		appendEvents(t, store, org, "b"+string(rune('1'+i)), 150)
		c := chain.NewChainer(store, record, iss, nil, logger)
		c.Every, c.Interval = 100, time.Hour
		if _, err := c.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := record.Checkpoints(ctx, org, 0, 0)
	if err != nil || len(cps) != 3 {
		t.Fatalf("checkpoints %+v (%v), want 3 (seq 100, 200, 300)", cps, err)
	}
	if cps[0].KeyID != oldKey.KeyID || cps[2].KeyID != newKey.KeyID {
		t.Fatalf("checkpoint kids %s … %s, want %s … %s", cps[0].KeyID, cps[2].KeyID, oldKey.KeyID, newKey.KeyID)
	}
	verify := func(iss *identity.Issuer) chain.Report {
		t.Helper()
		jwks, _ := iss.JWKS()
		keys, err := chain.KeysFromJWKS(jwks)
		if err != nil {
			t.Fatal(err)
		}
		reports, err := chain.Verify(ctx, store, record, keys, org)
		if err != nil || len(reports) != 1 {
			t.Fatalf("verify: %+v (%v)", reports, err)
		}
		return reports[0]
	}
	if r := verify(switched); !r.OK || r.Checkpoints != 3 || r.VerifiedThroughSeq != 300 {
		t.Fatalf("verify with both keys: %+v", r)
	}
	if r := verify(after); r.OK {
		t.Fatalf("verify without the old key: %+v, want the old key's checkpoints as findings", r)
	}
}
