package tenancy

import (
	"fmt"
	"math"

	"github.com/palisadehq/palisade/domain"
)

// QuotaOverrides are an organization's quotas that differ from the
// deployment's defaults. A nil field keeps the default; 0 means unlimited.
type QuotaOverrides struct {
	RequestsPerSecond   *float64 `json:"requests_per_second,omitempty"`
	RequestBurst        *int     `json:"request_burst,omitempty"`
	ConcurrentUploads   *int     `json:"concurrent_uploads,omitempty"`
	ConcurrentPDFParses *int     `json:"concurrent_pdf_parses,omitempty"`
	ConcurrentTurns     *int     `json:"concurrent_turns,omitempty"`
	ModelTokensPerHour  *int     `json:"model_tokens_per_hour,omitempty"`
	MaxBots             *int     `json:"max_bots,omitempty"`
	MaxKnowledgeBases   *int     `json:"max_knowledge_bases,omitempty"`
	MaxDocuments        *int     `json:"max_documents,omitempty"`
}

// Bounds of quota values.
const (
	MaxQuotaRate  = 1e6
	MaxQuotaCount = 1_000_000_000
)

// Validate checks every value that is set: non-negative and within bounds.
func (q QuotaOverrides) Validate() error {
	if r := q.RequestsPerSecond; r != nil && (math.IsNaN(*r) || *r < 0 || *r > MaxQuotaRate) {
		return fmt.Errorf("%w: requests_per_second must be between 0 and %g", domain.ErrInvalid, float64(MaxQuotaRate))
	}
	for name, v := range map[string]*int{
		"request_burst": q.RequestBurst, "concurrent_uploads": q.ConcurrentUploads,
		"concurrent_pdf_parses": q.ConcurrentPDFParses, "max_bots": q.MaxBots,
		"concurrent_turns": q.ConcurrentTurns, "model_tokens_per_hour": q.ModelTokensPerHour,
		"max_knowledge_bases": q.MaxKnowledgeBases, "max_documents": q.MaxDocuments,
	} {
		if v != nil && (*v < 0 || *v > MaxQuotaCount) {
			return fmt.Errorf("%w: %s must be between 0 and %d", domain.ErrInvalid, name, MaxQuotaCount)
		}
	}
	return nil
}

// OrganizationQuotasSet replaces an organization's quota overrides. The
// platform principal that set them is the event's actor.
type OrganizationQuotasSet struct {
	Quotas QuotaOverrides `json:"quotas"`
}

func (OrganizationQuotasSet) EventType() string { return "OrganizationQuotasSet" }

// SetQuotas replaces the organization's quota overrides.
func (o *Organization) SetQuotas(q QuotaOverrides) ([]domain.Event, error) {
	if err := o.mustExist(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return []domain.Event{&OrganizationQuotasSet{Quotas: q}}, nil
}
