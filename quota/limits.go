package quota

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/palisadehq/palisade/domain/tenancy"
)

// Limits are an organization's quotas. A zero field means unlimited.
type Limits struct {
	// RequestsPerSecond and RequestBurst shape each organization's token
	// bucket of authenticated requests.
	RequestsPerSecond float64
	RequestBurst      int
	// ConcurrentUploads bounds an organization's document uploads being
	// read and recorded at once; ConcurrentPDFParses its PDFs being parsed
	// at once.
	ConcurrentUploads   int
	ConcurrentPDFParses int
	// ConcurrentTurns bounds an organization's bot turns running at once.
	ConcurrentTurns int
	// ModelTokensPerHour is an organization's budget of model tokens
	// (prompt and completion), refilled continuously.
	ModelTokensPerHour int
	// MaxBots, MaxKnowledgeBases and MaxDocuments bound what an
	// organization stores (archived bots and bases do not count, deleted
	// documents do not count).
	MaxBots           int
	MaxKnowledgeBases int
	MaxDocuments      int
}

// With returns l with the overrides that are set applied.
func (l Limits) With(o tenancy.QuotaOverrides) Limits {
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	if o.RequestsPerSecond != nil {
		l.RequestsPerSecond = *o.RequestsPerSecond
	}
	set(&l.RequestBurst, o.RequestBurst)
	set(&l.ConcurrentUploads, o.ConcurrentUploads)
	set(&l.ConcurrentPDFParses, o.ConcurrentPDFParses)
	set(&l.ConcurrentTurns, o.ConcurrentTurns)
	set(&l.ModelTokensPerHour, o.ModelTokensPerHour)
	set(&l.MaxBots, o.MaxBots)
	set(&l.MaxKnowledgeBases, o.MaxKnowledgeBases)
	set(&l.MaxDocuments, o.MaxDocuments)
	return l
}

// Kinds of concurrent work.
const (
	WorkUploads   = "uploads"
	WorkPDFParses = "pdf_parses"
	WorkTurns     = "bot_turns"
)

// ErrBusy: the organization (or the deployment) is at a limit that frees
// up with time; the request may be retried after RetryError.After.
var ErrBusy = errors.New("too many requests")

// RetryError is a refusal that a later retry may pass: HTTP answers it 429
// with Retry-After.
type RetryError struct {
	// Limit says which limit was reached, for the caller.
	Limit string
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%s: %s; retry after %s", ErrBusy, e.Limit, e.After)
}

func (e *RetryError) Unwrap() error { return ErrBusy }

// RetryAfter is the wait before a retry may pass, in whole seconds (≥ 1).
func (e *RetryError) RetryAfter() time.Duration {
	s := math.Ceil(e.After.Seconds())
	return time.Duration(max(s, 1)) * time.Second
}
