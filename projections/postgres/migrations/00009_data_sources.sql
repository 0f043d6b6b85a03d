-- +goose Up
-- The read model of data sources (issue 11). Same rules as 00001: org_id
-- first in every key, keys COLLATE "C" (cursor pages in byte order, like
-- the memory adapter's), row-level security enabled and forced, and the one
-- org policy.
--
-- No password is ever stored here, sealed or in clear: connection holds
-- where the source connects and whether a password is set. The JSON
-- columns are json, not jsonb: a test's error text is the database's and
-- may hold the escape \u0000, which jsonb refuses.

CREATE TABLE data_sources (
    org_id             text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id                 text COLLATE "C" NOT NULL,
    name               text NOT NULL,
    kind               text NOT NULL,
    connection         json NOT NULL,
    allowed_tables     json NOT NULL,
    grants             json NOT NULL,
    state              text NOT NULL,
    schema_snapshot    json,
    last_test          json,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    version            bigint NOT NULL,
    connection_version integer NOT NULL,
    PRIMARY KEY (org_id, id)
);

ALTER TABLE data_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE data_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON data_sources
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
