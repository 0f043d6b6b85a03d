package postgres

import (
	"context"
	"fmt"

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
	var b projections.IssuerBinding
	found := false
	err = t.db.query(ctx, org, issuerSQL, []any{org, issuer}, func(rows pgx.Rows) error {
		found = true
		b, err = scanIssuer(rows)
		return err
	})
	if err != nil {
		return projections.IssuerBinding{}, fmt.Errorf("issuer: %w", err)
	}
	if !found {
		return projections.IssuerBinding{}, fmt.Errorf("issuer: %w", projections.ErrNotFound)
	}
	return b, nil
}

func (t *Tenancy) Issuers(ctx context.Context, scope access.Scope) ([]projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	out := []projections.IssuerBinding{}
	err = t.db.query(ctx, org, issuersSQL, []any{org}, func(rows pgx.Rows) error {
		b, err := scanIssuer(rows)
		out = append(out, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("issuers: %w", err)
	}
	return out, nil
}

func (t *Tenancy) PutIssuer(ctx context.Context, scope access.Scope, b projections.IssuerBinding) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if err := t.db.exec(ctx, org, putIssuerSQL, org, b.Issuer, b.BoundAt, b.BoundBy); err != nil {
		return fmt.Errorf("put issuer: %w", err)
	}
	return nil
}

func (t *Tenancy) DeleteIssuer(ctx context.Context, scope access.Scope, issuer string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	if err := t.db.exec(ctx, org, deleteIssuerSQL, org, issuer); err != nil {
		return fmt.Errorf("delete issuer: %w", err)
	}
	return nil
}

func scanIssuer(rows pgx.Rows) (projections.IssuerBinding, error) {
	var b projections.IssuerBinding
	if err := rows.Scan(&b.Issuer, &b.BoundAt, &b.BoundBy); err != nil {
		return b, err
	}
	b.BoundAt = b.BoundAt.UTC()
	return b, nil
}
