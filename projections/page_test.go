package projections

import "testing"

func TestPageLimit(t *testing.T) {
	tests := []struct{ asked, want int }{
		{-1, DefaultPageLimit},
		{0, DefaultPageLimit},
		{1, 1},
		{MaxPageLimit, MaxPageLimit},
		{MaxPageLimit + 1, MaxPageLimit},
	}
	for _, tt := range tests {
		if got := PageLimit(tt.asked); got != tt.want {
			t.Errorf("PageLimit(%d) = %d, want %d", tt.asked, got, tt.want)
		}
	}
}
