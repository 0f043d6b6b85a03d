package commands

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// RecordAuditContentRead appends read to the security stream of who's
// organization ("security-{org}_audit-content"), with who as the actor and
// d (the decision that allowed audit:read-content) as the authorization.
// The caller shows the content only when this returns nil: a read of
// content that cannot be recorded does not happen.
func (p *Pipeline) RecordAuditContentRead(ctx context.Context, who access.Principal, d access.Decision, read *events.AuditContentRead) error {
	stream, err := eventstore.NewStreamName(events.SecurityCategory, who.OrgID, events.AuditContentStream)
	if err != nil {
		return fmt.Errorf("record audit content read: %w", err)
	}
	if _, _, err := p.append(ctx, who, d, stream, eventstore.Any(), []domain.Event{read}); err != nil {
		return fmt.Errorf("record audit content read: %w", err)
	}
	return nil
}
