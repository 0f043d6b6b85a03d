package tenancy

import (
	"fmt"
	"time"

	"github.com/palisadehq/palisade/domain"
)

// DefaultServiceAccountTTL is how long a service account token lives when
// its creator does not say.
const DefaultServiceAccountTTL = 90 * 24 * time.Hour

// ServiceAccountExpiry is when a service account token asked for at now
// with ttl expires: ttl 0 means DefaultServiceAccountTTL, and any other ttl
// must lie between MinServiceAccountTTL and MaxServiceAccountTTL. Expiries
// are whole seconds.
func ServiceAccountExpiry(now time.Time, ttl time.Duration) (time.Time, error) {
	if ttl == 0 {
		ttl = DefaultServiceAccountTTL
	}
	if ttl < MinServiceAccountTTL || ttl > MaxServiceAccountTTL {
		return time.Time{}, fmt.Errorf("%w: ttl must be between %d and %d seconds", domain.ErrInvalid,
			int64(MinServiceAccountTTL/time.Second), int64(MaxServiceAccountTTL/time.Second))
	}
	return now.Add(ttl).UTC().Truncate(time.Second), nil
}
