-- +goose Up
-- The read model of analytics jobs and their result rows (issue 11). Same
-- rules as 00001: org_id first in every key, keys COLLATE "C" (cursor
-- pages in byte order, like the memory adapter's), row-level security
-- enabled and forced, and the one org policy. (00009 is left to the data
-- sources' read model, written in parallel; goose allows the gap.)
--
-- A job's record is rewritten whole with each of its events. Result pages
-- are json, not jsonb: jsonb refuses the escape \u0000, which a tenant's
-- text column may hold, and a refused row would stop the projection.

CREATE TABLE analytics_jobs (
    org_id          text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id              text COLLATE "C" NOT NULL,
    created_by      text COLLATE "C" NOT NULL,
    created_by_kind text COLLATE "C" NOT NULL,
    data_source_id  text COLLATE "C" NOT NULL,
    state           text NOT NULL,
    version         bigint NOT NULL,
    job             json NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- A member's own jobs, paged by id.
CREATE INDEX analytics_jobs_created_by ON analytics_jobs (org_id, created_by, id);

CREATE TABLE analytics_result_pages (
    org_id text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    job_id text COLLATE "C" NOT NULL,
    page   integer NOT NULL CHECK (page >= 0),
    rows   json NOT NULL,
    PRIMARY KEY (org_id, job_id, page)
);

ALTER TABLE analytics_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON analytics_jobs
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE analytics_result_pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE analytics_result_pages FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON analytics_result_pages
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
