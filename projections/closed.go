package projections

import (
	"context"
	"encoding/json"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Closing an organization. When a read model applies OrganizationClosed it
// drops every row it holds of that organization (PurgeOrg), in the same
// unit of work as its checkpoint; a rebuild applies the same event after
// the organization's earlier ones and drops them again, so nothing comes
// back. Nothing is appended to a closed organization afterwards (the write
// side refuses), so no later event recreates a row. Two read models keep a
// skeleton on purpose: the tenancy read model keeps the organization's one
// row, marked closed and without its name, so that its tokens are refused
// as organization_closed; the audit read model keeps each event's record
// (type, time, actor, ids, keyed digests) with its content values
// shredded (RedactOrg; JSON null, as a rebuild after the close reads them).

// OrgPurger removes every row of one organization. Every read-model port
// whose rows hold an organization's data includes it.
type OrgPurger interface {
	PurgeOrg(ctx context.Context, scope access.Scope) error
}

// AuditRedactor rewrites the payload of every audit event of an
// organization through redact, which keeps its record fields and replaces
// its content fields.
type AuditRedactor interface {
	RedactOrg(ctx context.Context, scope access.Scope, redact func(eventType string, data json.RawMessage) (json.RawMessage, error)) error
}

// purgeOnClose is the handler of a read-model group that drops the
// organization's rows of each model when it is closed.
func purgeOnClose(models ...OrgPurger) consumer.Handler {
	return consumer.On(func(ctx context.Context, env eventstore.Envelope, _ *tenancy.OrganizationClosed) error {
		scope, err := eventScope(env)
		if err != nil {
			return err
		}
		for _, m := range models {
			if err := m.PurgeOrg(ctx, scope); err != nil {
				return err
			}
		}
		return nil
	})
}
