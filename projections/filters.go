package projections

import (
	"fmt"

	"github.com/palisadehq/palisade/domain"
)

// MaxFilterValues bounds the values of one list-valued filter (the audit
// query's types): a query's cost must not grow with what a caller can put
// in a URL. More is a 422.
const MaxFilterValues = 50

// maxFilterLen bounds one filter value.
const maxFilterLen = 256

// Validate checks the query's filters against their bounds.
func (q AuditQuery) Validate() error {
	if len(q.Types) > MaxFilterValues {
		return fmt.Errorf("%w: at most %d type filters, got %d", domain.ErrInvalid, MaxFilterValues, len(q.Types))
	}
	for _, v := range append([]string{q.Stream, q.Actor, q.CorrelationID}, q.Types...) {
		if len(v) > maxFilterLen {
			return fmt.Errorf("%w: a filter value is longer than %d bytes", domain.ErrInvalid, maxFilterLen)
		}
	}
	return nil
}
