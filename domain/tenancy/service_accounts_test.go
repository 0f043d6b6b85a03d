package tenancy

import (
	"errors"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
)

func TestServiceAccountExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Time
		err  error
	}{
		{"zero takes the default", 0, now.Add(DefaultServiceAccountTTL).Truncate(time.Second), nil},
		{"shortest", MinServiceAccountTTL, now.Add(MinServiceAccountTTL).Truncate(time.Second), nil},
		{"longest", MaxServiceAccountTTL, now.Add(MaxServiceAccountTTL).Truncate(time.Second), nil},
		{"too short", MinServiceAccountTTL - time.Second, time.Time{}, domain.ErrInvalid},
		{"too long", MaxServiceAccountTTL + time.Second, time.Time{}, domain.ErrInvalid},
		{"negative", -time.Hour, time.Time{}, domain.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ServiceAccountExpiry(now, tt.ttl)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("expiry = %v, want %v", got, tt.want)
			}
		})
	}
}
