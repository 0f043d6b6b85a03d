-- +goose Up
-- The organizations' data keys, shared by every replica of a deployment
-- (issue 13; package sealing/keyring). Only wrapped keys are stored: each
-- is sealed by the deployment's master key, which never enters the
-- database. The tables are platform bookkeeping, not read models: they
-- have no org_id column (no row-level security: the keyring serves every
-- organization), and a read-model reset keeps them, since a rebuild must
-- never destroy a key. Destroying an organization's key deletes its rows
-- and records its tombstone in one transaction.
CREATE TABLE data_keys (
    organization text COLLATE "C" NOT NULL CHECK (organization <> ''),
    version      integer NOT NULL CHECK (version > 0),
    wrapped      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization, version)
);

CREATE TABLE data_key_subjects (
    organization text COLLATE "C" NOT NULL CHECK (organization <> ''),
    handle       text COLLATE "C" NOT NULL CHECK (handle <> ''),
    wrapped      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization, handle)
);

CREATE TABLE data_key_tombstones (
    organization text COLLATE "C" PRIMARY KEY CHECK (organization <> ''),
    destroyed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE data_keys IS
    'Organizations'' data key versions, wrapped by the master key. Platform bookkeeping, not a tenant table; never reset.';
COMMENT ON TABLE data_key_subjects IS
    'Per-subject data keys, wrapped by the master key. Platform bookkeeping, not a tenant table; never reset.';
COMMENT ON TABLE data_key_tombstones IS
    'Organizations whose data keys were destroyed (crypto-shredded): never created again. Never reset.';
