-- +goose Up
-- Which event log the read models were built from (issue 13): one row,
-- written by the first server that builds them (the log's identity, as
-- the event store keeps it), checked at every start. The position the
-- read models reached is already in projection_checkpoints, written in the
-- same transactions as their rows. A server whose log has another identity,
-- or ends before those positions, refuses to serve them; a rebuild
-- (palisade migrate --rebuild, or serve --rebuild-read-models) empties
-- every read model and this row, and the next start binds them to its log.
CREATE TABLE read_model_origin (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    log_id    text NOT NULL CHECK (log_id <> ''),
    bound_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE read_model_origin IS
    'The identity of the event log the read models were built from. Platform bookkeeping, not a tenant table.';
