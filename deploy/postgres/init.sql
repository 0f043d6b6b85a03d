-- Roles and database for Palisade, run once by the postgres image on an
-- empty data directory. Development passwords: change them anywhere else.
--   palisade_owner owns the schema and runs migrations.
--   palisade_app is what the server queries with: it owns nothing and cannot
--   bypass row-level security, so every tenant table's policies apply to it.
CREATE ROLE palisade_owner LOGIN PASSWORD 'palisade_owner';
CREATE ROLE palisade_app LOGIN PASSWORD 'palisade_app' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE palisade OWNER palisade_owner;
GRANT CONNECT ON DATABASE palisade TO palisade_app;
\connect palisade
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS btree_gin;
-- tsvector @@ tsquery may then be an index condition under row-level
-- security, so the keyword search's GIN index serves (a superuser's step,
-- once per database; migration 00017 of projections/postgres says why it
-- cannot leak a row). Without it keyword search still answers the same,
-- reading every chunk of the organization.
ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
