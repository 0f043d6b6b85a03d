package postgres

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func claimKey(s string) [32]byte { return sha256.Sum256([]byte("key:" + s)) }

func claimFingerprint(s string) [32]byte { return sha256.Sum256([]byte("request:" + s)) }

// expire ends every claim of org on key now, as the owner (a lease that
// ran out, without waiting for it).
func (b *bundle) expireClaim(t *testing.T, org string, key [32]byte) {
	t.Helper()
	tx, err := b.owner.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(b.ctx) }()
	if _, err := tx.Exec(b.ctx, setOrgSQL, org); err != nil {
		t.Fatal(err)
	}
	tag, err := tx.Exec(b.ctx, `UPDATE idempotency_claims SET expires_at = now() - interval '1 second' WHERE key_hash = $1`, key[:])
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("expire the claim: %d rows, %v", tag.RowsAffected(), err)
	}
	if err := tx.Commit(b.ctx); err != nil {
		t.Fatal(err)
	}
}

// claimRows counts org's rows of idempotency_claims, as the owner.
func (b *bundle) claimRows(t *testing.T, org string) int {
	t.Helper()
	var n int
	err := inOrg(t, b.ctx, b.owner, org, func(tx pgx.Tx) error {
		return tx.QueryRow(b.ctx, `SELECT count(*) FROM idempotency_claims`).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIdempotencyClaimsOneWinner: many replicas claiming one key at once:
// exactly one gets it, every other is told the winner's fingerprint.
func TestIdempotencyClaimsOneWinner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	claims := b.store.IdempotencyClaims()
	key := claimKey("k")
	const n = 32
	type result struct {
		i       int
		claimed bool
		held    [32]byte
		err     error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			claimed, held, err := claims.Claim(b.ctx, "org-a", key, claimFingerprint(fmt.Sprint(i)), fmt.Sprintf("holder-%d", i), time.Minute)
			results <- result{i, claimed, held, err}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	winner := -1
	var others []result
	for r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("claim %d: %v", r.i, r.err)
		case r.claimed && winner >= 0:
			t.Fatalf("claims %d and %d both won the key", winner, r.i)
		case r.claimed:
			winner = r.i
		default:
			others = append(others, r)
		}
	}
	if winner < 0 {
		t.Fatal("no claim won the key")
	}
	for _, r := range others {
		if r.held != claimFingerprint(fmt.Sprint(winner)) {
			t.Fatalf("claim %d was told another fingerprint than the winner's (%d)", r.i, winner)
		}
	}
	if got := b.claimRows(t, "org-a"); got != 1 {
		t.Fatalf("%d rows after the race, want 1", got)
	}
}

// TestIdempotencyClaimsLease: the holder renews and releases its claim;
// another holder is refused until the claim expires or is released, and a
// late release by the old holder leaves the new claim alone. Expired
// claims of the organization are swept by its next claim.
func TestIdempotencyClaimsLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	claims := b.store.IdempotencyClaims()
	key, fp := claimKey("k"), claimFingerprint("r")

	claim := func(holder string, fp [32]byte) (bool, [32]byte) {
		t.Helper()
		claimed, held, err := claims.Claim(b.ctx, "org-a", key, fp, holder, time.Minute)
		if err != nil {
			t.Fatalf("claim by %s: %v", holder, err)
		}
		return claimed, held
	}
	if ok, _ := claim("h1", fp); !ok {
		t.Fatal("a free key was not claimed")
	}
	if ok, _ := claim("h1", fp); !ok {
		t.Fatal("the holder could not renew its claim")
	}
	if ok, held := claim("h2", claimFingerprint("other")); ok || held != fp {
		t.Fatalf("another holder: claimed %v, held fingerprint matches %v", ok, held == fp)
	}

	b.expireClaim(t, "org-a", key)
	if ok, _ := claim("h2", fp); !ok {
		t.Fatal("an expired claim was not taken over")
	}
	if err := claims.Release(b.ctx, "org-a", key, "h1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := claim("h3", fp); ok {
		t.Fatal("the old holder's late release freed the new holder's claim")
	}
	if err := claims.Release(b.ctx, "org-a", key, "h2"); err != nil {
		t.Fatal(err)
	}
	if got := b.claimRows(t, "org-a"); got != 0 {
		t.Fatalf("%d rows after the release, want 0", got)
	}

	// A dead replica's claim on another key is swept by the next claim.
	dead := claimKey("dead")
	if claimed, _, err := claims.Claim(b.ctx, "org-a", dead, fp, "dead", time.Minute); err != nil || !claimed {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	b.expireClaim(t, "org-a", dead)
	if ok, _ := claim("h4", fp); !ok {
		t.Fatal("a released key was not claimed")
	}
	if got := b.claimRows(t, "org-a"); got != 1 {
		t.Fatalf("%d rows after the sweep, want only the live claim", got)
	}

	for _, bad := range []struct {
		org, holder string
		lease       time.Duration
	}{{"", "h", time.Minute}, {"org-a", "", time.Minute}, {"org-a", "h", 0}} {
		if _, _, err := claims.Claim(b.ctx, bad.org, key, fp, bad.holder, bad.lease); err == nil {
			t.Errorf("claim with org %q, holder %q, lease %s: no error", bad.org, bad.holder, bad.lease)
		}
	}
}

// TestIdempotencyClaimsIsolation: organizations' claims are apart under
// row-level security: the same key hash is claimed in each, and org-b can
// neither see nor release org-a's claim, even naming its holder.
func TestIdempotencyClaimsIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	claims := b.store.IdempotencyClaims()
	key, fp := claimKey("shared"), claimFingerprint("r")
	for _, org := range []string{"org-a", "org-b"} {
		if claimed, _, err := claims.Claim(b.ctx, org, key, fp, "holder-"+org, time.Minute); err != nil || !claimed {
			t.Fatalf("claim in %s: %v, %v", org, claimed, err)
		}
	}
	onlyA := claimKey("only-a")
	if claimed, _, err := claims.Claim(b.ctx, "org-a", onlyA, fp, "holder-org-a", time.Minute); err != nil || !claimed {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	if err := claims.Release(b.ctx, "org-b", onlyA, "holder-org-a"); err != nil {
		t.Fatal(err)
	}
	if err := claims.Release(b.ctx, "org-b", key, "holder-org-a"); err != nil {
		t.Fatal(err)
	}
	if got := b.claimRows(t, "org-a"); got != 2 {
		t.Fatalf("org-a has %d claims after org-b's releases, want 2", got)
	}
	if claimed, _, err := claims.Claim(b.ctx, "org-a", onlyA, claimFingerprint("x"), "someone", time.Minute); err != nil || claimed {
		t.Fatalf("org-a's claim after org-b's release: taken by another holder (%v, %v)", claimed, err)
	}

	// As the application role, with org-b set and no WHERE org_id, org-a's
	// claims are invisible and out of reach.
	app := pool(t, b.db, b.db.appURL, b.schema)
	err := inOrg(t, b.ctx, app, "org-b", func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(b.ctx, `SELECT count(*) FROM idempotency_claims WHERE key_hash = $1`, onlyA[:]).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("org-b sees %d of org-a's claims", n)
		}
		tag, err := tx.Exec(b.ctx, `DELETE FROM idempotency_claims WHERE holder = 'holder-org-a'`)
		if err == nil && tag.RowsAffected() != 0 {
			t.Errorf("org-b deleted %d of org-a's claims", tag.RowsAffected())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
