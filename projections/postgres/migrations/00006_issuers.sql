-- +goose Up
-- External issuers bound to organizations (issue 9): a member is its issuer
-- and its subject together, and each organization lists the issuers it
-- trusts. Same rules as 00001: org_id first in every key, keys COLLATE "C",
-- row-level security enabled and forced, and the one org policy.

-- issuer is '' for the deployment's built-in issuer, so every existing row
-- keeps meaning what it meant. principal is the member's principal subject
-- (access.PrincipalSubject: sub, or issuer|sub for an external issuer): the
-- order and the cursor of member lists, as the memory adapter's key.
ALTER TABLE members
    ADD COLUMN issuer text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN principal text COLLATE "C" NOT NULL
        GENERATED ALWAYS AS (CASE WHEN issuer = '' THEN sub ELSE issuer || '|' || sub END) STORED;
ALTER TABLE members DROP CONSTRAINT members_pkey;
ALTER TABLE members ADD PRIMARY KEY (org_id, issuer, sub);
CREATE UNIQUE INDEX members_principal ON members (org_id, principal);

CREATE TABLE org_issuers (
    org_id   text COLLATE "C" NOT NULL CHECK (org_id <> ''),
    issuer   text COLLATE "C" NOT NULL CHECK (issuer <> ''),
    bound_at timestamptz NOT NULL,
    bound_by text NOT NULL,
    PRIMARY KEY (org_id, issuer)
);

ALTER TABLE org_issuers ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_issuers FORCE ROW LEVEL SECURITY;
CREATE POLICY org_isolation ON org_issuers
    USING (org_id = current_setting('palisade.org_id', true))
    WITH CHECK (org_id = current_setting('palisade.org_id', true));
