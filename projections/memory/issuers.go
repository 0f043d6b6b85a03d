package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

func (t *Tenancy) Issuer(_ context.Context, scope access.Scope, issuer string) (projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return projections.IssuerBinding{}, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if b, ok := t.issuers[org][issuer]; ok {
		return b, nil
	}
	return projections.IssuerBinding{}, fmt.Errorf("issuer: %w", projections.ErrNotFound)
}

func (t *Tenancy) Issuers(_ context.Context, scope access.Scope) ([]projections.IssuerBinding, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	bound := t.issuers[org]
	out := make([]projections.IssuerBinding, 0, len(bound))
	for _, iss := range slices.Sorted(maps.Keys(bound)) {
		out = append(out, bound[iss])
	}
	return out, nil
}

func (t *Tenancy) PutIssuer(_ context.Context, scope access.Scope, b projections.IssuerBinding) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.issuers[org] == nil {
		t.issuers[org] = map[string]projections.IssuerBinding{}
	}
	t.issuers[org][b.Issuer] = b
	return nil
}

func (t *Tenancy) DeleteIssuer(_ context.Context, scope access.Scope, issuer string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.issuers[org], issuer)
	return nil
}
