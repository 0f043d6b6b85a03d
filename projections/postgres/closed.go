package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/domain/access"
)

// purge deletes every row of the scope's organization from tables, in the
// unit of work of ctx.
func purge(ctx context.Context, d *db, scope access.Scope, tables ...string) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	for _, table := range tables {
		if err := d.exec(ctx, org, `DELETE FROM `+pgx.Identifier{table}.Sanitize()+` WHERE org_id = $1`, org); err != nil {
			return fmt.Errorf("purge %s: %w", table, err)
		}
	}
	return nil
}

// PurgeOrg drops the organization's members, service accounts and issuers;
// its row in orgs stays, as the projection last put it.
func (t *Tenancy) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, t.db, scope, "members", "service_accounts", "org_issuers")
}

// PurgeOrg drops every bot of the organization.
func (b *Bots) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, b.db, scope, "bots")
}

// PurgeOrg drops every knowledge base and document of the organization.
func (k *Knowledge) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, k.db, scope, "documents", "knowledge_bases")
}

// PurgeOrg drops every chunk of the organization.
func (c *Chunks) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, c.db, scope, "knowledge_chunks")
}

// PurgeOrg drops every conversation of the organization.
func (c *Conversations) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, c.db, scope, "conversations")
}

// PurgeOrg drops every data source of the organization.
func (d *DataSources) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, d.db, scope, "data_sources")
}

// PurgeOrg drops every analytics job and result page of the organization.
func (a *Analytics) PurgeOrg(ctx context.Context, scope access.Scope) error {
	return purge(ctx, a.db, scope, "analytics_result_pages", "analytics_jobs")
}

// RedactOrg rewrites the payload of each of the organization's audit
// events through redact, in the unit of work of ctx.
func (a *Audit) RedactOrg(ctx context.Context, scope access.Scope, redact func(string, json.RawMessage) (json.RawMessage, error)) error {
	org, err := orgOf(scope)
	if err != nil {
		return err
	}
	type row struct {
		position int64
		typ      string
		data     []byte
	}
	var rows []row
	err = a.db.query(ctx, org, `SELECT position, type, data FROM audit_events WHERE org_id = $1 ORDER BY position`, []any{org},
		func(r pgx.Rows) error {
			var x row
			if err := r.Scan(&x.position, &x.typ, &x.data); err != nil {
				return err
			}
			rows = append(rows, x)
			return nil
		})
	if err != nil {
		return fmt.Errorf("audit redact: %w", err)
	}
	for _, x := range rows {
		out, err := redact(x.typ, x.data)
		if err != nil {
			return fmt.Errorf("audit redact: %w", err)
		}
		if err := a.db.exec(ctx, org, `UPDATE audit_events SET data = $3 WHERE org_id = $1 AND position = $2`, org, x.position, []byte(out)); err != nil {
			return fmt.Errorf("audit redact: %w", err)
		}
	}
	return nil
}
