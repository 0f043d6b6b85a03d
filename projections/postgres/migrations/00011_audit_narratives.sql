-- +goose Up
-- The narratives of the audit record (issue 12): one row per organization
-- and correlation id, kept by the audit adapter as it adds each event, so
-- that the list of recent narratives pages by the first event's sequence
-- without grouping the whole record. The steps themselves are the
-- audit_events rows of the correlation (index audit_events_correlation).
CREATE TABLE audit_narratives (
    org_id         text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    correlation_id text NOT NULL CHECK (correlation_id <> ''),
    first_sequence bigint NOT NULL,
    last_sequence  bigint NOT NULL,
    steps          bigint NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    PRIMARY KEY (org_id, correlation_id)
);

-- Newest first, and the cursor.
CREATE UNIQUE INDEX audit_narratives_recent ON audit_narratives (org_id, first_sequence);

ALTER TABLE audit_narratives ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_narratives FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON audit_narratives
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

-- The events already recorded: row-level security is lifted for the
-- backfill only, inside this migration's transaction (as in 00007).
ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_narratives NO FORCE ROW LEVEL SECURITY;
INSERT INTO audit_narratives (org_id, correlation_id, first_sequence, last_sequence, steps, started_at, ended_at)
SELECT org_id, correlation_id, min(sequence), max(sequence), count(*), min(occurred_at), max(occurred_at)
FROM audit_events WHERE correlation_id <> ''
GROUP BY org_id, correlation_id;
ALTER TABLE audit_narratives FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
