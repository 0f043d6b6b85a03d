package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IdempotencyClaims is the PostgreSQL adapter of the HTTP server's shared
// claims on Idempotency-Keys in flight (httpapi.IdempotencyClaims): one
// row per organization and key hash in idempotency_claims, under the
// organization's row-level security like every tenant table, held by one
// request under a lease measured on the database's clock, so that the
// replicas' clocks need not agree. It is not a read model: the HTTP server
// writes it, each call in a transaction of its own, and the finished
// response is in the event log. Expired claims of an organization are
// swept by its next claim.
type IdempotencyClaims struct{ db *db }

const (
	// sweepClaimsSQL removes a bounded number of the organization's
	// expired claims, so that claims of replicas that died do not pile up.
	sweepClaimsSQL = `DELETE FROM idempotency_claims WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM idempotency_claims WHERE org_id = $1 AND expires_at < now() LIMIT 100))`
	// claimSQL takes the key when it is free, expired or already the
	// holder's (a renewal); otherwise it returns no row and the row that
	// holds the key is left alone.
	claimSQL = `INSERT INTO idempotency_claims (org_id, key_hash, fingerprint, holder, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5 * interval '1 microsecond')
		ON CONFLICT (org_id, key_hash) DO UPDATE
		SET fingerprint = EXCLUDED.fingerprint, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE idempotency_claims.holder = EXCLUDED.holder OR idempotency_claims.expires_at <= now()
		RETURNING true`
	heldClaimSQL    = `SELECT fingerprint FROM idempotency_claims WHERE org_id = $1 AND key_hash = $2 AND expires_at > now()`
	releaseClaimSQL = `DELETE FROM idempotency_claims WHERE org_id = $1 AND key_hash = $2 AND holder = $3`
)

// Claim takes key in orgID for holder until lease ends on the database's
// clock, or extends holder's own claim. When another holder's unexpired
// claim has the key it returns false and the fingerprint of that claim.
func (c *IdempotencyClaims) Claim(ctx context.Context, orgID string, key, fingerprint [32]byte, holder string, lease time.Duration) (bool, [32]byte, error) {
	var held [32]byte
	switch {
	case orgID == "":
		return false, held, errors.New("idempotency claim: empty organization")
	case holder == "":
		return false, held, errors.New("idempotency claim: empty holder")
	case lease <= 0:
		return false, held, fmt.Errorf("idempotency claim: lease %s is not positive", lease)
	}
	// A holder released between the insert and the read of what holds the
	// key leaves nothing to read: the claim is tried again, a few times.
	for range 3 {
		claimed, found := false, false
		err := pgx.BeginFunc(ctx, c.db.pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(setOrgSQL, orgID)
			b.Queue(sweepClaimsSQL, orgID)
			b.Queue(claimSQL, orgID, key[:], fingerprint[:], holder, lease.Microseconds())
			br := tx.SendBatch(ctx, b)
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				return err
			}
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				return err
			}
			err := br.QueryRow().Scan(&claimed)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil // held by another request
			}
			if err := errors.Join(err, br.Close()); err != nil {
				return err
			}
			if claimed {
				return nil
			}
			var fp []byte
			err = tx.QueryRow(ctx, heldClaimSQL, orgID, key[:]).Scan(&fp)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			found = copy(held[:], fp) == len(held)
			return nil
		})
		if err != nil {
			return false, held, fmt.Errorf("idempotency claim: %w", err)
		}
		if claimed || found {
			return claimed, held, nil
		}
	}
	return false, held, errors.New("idempotency claim: the key changed hands three times in a row")
}

// Release removes holder's claim on key; a claim another holder took over
// is left alone.
func (c *IdempotencyClaims) Release(ctx context.Context, orgID string, key [32]byte, holder string) error {
	if orgID == "" {
		return errors.New("release idempotency claim: empty organization")
	}
	err := pgx.BeginFunc(ctx, c.db.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(setOrgSQL, orgID)
		b.Queue(releaseClaimSQL, orgID, key[:], holder)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("release idempotency claim: %w", err)
	}
	return nil
}
