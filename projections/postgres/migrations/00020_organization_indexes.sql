-- +goose Up
-- Lets the owner role, and only it, count the chunks of every organization
-- while it maintains the per-organization HNSW indexes
-- (IndexOrganizations): row-level security is forced on the owner too, and
-- deciding which organizations are large enough for an index of their own
-- needs a count per organization. The policy is for SELECT only, applies
-- to the role that ran this migration (the owner, which may already turn
-- row-level security off on a table it owns), and only in a session that
-- set palisade.maintenance. The application role, which owns nothing and
-- is not a member of the owner, is never given it: for it the only policy
-- is still org_isolation, whatever it sets.
CREATE POLICY organization_index_maintenance ON knowledge_chunks FOR SELECT TO CURRENT_USER
    USING (current_setting('palisade.maintenance', true) = 'organization-indexes');
