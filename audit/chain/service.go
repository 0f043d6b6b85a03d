package chain

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// DenialRecorder records a refused read in the organization's security
// stream (commands.Pipeline implements it).
type DenialRecorder interface {
	RecordDenial(ctx context.Context, who access.Principal, d access.Decision, resource string)
}

// Service answers the audit API's checkpoint and verification reads: for
// audit:read, and only ever about the caller's own organization.
type Service struct {
	log     Log
	record  RecordReader
	keys    PublicKeys
	denials DenialRecorder
}

// NewService returns the service over the raw log and the record (the
// shared one, with several replicas, so that every replica answers alike).
func NewService(log Log, record RecordReader, keys PublicKeys, denials DenialRecorder) *Service {
	return &Service{log: log, record: record, keys: keys, denials: denials}
}

// MaxCheckpointPage bounds a page of checkpoints.
const MaxCheckpointPage = 500

// authorize returns the caller's scope if it holds audit:read.
func (s *Service) authorize(ctx context.Context, who access.Principal, resource string) (access.Scope, error) {
	scope, err := who.Scope()
	d := access.Decide(who, access.AuditRead, access.OrgResource(who.OrgID))
	if err == nil && d.Allowed {
		return scope, nil
	}
	s.denials.RecordDenial(ctx, who, d, resource)
	return access.Scope{}, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
}

// Checkpoints returns up to limit (1 … MaxCheckpointPage, default 50) of
// the caller's organization's checkpoints after seq after.
func (s *Service) Checkpoints(ctx context.Context, who access.Principal, after uint64, limit int) ([]Checkpoint, error) {
	scope, err := s.authorize(ctx, who, "audit/checkpoints")
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxCheckpointPage)
	page, err := s.record.Checkpoints(ctx, scope.OrgID(), after, limit)
	if page == nil && err == nil {
		page = []Checkpoint{}
	}
	return page, err
}

// Verify verifies the caller's organization's chain.
func (s *Service) Verify(ctx context.Context, who access.Principal) (Report, error) {
	scope, err := s.authorize(ctx, who, "audit/verify")
	if err != nil {
		return Report{}, err
	}
	reports, err := Verify(ctx, s.log, s.record, s.keys, scope.OrgID())
	if err != nil {
		return Report{}, err
	}
	return reports[0], nil
}
