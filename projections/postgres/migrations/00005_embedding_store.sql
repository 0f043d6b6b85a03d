-- +goose Up
-- Embedding moved out of the knowledge projection into the ingestion
-- process (issue 8 item 5). embedding_cache becomes the durable embedding
-- store that the process writes and the projection only reads; it is no
-- read model, and nothing rebuilds it.
--
-- A chunk whose vector the store lacks when the projection records it (the
-- store was lost, or restored from an older backup) is kept without one:
-- it is found by keyword, and the vector ranking passes over it until it is
-- re-embedded. HNSW indexes no NULL.
ALTER TABLE knowledge_chunks ALTER COLUMN embedding DROP NOT NULL;

COMMENT ON TABLE embedding_cache IS
    'Durable embedding store: chunk vectors by (org, model, content hash), written by the ingestion process. Not a read model.';
