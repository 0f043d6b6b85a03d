package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

const (
	issuerColumns = `issuer, bound_at, bound_by`
	issuerSQL     = `SELECT ` + issuerColumns + ` FROM org_issuers WHERE org_id = $1 AND issuer = $2`
	issuersSQL    = `SELECT ` + issuerColumns + ` FROM org_issuers WHERE org_id = $1 ORDER BY issuer`
	putIssuerSQL  = `INSERT INTO org_issuers (org_id, issuer, bound_at, bound_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id, issuer) DO UPDATE SET bound_at = EXCLUDED.bound_at, bound_by = EXCLUDED.bound_by`
	deleteIssuerSQL = `DELETE FROM org_issuers WHERE org_id = $1 AND issuer = $2`
)

func (t *Tenancy) Issuer(ctx context.Context, scope access.Scope, issuer string) (projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.IssuerBinding{}, err
	}
	return getOne(ctx, t.db, org, "issuer", issuerSQL, []any{org, issuer}, scanIssuer)
}

func (t *Tenancy) Issuers(ctx context.Context, scope access.Scope) ([]projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return list(ctx, t.db, org, "issuers", issuersSQL, []any{org}, scanIssuer)
}

func (t *Tenancy) PutIssuer(ctx context.Context, scope access.Scope, b projections.IssuerBinding) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, t.db, org, "put issuer", putIssuerSQL, org, b.Issuer, b.BoundAt, b.BoundBy)
}

func (t *Tenancy) DeleteIssuer(ctx context.Context, scope access.Scope, issuer string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	return put(ctx, t.db, org, "delete issuer", deleteIssuerSQL, org, issuer)
}

func scanIssuer(rows pgx.Rows) (projections.IssuerBinding, error) {
	var b projections.IssuerBinding
	if err := rows.Scan(&b.Issuer, &b.BoundAt, &b.BoundBy); err != nil {
		return b, err
	}
	b.BoundAt = b.BoundAt.UTC()
	return b, nil
}
