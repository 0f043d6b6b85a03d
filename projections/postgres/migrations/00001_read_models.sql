-- +goose Up
-- The read models of the tenancy, bots and audit projections, and the
-- projections' checkpoints.
--
-- Every table that holds an organization's data has an org_id column, row-
-- level security enabled and forced (so the owner is subject to it too), and
-- one policy comparing org_id with the transaction's palisade.org_id
-- setting. A transaction that did not set it sees no row and can write none:
-- current_setting(..., true) is then NULL or '', and no org_id is either.
--
-- Keys are COLLATE "C" so that cursor pages follow byte order, as the memory
-- adapter's (Go string order) do, whatever the database's collation.

CREATE TABLE orgs (
    org_id     text COLLATE "C" PRIMARY KEY CHECK (org_id <> ''),
    name       text NOT NULL,
    closed     boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE members (
    org_id     text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    sub        text COLLATE "C" NOT NULL,
    roles      text[],
    added_at   timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, sub)
);

CREATE TABLE service_accounts (
    org_id      text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id          text COLLATE "C" NOT NULL,
    name        text NOT NULL,
    permissions text[],
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked     boolean NOT NULL,
    revoked_at  timestamptz,
    token_id    text NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE bots (
    org_id       text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id           text COLLATE "C" NOT NULL,
    name         text NOT NULL,
    instructions text NOT NULL,
    grants       jsonb NOT NULL,
    archived     boolean NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- One row per event of the organization, holding everything needed to give
-- back an identical eventstore.Envelope: the stream in its parts (stream is
-- derived, for the filter), nil and empty lists apart (NULL and '{}'), and
-- the payload's exact bytes (bytea: jsonb would reorder keys).
CREATE TABLE audit_events (
    org_id               text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    position             bigint NOT NULL,
    id                   uuid NOT NULL,
    type                 text NOT NULL,
    stream_category      text NOT NULL,
    stream_org_id        text NOT NULL,
    stream_entity_id     text NOT NULL,
    stream               text COLLATE "C" GENERATED ALWAYS AS
                             (stream_category || '-' || stream_org_id || '_' || stream_entity_id) STORED,
    stream_version       bigint NOT NULL,
    actor_subject        text NOT NULL,
    actor_kind           text NOT NULL,
    actor_roles          text[],
    actor_on_behalf_of   text[],
    correlation_id       text NOT NULL,
    causation_id         text NOT NULL,
    trace_id             text NOT NULL,
    authorization_reason text NOT NULL,
    idempotency_key      text NOT NULL,
    schema_version       integer NOT NULL,
    occurred_at          timestamptz NOT NULL,
    data                 bytea,
    PRIMARY KEY (org_id, position)
);

CREATE INDEX audit_events_type ON audit_events (org_id, type, position);
CREATE INDEX audit_events_stream ON audit_events (org_id, stream, position);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_subject, position);
CREATE INDEX audit_events_correlation ON audit_events (org_id, correlation_id, position);

ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON orgs
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE members ENABLE ROW LEVEL SECURITY;
ALTER TABLE members FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON members
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE service_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON service_accounts
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE bots ENABLE ROW LEVEL SECURITY;
ALTER TABLE bots FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON bots
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON audit_events
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

-- Positions of the projections: platform bookkeeping, not organization
-- data, so no org_id and no row-level security.
CREATE TABLE projection_checkpoints (
    projection text PRIMARY KEY,
    position   bigint NOT NULL CHECK (position >= 0)
);
