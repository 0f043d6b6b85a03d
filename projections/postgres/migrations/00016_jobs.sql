-- +goose Up
-- The read model of the processes' jobs (issue 8): one row per job stream,
-- its state, attempts and outcome. Same rules as 00001: org_id first in
-- every key, keys COLLATE "C" (cursor pages in byte order, like the memory
-- adapter's), row-level security enabled and forced, and the one org
-- policy. Nothing here is content: results and reasons are the record's.

CREATE TABLE jobs (
    org_id       text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id           text COLLATE "C" NOT NULL,
    kind         text NOT NULL,
    subject      text NOT NULL,
    trigger_id   text NOT NULL,
    state        text NOT NULL,
    attempts     integer NOT NULL,
    result       text NOT NULL,
    items        integer NOT NULL,
    reason       text NOT NULL,
    submitted_by text NOT NULL,
    on_behalf_of text[] NOT NULL,
    submitted_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (org_id, id)
);

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON jobs
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
