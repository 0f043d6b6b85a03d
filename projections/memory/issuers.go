package memory

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

func (t *Tenancy) Issuer(_ context.Context, scope access.Scope, issuer string) (projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.IssuerBinding{}, err
	}
	if b, ok := t.issuers.get(org, issuer); ok {
		return b, nil
	}
	return projections.IssuerBinding{}, fmt.Errorf("issuer: %w", projections.ErrNotFound)
}

func (t *Tenancy) Issuers(_ context.Context, scope access.Scope) ([]projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	return t.issuers.all(org), nil
}

func (t *Tenancy) PutIssuer(_ context.Context, scope access.Scope, b projections.IssuerBinding) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.issuers.put(org, b.Issuer, b)
	return nil
}

func (t *Tenancy) DeleteIssuer(_ context.Context, scope access.Scope, issuer string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.issuers.delete(org, issuer)
	return nil
}
