package accessreview

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// DenialRecorder records refused attempts in the security stream
// (commands.Pipeline).
type DenialRecorder interface {
	RecordDenial(ctx context.Context, who access.Principal, d access.Decision, resource string)
}

// Service answers access-review questions for members with audit:read,
// about their own organization only.
type Service struct {
	log     Log
	decoder Decoder
	denials DenialRecorder
}

// New returns the access review over the event log; decoder decodes its
// events and denials records refused callers.
func New(log Log, decoder Decoder, denials DenialRecorder) *Service {
	return &Service{log: log, decoder: decoder, denials: denials}
}

// Answer is the answer to one Query: exactly one of its fields is set.
type Answer struct {
	Subject  *SubjectAccess
	Resource *ResourceAccess
}

// Review answers q for who, about who's organization: what q.Subject could
// do at q.At, or who could read q.Resource then. It needs audit:read.
func (s *Service) Review(ctx context.Context, who access.Principal, q Query) (Answer, error) {
	if (q.Subject == nil) == (q.Resource == nil) {
		return Answer{}, fmt.Errorf("%w: ask about a subject or a resource", ErrInvalidQuery)
	}
	scope, err := who.Scope()
	d := access.Decide(who, access.AuditRead, access.OrgResource(who.OrgID))
	if err != nil || !d.Allowed {
		s.denials.RecordDenial(ctx, who, d, "audit/access")
		return Answer{}, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
	}
	snap, err := Fold(ctx, s.log, s.decoder, scope.OrgID(), q.At)
	if err != nil {
		return Answer{}, err
	}
	if q.Subject != nil {
		a := snap.Subject(*q.Subject)
		return Answer{Subject: &a}, nil
	}
	a := snap.Resource(*q.Resource)
	return Answer{Resource: &a}, nil
}
