-- +goose Up
-- Where the single-active workers of a deployment (the Kafka relays, the
-- ingestion and analytics processes) are in the log, so that whichever
-- replica holds a worker's role next resumes from it (issue 13). A
-- position is only meaningful in the log it was reached in: each row names
-- that log, and a position recorded for another log reads as none. The
-- table is not a read model: a rebuild keeps it (relays must not publish
-- the whole log to Kafka again, processes must not redo their work).
CREATE TABLE worker_checkpoints (
    worker     text COLLATE "C" PRIMARY KEY CHECK (worker <> ''),
    log_id     text NOT NULL CHECK (log_id <> ''),
    position   bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE worker_checkpoints IS
    'Positions of the relays and processes in the event log named by log_id. Platform bookkeeping, not a tenant table.';

