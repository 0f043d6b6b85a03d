package chain_test

import (
	"context"
	"encoding/json"
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

type recordingPublisher struct {
	mu   sync.Mutex
	got  []chain.Checkpoint
	fail bool
}

func (p *recordingPublisher) PublishCheckpoint(_ context.Context, c chain.Checkpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return io.ErrClosedPipe
	}
	p.got = append(p.got, c)
	return nil
}

// TestChainerResumesFromItsRecord chains part of a log, stops, and starts
// a new Chainer on the same record: it carries on from where the record
// left off (no event chained twice, the chain continuing from the
// recorded head), checkpoints every Every events of an organization and
// when the interval has passed, and publishes every checkpoint once,
// including those a failed publish left behind.
func TestChainerResumesFromItsRecord(t *testing.T) {
	for _, rb := range recordBackends() {
		t.Run(rb.name, func(t *testing.T) { testChainerResumes(t, rb) })
	}
}

func testChainerResumes(t *testing.T, rb recordBackend) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := embedded.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	org := uuid.NewString()
	appendEvents(t, store, org, "b1", 250)

	rec := rb.open(t)
	record := rec.record
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub := &recordingPublisher{fail: true}
	first := chain.NewChainer(store, record, issuer, pub, logger)
	first.Every, first.Interval = 100, time.Hour
	if n, err := first.CatchUp(ctx); err != nil || n != 250 {
		t.Fatalf("first chainer: %d events, %v", n, err)
	}
	cps, err := record.Checkpoints(ctx, org, 0, 0)
	if err != nil || len(cps) != 2 || cps[0].Seq != 100 || cps[1].Seq != 200 {
		t.Fatalf("checkpoints %+v (%v); want seq 100 and 200 (the interval has not passed)", cps, err)
	}
	if len(pub.got) != 0 {
		t.Fatalf("published %d while the publisher fails", len(pub.got))
	}

	appendEvents(t, store, org, "b2", 30)
	record = rec.reopen(t)
	pub.fail = false
	second := chain.NewChainer(store, record, issuer, pub, logger)
	second.Every, second.Interval = 100, 0 // every step checkpoints what is new
	if n, err := second.CatchUp(ctx); err != nil || n != 30 {
		t.Fatalf("second chainer: %d events, %v; want the 30 new ones only", n, err)
	}
	heads, err := record.Heads(ctx)
	if err != nil || heads[org].Seq != 280 {
		t.Fatalf("head %+v (%v), want seq 280", heads[org], err)
	}
	if cps, err = record.Checkpoints(ctx, org, 0, 0); err != nil || len(cps) != 3 || cps[2].Seq != 280 || cps[2].Head != heads[org].Hash {
		t.Fatalf("checkpoints %+v (%v); want a timed one at the head, seq 280", cps, err)
	}
	var published []uint64
	for _, c := range pub.got {
		published = append(published, c.Seq)
	}
	if len(published) != 3 || published[0] != 100 || published[1] != 200 || published[2] != 280 {
		t.Errorf("published seqs %v, want [100 200 280] once each", published)
	}
	// A step with nothing new neither checkpoints nor publishes again.
	if _, err := second.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if cps, _ := record.Checkpoints(ctx, org, 0, 0); len(cps) != 3 || len(pub.got) != 3 {
		t.Errorf("after an idle step: %d checkpoints, %d published", len(cps), len(pub.got))
	}
	jwks, _ := issuer.JWKS()
	keys, err := chain.KeysFromJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	reports, err := chain.Verify(ctx, store, record, keys, org)
	if err != nil || len(reports) != 1 || !reports[0].OK || reports[0].VerifiedThroughSeq != 280 {
		t.Fatalf("verify after the restart: %+v (%v)", reports, err)
	}
}

// TestCheckpointSignature checks that a published checkpoint verifies
// with the JWKS after a JSON round trip, and that changing any signed
// field, or the key, breaks it.
func TestCheckpointSignature(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, backends()[0], recordBackends()[0])
	cps, err := f.record.Checkpoints(ctx, f.orgA, 0, 1)
	if err != nil || len(cps) != 1 {
		t.Fatal(cps, err)
	}
	b, err := json.Marshal(cps[0])
	if err != nil {
		t.Fatal(err)
	}
	var c chain.Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(f.keys); err != nil {
		t.Fatalf("published checkpoint %s: %v", b, err)
	}
	other, err := identity.LoadOrCreateIssuer(t.TempDir(), "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	otherJWKS, _ := other.JWKS()
	otherKeys, _ := chain.KeysFromJWKS(otherJWKS)
	edits := map[string]func(c *chain.Checkpoint){
		"org":  func(c *chain.Checkpoint) { c.OrgID = f.orgB },
		"seq":  func(c *chain.Checkpoint) { c.Seq++ },
		"head": func(c *chain.Checkpoint) { c.Head[0] ^= 1 },
		"time": func(c *chain.Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		"kid":  func(c *chain.Checkpoint) { c.KeyID = "x" },
	}
	for name, edit := range edits {
		e := c
		edit(&e)
		if err := e.VerifySignature(f.keys); err == nil {
			t.Errorf("checkpoint with its %s edited verifies", name)
		}
	}
	if err := c.VerifySignature(otherKeys); err == nil {
		t.Error("checkpoint verifies with another deployment's key")
	}
}

// FuzzCheckpointJSON feeds arbitrary bytes to the checkpoint decoder: it
// must not panic, and what it accepts must survive a round trip with the
// same canonical form.
func FuzzCheckpointJSON(f *testing.F) {
	f.Add([]byte(`{"org":"o","seq":1,"head":"` + string(make([]byte, 0)) + `0000000000000000000000000000000000000000000000000000000000000000","time":"2024-01-01T00:00:00Z","kid":"k","signature":"AAAA"}`))
	f.Add([]byte(`{"head":"zz"}`))
	f.Add([]byte(`{"signature":"!!"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c chain.Checkpoint
		if err := json.Unmarshal(b, &c); err != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		var back chain.Checkpoint
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("round trip of %s: %v", out, err)
		}
		if string(back.Canonical()) != string(c.Canonical()) || string(back.Signature) != string(c.Signature) {
			t.Fatalf("round trip changed %s into %s", c.Canonical(), back.Canonical())
		}
	})
}
