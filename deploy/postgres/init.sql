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
