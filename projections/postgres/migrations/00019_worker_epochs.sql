-- +goose Up
-- A fencing token per single-active worker: each replica that takes a
-- worker's role increments epoch (BeginWorkerTerm) before it loads the
-- position, and its saves are refused once a later term has begun
-- (FencedWorkerCheckpoint), so that a holder that lost its role without
-- noticing yet (a pause, a session the database ended first) stops at its
-- next save instead of writing on. Rows from before start at 0; terms
-- start at 1.
ALTER TABLE worker_checkpoints ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0);

