package memory

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// PurgeOrg drops the organization's members, service accounts and issuers;
// its own record stays, as the projection last put it.
func (t *Tenancy) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	t.members.drop(org)
	t.accounts.drop(org)
	t.issuers.drop(org)
	return nil
}

// PurgeOrg drops every bot of the organization.
func (b *Bots) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	b.bots.drop(org)
	return nil
}

// PurgeOrg drops every knowledge base and document of the organization.
func (k *Knowledge) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	k.bases.drop(org)
	k.docs.drop(org)
	return nil
}

// PurgeOrg drops every chunk of the organization.
func (c *Chunks) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byOrg, org)
	return nil
}

// PurgeOrg drops every conversation of the organization.
func (c *Conversations) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	c.conversations.drop(org)
	return nil
}

// PurgeOrg drops every data source of the organization.
func (d *DataSources) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	d.sources.drop(org)
	return nil
}

// PurgeOrg drops every analytics job and result page of the organization.
func (a *Analytics) PurgeOrg(_ context.Context, scope access.Scope) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	a.jobs.drop(org)
	a.pages.drop(org)
	return nil
}

// RedactOrg replaces the organization's list by one whose payloads went
// through redact. The old list is left as it was: readers scan it without
// the lock (see Events).
func (a *Audit) RedactOrg(_ context.Context, scope access.Scope, redact func(string, json.RawMessage) (json.RawMessage, error)) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.events[org]
	out := make([]projections.AuditEvent, len(list))
	for i, e := range list {
		data, err := redact(e.Event.Type, e.Event.Data)
		if err != nil {
			return fmt.Errorf("audit redact: %w", err)
		}
		e.Event.Data = data
		out[i] = e
	}
	a.events[org] = out
	return nil
}
