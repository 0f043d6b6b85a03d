package main

import "testing"

// TestOrgPDFParsesLeaveParsersForOthers: by default one organization may
// hold at most half of the PDF parsers (which default to the CPUs), and
// never fewer than one, nor more than two.
func TestOrgPDFParsesLeaveParsersForOthers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ cpus, want int }{{1, 1}, {2, 1}, {3, 1}, {4, 2}, {16, 2}} {
		if got := orgPDFParses(tt.cpus); got != tt.want {
			t.Errorf("orgPDFParses(%d) = %d, want %d", tt.cpus, got, tt.want)
		}
	}
}
