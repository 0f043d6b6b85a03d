-- +goose Up
-- Chunks of knowledge-base documents with their embeddings, for retrieval
-- (vector search over embedding, keyword search over tsv).
--
-- The vector extension is not trusted: a superuser must have created it
-- once in this database (scripts/provision-postgres does). Then this
-- statement is a no-op that needs no privilege; otherwise it fails here,
-- saying so, rather than at the first query.
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE knowledge_chunks (
    org_id            text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    knowledge_base_id text COLLATE "C" NOT NULL,
    document_id       text COLLATE "C" NOT NULL,
    chunk_id          text COLLATE "C" NOT NULL,
    ordinal           integer NOT NULL,
    text              text NOT NULL,
    embedding         vector(384) NOT NULL,
    tsv               tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (org_id, chunk_id)
);

CREATE INDEX knowledge_chunks_embedding ON knowledge_chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX knowledge_chunks_tsv ON knowledge_chunks USING gin (tsv);
CREATE INDEX knowledge_chunks_knowledge_base ON knowledge_chunks (org_id, knowledge_base_id);

ALTER TABLE knowledge_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON knowledge_chunks
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
