-- +goose Up
-- The effective principal on the audit record: the token scope that
-- narrowed the actor (NULL: the token carried none; an empty array: a scope
-- that allowed nothing) and a service account's creator. Older rows keep
-- NULL and '' (nothing was recorded then).
ALTER TABLE audit_events
    ADD COLUMN actor_scope      text[],
    ADD COLUMN actor_created_by text NOT NULL DEFAULT '';

