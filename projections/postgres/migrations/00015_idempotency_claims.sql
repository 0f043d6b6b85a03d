-- +goose Up
-- Idempotency-Keys in flight (issue 13): while a replica runs a command
-- sent with an Idempotency-Key it holds the key here, so that the same key
-- sent to another replica is refused (409, or 422 for another request)
-- rather than run twice. A claim is held under a lease its replica renews;
-- one whose replica died ends with its lease and is taken over, or removed
-- by the next claim in its organization. The finished response lives in
-- the event log, not here. Only hashes are kept: key_hash is SHA-256 of
-- the principal and the key, fingerprint SHA-256 of the method, path and
-- body; neither the key nor the body is stored. Not a read model: nothing
-- replays into it, and a reset empties it (claims last seconds).
CREATE TABLE idempotency_claims (
    org_id      text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    key_hash    bytea NOT NULL CHECK (length(key_hash) = 32),
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    holder      text NOT NULL CHECK (holder <> ''),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, key_hash)
);

-- The sweep of expired claims, per organization.
CREATE INDEX idempotency_claims_expiry ON idempotency_claims (org_id, expires_at);

ALTER TABLE idempotency_claims ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_claims FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON idempotency_claims
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
