package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// AuditStories answers auditors' questions about whole requests: the
// narrative of one correlation id, the list of recent narratives, and the
// export of the organization's record. Each needs audit:read; content is
// shown, and its reading recorded, only as AuditEvents does.
type AuditStories struct {
	q        *Queries
	narrator *Narrator
}

// NewAuditStories returns the service over the audit read model of q.
func NewAuditStories(q *Queries, narrator *Narrator) *AuditStories {
	return &AuditStories{q: q, narrator: narrator}
}

// Narrative returns every step recorded under correlationID in the
// caller's organization. A correlation id with no event in it — another
// organization's included — is not found.
func (s *AuditStories) Narrative(ctx context.Context, who access.Principal, correlationID string) (Narrative, error) {
	scope, err := s.q.authorize(ctx, who, access.AuditRead, "audit")
	if err != nil {
		return Narrative{}, err
	}
	if correlationID == "" || len(correlationID) > maxFilterLen {
		return Narrative{}, fmt.Errorf("%w: narrative", domain.ErrNotFound)
	}
	aq := AuditQuery{CorrelationID: correlationID, Limit: MaxPageLimit}
	var evs []AuditEvent
	truncated := false
	for {
		page, err := s.q.audit.Events(ctx, scope, aq)
		if err != nil {
			return Narrative{}, fmt.Errorf("narrative: %w", err)
		}
		evs = append(evs, page...)
		if len(evs) >= MaxNarrativeSteps {
			truncated = len(evs) > MaxNarrativeSteps || len(page) == MaxPageLimit
			evs = evs[:MaxNarrativeSteps]
			break
		}
		if len(page) < MaxPageLimit {
			break
		}
		aq.After = page[len(page)-1].Sequence
	}
	if len(evs) == 0 {
		return Narrative{}, fmt.Errorf("%w: narrative", domain.ErrNotFound)
	}
	shown, err := s.q.showAuditContent(ctx, who, AuditQuery{CorrelationID: correlationID, Limit: len(evs)}, evs)
	if err != nil {
		return Narrative{}, err
	}
	n := s.narrator.Narrative(correlationID, shown)
	n.Truncated = truncated
	return n, nil
}

// Narratives lists the caller's organization's narratives matching q,
// newest first.
func (s *AuditStories) Narratives(ctx context.Context, who access.Principal, q NarrativeQuery) ([]NarrativeSummary, error) {
	scope, err := s.q.authorize(ctx, who, access.AuditRead, "audit")
	if err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Resource != "" {
		if q.Stream, err = ResourceStream(scope.OrgID(), q.Resource); err != nil {
			return nil, err
		}
	}
	rows, err := s.q.audit.Narratives(ctx, scope, q)
	if err != nil {
		return nil, fmt.Errorf("narratives: %w", err)
	}
	out := make([]NarrativeSummary, len(rows))
	for i, r := range rows {
		out[i] = s.narrator.Summary(r)
	}
	return out, nil
}

// ExportPage is how many events Export reads at a time.
const ExportPage = MaxPageLimit

// Export hands every event of the caller's organization that occurred at
// or after since (all when zero) to each, page by page in sequence order,
// as AuditEvents shows them. It stops at the first error each returns.
func (s *AuditStories) Export(ctx context.Context, who access.Principal, since time.Time, each func([]AuditEvent) error) error {
	scope, err := s.q.authorize(ctx, who, access.AuditRead, "audit")
	if err != nil {
		return err
	}
	aq := AuditQuery{Since: since, Limit: ExportPage}
	for {
		page, err := s.q.audit.Events(ctx, scope, aq)
		if err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		shown, err := s.q.showAuditContent(ctx, who, aq, page)
		if err != nil {
			return err
		}
		if err := each(shown); err != nil {
			return err
		}
		if len(page) < ExportPage {
			return nil
		}
		aq.After = page[len(page)-1].Sequence
	}
}

// Narrator returns the narrator the service tells steps with, for the
// exports that tell each event too.
func (s *AuditStories) Narrator() *Narrator { return s.narrator }
