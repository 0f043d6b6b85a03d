package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// Tenancy is the PostgreSQL adapter of projections.TenancyModel.
type Tenancy struct{ db *db }

var _ projections.TenancyModel = (*Tenancy)(nil)

const (
	orgSQL = `SELECT org_id, name, closed, created_at, updated_at FROM orgs WHERE org_id = $1`

	memberColumns = `issuer, sub, roles, added_at, updated_at`
	memberSQL     = `SELECT ` + memberColumns + ` FROM members WHERE org_id = $1 AND issuer = $2 AND sub = $3`
	// Members are listed by their principal subject, the cursor.
	membersSQL   = `SELECT ` + memberColumns + ` FROM members WHERE org_id = $1 ORDER BY principal LIMIT $2`
	membersAfter = `SELECT ` + memberColumns + ` FROM members WHERE org_id = $1 AND principal > $3 ORDER BY principal LIMIT $2`

	accountColumns = `id, name, permissions, created_by, created_at, expires_at, revoked, revoked_at, token_id`
	accountSQL     = `SELECT ` + accountColumns + ` FROM service_accounts WHERE org_id = $1 AND id = $2`
	accountsSQL    = `SELECT ` + accountColumns + ` FROM service_accounts WHERE org_id = $1 ORDER BY id LIMIT $2`
	accountsAfter  = `SELECT ` + accountColumns + ` FROM service_accounts WHERE org_id = $1 AND id > $3 ORDER BY id LIMIT $2`

	putOrgSQL = `INSERT INTO orgs (org_id, name, closed, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (org_id) DO UPDATE SET name = EXCLUDED.name, closed = EXCLUDED.closed,
			created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`
	putMemberSQL = `INSERT INTO members (org_id, issuer, sub, roles, added_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (org_id, issuer, sub) DO UPDATE SET roles = EXCLUDED.roles,
			added_at = EXCLUDED.added_at, updated_at = EXCLUDED.updated_at`
	deleteMemberSQL = `DELETE FROM members WHERE org_id = $1 AND issuer = $2 AND sub = $3`
	putAccountSQL   = `INSERT INTO service_accounts
			(org_id, id, name, permissions, created_by, created_at, expires_at, revoked, revoked_at, token_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (org_id, id) DO UPDATE SET name = EXCLUDED.name, permissions = EXCLUDED.permissions,
			created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
			revoked = EXCLUDED.revoked, revoked_at = EXCLUDED.revoked_at, token_id = EXCLUDED.token_id`
)

func (t *Tenancy) Org(ctx context.Context, scope access.Scope) (projections.Org, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Org{}, err
	}
	return getOne(ctx, t.db, org, "organization", orgSQL, []any{org}, scanOrg)
}

func (t *Tenancy) Member(ctx context.Context, scope access.Scope, issuer, sub string) (projections.Member, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.Member{}, err
	}
	return getOne(ctx, t.db, org, "member", memberSQL, []any{org, issuer, sub}, scanMember)
}

func (t *Tenancy) Members(ctx context.Context, scope access.Scope, page projections.Page) ([]projections.Member, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return listPage(ctx, t.db, org, "members", membersSQL, membersAfter, page, scanMember)
}

func (t *Tenancy) ServiceAccount(ctx context.Context, scope access.Scope, id string) (projections.ServiceAccount, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.ServiceAccount{}, err
	}
	return getOne(ctx, t.db, org, "service account", accountSQL, []any{org, id}, scanAccount)
}

func (t *Tenancy) ServiceAccounts(ctx context.Context, scope access.Scope, page projections.Page) ([]projections.ServiceAccount, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return listPage(ctx, t.db, org, "service accounts", accountsSQL, accountsAfter, page, scanAccount)
}

func (t *Tenancy) PutOrg(ctx context.Context, scope access.Scope, o projections.Org) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if o.ID != org {
		return fmt.Errorf("put organization %q in scope %q: %w", o.ID, org, eventstore.ErrOrgMismatch)
	}
	return put(ctx, t.db, org, "put organization", putOrgSQL, org, o.Name, o.Closed, o.CreatedAt, o.UpdatedAt)
}

func (t *Tenancy) PutMember(ctx context.Context, scope access.Scope, m projections.Member) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, t.db, org, "put member", putMemberSQL, org, m.Issuer, m.Sub, m.Roles, m.AddedAt, m.UpdatedAt)
}

func (t *Tenancy) DeleteMember(ctx context.Context, scope access.Scope, issuer, sub string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, t.db, org, "delete member", deleteMemberSQL, org, issuer, sub)
}

func (t *Tenancy) PutServiceAccount(ctx context.Context, scope access.Scope, sa projections.ServiceAccount) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, t.db, org, "put service account", putAccountSQL, org, sa.ID, sa.Name, sa.Permissions, sa.CreatedBy,
		sa.CreatedAt, sa.ExpiresAt, sa.Revoked, sa.RevokedAt, sa.TokenID)
}

// pageQuery picks the first page's query or the one after a cursor, and
// their arguments ($1 org, $2 limit, $3 cursor). The first page has no
// condition on the key, so that, as in memory, an empty key is listed too.
func pageQuery(first, after, org string, page projections.Page) (string, []any) {
	if page.After == "" {
		return first, []any{org, limitOf(page.Limit)}
	}
	return after, []any{org, limitOf(page.Limit), page.After}
}

func scanOrg(rows pgx.Rows) (projections.Org, error) {
	var o projections.Org
	if err := rows.Scan(&o.ID, &o.Name, &o.Closed, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return o, err
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, nil
}

func scanMember(rows pgx.Rows) (projections.Member, error) {
	var m projections.Member
	if err := rows.Scan(&m.Issuer, &m.Sub, &m.Roles, &m.AddedAt, &m.UpdatedAt); err != nil {
		return m, err
	}
	m.AddedAt, m.UpdatedAt = m.AddedAt.UTC(), m.UpdatedAt.UTC()
	return m, nil
}

func scanAccount(rows pgx.Rows) (projections.ServiceAccount, error) {
	var sa projections.ServiceAccount
	err := rows.Scan(&sa.ID, &sa.Name, &sa.Permissions, &sa.CreatedBy, &sa.CreatedAt, &sa.ExpiresAt,
		&sa.Revoked, &sa.RevokedAt, &sa.TokenID)
	if err != nil {
		return sa, err
	}
	sa.CreatedAt, sa.ExpiresAt = sa.CreatedAt.UTC(), sa.ExpiresAt.UTC()
	if sa.RevokedAt != nil {
		at := sa.RevokedAt.UTC()
		sa.RevokedAt = &at
	}
	return sa, nil
}
