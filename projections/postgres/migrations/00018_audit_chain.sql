-- +goose Up
-- The audit chain's record (package audit/chain), shared by every replica
-- of a deployment (issue 13): one chainer, on the replica elected for it,
-- writes it; every replica answers GET /v1/audit/verify and
-- /v1/audit/checkpoints from it. It is the witness the log is checked
-- against, not a read model: nothing replays into it, and a read-model
-- reset keeps it (a rebuild that recomputed it from the log would bless
-- tampering).
--
-- audit_chain and audit_chain_heads are the chainer's own bookkeeping
-- across organizations (no org_id column, no row-level security: the
-- chainer resumes every organization's chain at once). What the audit API
-- serves per organization, the recorded events and the signed
-- checkpoints, are tenant tables under the org policy like every other.

-- Where the chain is: the log it belongs to, how far in it the record
-- reaches, and the latest chainer's claim (the fence: a chainer writes
-- only while its claim is the latest).
CREATE TABLE audit_chain (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    log_id    text NOT NULL CHECK (log_id <> ''),
    position  bigint NOT NULL CHECK (position >= 0),
    fence     bigint NOT NULL CHECK (fence > 0)
);

-- Each organization's head, its last checkpointed seq and the last one
-- handed to the publisher (Kafka).
CREATE TABLE audit_chain_heads (
    organization text COLLATE "C" PRIMARY KEY CHECK (organization <> ''),
    seq          bigint NOT NULL CHECK (seq > 0),
    hash         bytea NOT NULL CHECK (length(hash) = 32),
    checkpointed bigint NOT NULL DEFAULT 0 CHECK (checkpointed >= 0),
    published    bigint NOT NULL DEFAULT 0 CHECK (published >= 0)
);

CREATE TABLE audit_chain_events (
    org_id   text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    seq      bigint NOT NULL CHECK (seq > 0),
    event_id uuid NOT NULL,
    type     text NOT NULL,
    stream   text NOT NULL,
    hash     bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, seq)
);

-- time_ns: the signed time in nanoseconds since the epoch (a timestamptz
-- keeps microseconds, and the signature covers nanoseconds).
CREATE TABLE audit_chain_checkpoints (
    org_id    text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    seq       bigint NOT NULL CHECK (seq > 0),
    position  bigint NOT NULL CHECK (position >= 0),
    head      bytea NOT NULL CHECK (length(head) = 32),
    time_ns   bigint NOT NULL,
    kid       text NOT NULL,
    signature bytea NOT NULL,
    PRIMARY KEY (org_id, seq)
);

ALTER TABLE audit_chain_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_events FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON audit_chain_events
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE audit_chain_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON audit_chain_checkpoints
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

COMMENT ON TABLE audit_chain IS
    'Where the audit chain is in the log log_id, and the latest chainer''s claim. Platform bookkeeping, not a tenant table; never reset.';
COMMENT ON TABLE audit_chain_heads IS
    'Each organization''s audit chain head and checkpoint bookkeeping. Platform bookkeeping, not a tenant table; never reset.';
COMMENT ON TABLE audit_chain_events IS
    'The audit chain''s record of each event (org, seq, id, hash): the witness of the log. Never reset.';
COMMENT ON TABLE audit_chain_checkpoints IS
    'Signed checkpoints of the audit chain. Never reset.';
