-- +goose Up
-- The read models of the knowledge projections: knowledge bases, their
-- documents, the chunks retrieval searches, and the embedding cache. Same
-- rules as 00001: org_id first in every key, keys COLLATE "C" (cursor pages
-- in byte order, like the memory adapter's), row-level security enabled and
-- forced, and the one org policy.

CREATE TABLE knowledge_bases (
    org_id          text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id              text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL,
    embedding_model text NOT NULL,
    dimensions      integer NOT NULL,
    grants          jsonb NOT NULL,
    archived        boolean NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE documents (
    org_id            text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    id                text COLLATE "C" NOT NULL,
    knowledge_base_id text COLLATE "C" NOT NULL,
    title             text NOT NULL,
    content_type      text NOT NULL,
    content_hash      text NOT NULL,
    size_bytes        bigint NOT NULL,
    version           integer NOT NULL,
    state             text NOT NULL,
    failure_reason    text NOT NULL,
    chunks            integer NOT NULL,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- A knowledge base's documents, paged by id.
CREATE INDEX documents_knowledge_base ON documents (org_id, knowledge_base_id, id);

-- Embeddings by (model, hash of the chunk text). The column has no fixed
-- dimensions: each model has its own, and nothing searches this table by
-- vector, so it needs no vector index.
CREATE TABLE embedding_cache (
    org_id    text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    model     text COLLATE "C" NOT NULL,
    hash      text COLLATE "C" NOT NULL,
    embedding vector NOT NULL,
    PRIMARY KEY (org_id, model, hash)
);

-- knowledge_chunks (00002) becomes the store of projections.StoredChunk: it
-- gains the heading and loses created_at, which no record carries (a
-- replayed read model must come out the same).
ALTER TABLE knowledge_chunks
    ADD COLUMN heading text NOT NULL DEFAULT '',
    DROP COLUMN created_at;

-- A document's chunks, which ReplaceChunks and DeleteChunks remove.
CREATE INDEX knowledge_chunks_document ON knowledge_chunks (org_id, document_id);

-- The GIN index on tsv goes. Under forced row-level security the planner
-- may use a condition as an index condition only if its operator is
-- leakproof, or the index would test other organizations' rows before the
-- policy has excluded them; tsvector @@ tsquery is not leakproof (only a
-- superuser may mark a function so). So no query of the application role
-- can use the index, even with every other plan disabled, and it only cost
-- every insert. Keyword ranking reads the chunks a search covers through
-- (org_id, knowledge_base_id), whose text equality is leakproof. (The HNSW
-- index stays usable: it serves ORDER BY, not a condition.)
DROP INDEX knowledge_chunks_tsv;

-- So a search reads every chunk it covers for its keyword ranking, and for
-- its vector ranking when the organization is small: a row must be cheap to
-- read whole. The embedding (1.5 kB) stays in the row (PLAIN: no TOAST
-- fetch per distance), and with it a row of ordinary size passes the 2 kB
-- at which PostgreSQL would compress the text and the tsvector or move
-- them to the TOAST table, which every keyword ranking would then undo,
-- row by row (1.6 to 3 times slower, measured); so rows are compressed or
-- moved only past 8 kB.
ALTER TABLE knowledge_chunks ALTER COLUMN embedding SET STORAGE PLAIN;
ALTER TABLE knowledge_chunks SET (toast_tuple_target = 8160);

ALTER TABLE knowledge_bases ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_bases FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON knowledge_bases
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON documents
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));

ALTER TABLE embedding_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE embedding_cache FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON embedding_cache
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
