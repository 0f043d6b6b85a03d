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
-- One number per event of an organization; it also finds an organization's
-- last number, and the position of a page's cursor.
CREATE UNIQUE INDEX audit_events_sequence ON audit_events (org_id, sequence);
