-- +goose Up
-- The read model of conversations with bots (issue 10). Same rules as
-- 00001: org_id first in every key, keys COLLATE "C" (cursor pages in byte
-- order, like the memory adapter's), row-level security enabled and forced,
-- and the one org policy.
--
-- messages holds the whole exchange as JSON, rewritten with each event of
-- the conversation: it is only ever read whole. It is json, not jsonb:
-- jsonb refuses the escape \u0000, which a model's answer or a tool's
-- arguments may hold, and a refused row would stop the projection.

CREATE TABLE conversations (
    org_id          text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id              text COLLATE "C" NOT NULL,
    bot_id          text COLLATE "C" NOT NULL,
    title           text NOT NULL,
    started_by      text COLLATE "C" NOT NULL,
    started_by_kind text COLLATE "C" NOT NULL,
    archived        boolean NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL,
    messages        json NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- A member's own conversations, paged by id.
CREATE INDEX conversations_started_by ON conversations (org_id, started_by, id);

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON conversations
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
