package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// KeyShredder destroys organizations' data keys (sealing/keyring is one).
// Destroy must be idempotent and durable; Orgs lists the organizations
// whose key is still stored.
type KeyShredder interface {
	Destroy(ctx context.Context, orgID string) error
	Orgs(ctx context.Context) ([]string, error)
}

// WithKeyShredder gives the tenancy handlers the keyring whose keys closing
// an organization destroys. Without one, CloseOrg refuses: an organization
// must not be reported closed while its key survives.
func (t *Tenancy) WithKeyShredder(k KeyShredder) *Tenancy {
	t.keys = k
	return t
}

// CloseOrg closes organization orgID for good and destroys its data key
// (crypto-shredding whatever was sealed with it). Only the platform may
// (orgs:create); confirm must be the organization's name. The
// OrganizationClosed event is appended first, then the key destroyed: a
// crash in between leaves a closed organization with a key, which
// ShredClosedKeys destroys at the next start. Closing an organization that
// is already closed is tenancy.ErrClosed (409), after making sure its key
// is destroyed, so a retry of a close whose destruction failed finishes it.
func (t *Tenancy) CloseOrg(ctx context.Context, who access.Principal, orgID, confirm string) (Result, error) {
	p := t.p
	d, err := p.authorize(ctx, who, access.OrgsCreate, access.Resource{}, "organizations/"+orgID)
	if err != nil {
		return Result{}, err
	}
	if t.keys == nil {
		return Result{}, errors.New("close organization: no keyring to destroy its data key")
	}
	stream, err := eventstore.NewStreamName(tenancy.Category, orgID, orgID)
	if err != nil || orgID == access.PlatformScope {
		return Result{}, fmt.Errorf("%w: organization", domain.ErrNotFound)
	}
	res, err := p.execute(ctx, who, d, stream, newOrganization, func(a aggregate) ([]domain.Event, error) {
		return asOrg(a).Close(confirm)
	})
	if err != nil && !errors.Is(err, tenancy.ErrClosed) {
		return Result{}, err
	}
	// The append moved the tenancy stream: what this process keeps of the
	// organization's authority is read again before its next append.
	p.authority.forget(orgID)
	if derr := t.keys.Destroy(ctx, orgID); derr != nil {
		p.logger.Error("organization closed, but its data key was not destroyed; it will be at the next start",
			"org_id", orgID, "err", derr)
		return Result{}, fmt.Errorf("destroy the data key of closed organization %s: %w", orgID, derr)
	}
	p.logger.Info("organization closed and its data key destroyed", "org_id", orgID, "by", who.Subject)
	if err != nil {
		return Result{}, err
	}
	res.ID = orgID
	return res, nil
}

// ShredClosedKeys destroys the data key of every organization whose log
// says it is closed but whose key is still stored: the recovery of a crash
// between CloseOrg's append and its destruction. It returns the
// organizations whose key it destroyed. The application runs it at start.
func (t *Tenancy) ShredClosedKeys(ctx context.Context) ([]string, error) {
	if t.keys == nil {
		return nil, nil
	}
	orgs, err := t.keys.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	var shredded []string
	for _, orgID := range orgs {
		stream, err := eventstore.NewStreamName(tenancy.Category, orgID, orgID)
		if err != nil {
			continue
		}
		org := tenancy.New()
		if _, _, err := t.p.load(ctx, stream, org); err != nil {
			return shredded, err
		}
		if !org.Closed() {
			continue
		}
		if err := t.keys.Destroy(ctx, orgID); err != nil {
			return shredded, fmt.Errorf("destroy the data key of closed organization %s: %w", orgID, err)
		}
		shredded = append(shredded, orgID)
	}
	return shredded, nil
}
