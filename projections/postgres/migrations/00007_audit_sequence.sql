-- +goose Up
-- Each organization's audit events numbered 1, 2, 3 … in log order, without
-- gaps (issue 9): the audit API shows and pages by this sequence instead of
-- the global log position, whose gaps between one organization's events
-- would show how much every other organization wrote. The adapter numbers
-- each event as it adds it (one past the organization's last); the rows
-- already there are numbered here, in the order of their positions, which
-- is the order the projection added them in.
ALTER TABLE audit_events ADD COLUMN sequence bigint;

-- Row-level security is forced, so it holds the owner running this
-- migration too, and the backfill would see no row. It is lifted for the
-- backfill only, inside this migration's transaction.
ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY;
UPDATE audit_events a SET sequence = n.sequence
FROM (SELECT org_id, position, row_number() OVER (PARTITION BY org_id ORDER BY position) AS sequence
      FROM audit_events) n
WHERE a.org_id = n.org_id AND a.position = n.position;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;

ALTER TABLE audit_events
    ALTER COLUMN sequence SET NOT NULL,
    ADD CONSTRAINT audit_events_sequence_positive CHECK (sequence > 0);
-- One number per event of an organization: the order and the cursor of
-- unfiltered pages, and where the adapter finds the organization's last.
CREATE UNIQUE INDEX audit_events_sequence ON audit_events (org_id, sequence);

-- Filtered pages now follow the sequence too, so each filter's index ends
-- with it in place of the position (the cursor then stays an index
-- condition, and a late page does not scan the pages before it).
DROP INDEX audit_events_type, audit_events_stream, audit_events_actor, audit_events_correlation;
CREATE INDEX audit_events_type ON audit_events (org_id, type, sequence);
CREATE INDEX audit_events_stream ON audit_events (org_id, stream, sequence);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_subject, sequence);
CREATE INDEX audit_events_correlation ON audit_events (org_id, correlation_id, sequence);
