-- +goose Up
-- The keyword ranking's data leaves knowledge_chunks for a side table of
-- its own (issue 13), so that a full-text index can serve it and the
-- chunks' rows, which every vector scan reads, get narrower instead of
-- wider.
--
-- Why no full-text index served the keyword ranking before (00003). Under
-- forced row-level security PostgreSQL evaluates the policy (org_id =
-- current_setting(...), a leakproof text equality) before any condition
-- whose function is not LEAKPROOF, and uses only leakproof conditions as
-- index conditions, so that a function that could raise an error or
-- otherwise reveal its arguments never sees another organization's row.
-- tsvector @@ tsquery is pg_catalog.ts_match_vq, which PostgreSQL does not
-- mark leakproof (it marks few functions so, conservatively), so the
-- application role's plan read the organization's chunks by the btree and
-- tested @@ on each: every covered chunk, whatever the index.
--
-- ts_match_vq cannot leak its arguments: it only looks the query's
-- lexemes up in the tsvector and returns true or false; nothing it does
-- raises an error that depends on the row (its only errors are the stack
-- depth check, which depends on the query the caller wrote, and out of
-- memory). So the superuser step that creates the extensions
-- (scripts/provision-postgres, or an operator's equivalent) marks it
-- LEAKPROOF, once per database, next to CREATE EXTENSION vector: a role
-- that owns nothing cannot, and no migration may need a superuser. Where
-- that step was not done, every query here still answers the same, only
-- without the index (as before this migration). Isolation does not rest on
-- it: the policy still filters every row an index scan returns, and each
-- query still says org_id = $1.
--
-- Two kinds of lexemes, in two columns:
--   tsv     the chunk's words with their positions, as to_tsvector('simple')
--           gives them: what a chunk's keyword score is computed from.
--   levels  one lexeme per word the chunk holds, '<word> <level>', where
--           level = floor(3 ln n) for n occurrences (0 for 1, 2 for 2, 3
--           for 3, 4 for 4–5, … each level about 1.4 times the last).
--           Looked up word by word, level by level from the highest, it
--           gives a word's chunks in about decreasing order of
--           occurrences, so the ranking reads a word's strongest chunks
--           first and can stop (Chunks.Search).
-- The GIN index leads with org_id (btree_gin), so a lookup intersects the
-- organization's entries with the lexeme's inside the index and never
-- visits another organization's rows.
CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public;

-- keyword_levels returns the levels of tsv (see above); ln of 0 cannot
-- happen (a lexeme of to_tsvector has at least one position) but is kept
-- out anyway.
CREATE FUNCTION keyword_levels(tsv tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_to_tsvector(ARRAY(
        SELECT l.lexeme || ' ' || floor(3 * ln(greatest(cardinality(l.positions), 1)))::integer
        FROM unnest(tsv) AS l));

CREATE TABLE knowledge_chunk_terms (
    org_id            text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    chunk_id          text COLLATE "C" NOT NULL,
    knowledge_base_id text COLLATE "C" NOT NULL,
    tsv               tsvector NOT NULL,
    levels            tsvector NOT NULL,
    PRIMARY KEY (org_id, chunk_id),
    -- A chunk's terms go with it (its deletion cascades; referential
    -- checks and actions bypass row-level security, within the same
    -- organization by the key).
    FOREIGN KEY (org_id, chunk_id) REFERENCES knowledge_chunks (org_id, chunk_id) ON DELETE CASCADE
);

-- The chunks already stored, as the owner: the table is not yet under row
-- level security, and knowledge_chunks is let out of it for this
-- transaction only (the owner may, and nothing else runs inside it).
ALTER TABLE knowledge_chunks NO FORCE ROW LEVEL SECURITY;
INSERT INTO knowledge_chunk_terms (org_id, chunk_id, knowledge_base_id, tsv, levels)
    SELECT org_id, chunk_id, knowledge_base_id, tsv, keyword_levels(tsv) FROM knowledge_chunks;
ALTER TABLE knowledge_chunks FORCE ROW LEVEL SECURITY;

-- The chunks keep their text but lose the tsvector: about a kilobyte less
-- per row for every scan that reads them whole.
ALTER TABLE knowledge_chunks DROP COLUMN tsv;

-- A row (two tsvectors of about a kilobyte each for a chunk of ordinary
-- size) would pass the 2 kB at which PostgreSQL compresses it, and every
-- ranking would decompress each row it scores: rows are compressed or
-- moved only past 8 kB, as knowledge_chunks' are (00003).
ALTER TABLE knowledge_chunk_terms SET (toast_tuple_target = 8160);

CREATE INDEX knowledge_chunk_terms_levels ON knowledge_chunk_terms USING gin (org_id, levels);

ALTER TABLE knowledge_chunk_terms ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_chunk_terms FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON knowledge_chunk_terms
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
