package memory

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/projections"
)

func TestOrgTablePage(t *testing.T) {
	tab := newOrgTable[string](nil)
	for i := range 7 {
		tab.put("org-a", fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	tab.put("org-b", "k0", "other")
	tab.delete("org-a", "k3")
	tab.delete("org-a", "missing")
	tab.delete("org-c", "k0")

	tests := []struct {
		name string
		org  string
		page projections.Page
		keep func(string) bool
		want []string
	}{
		{"all", "org-a", projections.Page{}, nil, []string{"v0", "v1", "v2", "v4", "v5", "v6"}},
		{"limit", "org-a", projections.Page{Limit: 2}, nil, []string{"v0", "v1"}},
		{"after existing", "org-a", projections.Page{After: "k1", Limit: 2}, nil, []string{"v2", "v4"}},
		{"after deleted", "org-a", projections.Page{After: "k3"}, nil, []string{"v4", "v5", "v6"}},
		{"filtered", "org-a", projections.Page{Limit: 2}, func(v string) bool { return v > "v3" }, []string{"v4", "v5"}},
		{"other org", "org-b", projections.Page{}, nil, []string{"other"}},
		{"unknown org", "org-c", projections.Page{}, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tab.page(tt.org, tt.page, tt.keep)
			if got == nil || !slices.Equal(got, tt.want) {
				t.Fatalf("page = %#v, want %#v", got, tt.want)
			}
		})
	}
	if _, ok := tab.get("org-b", "k1"); ok {
		t.Fatal("get found org-a's record in org-b")
	}
}

func TestOrgTablePageIsBoundedByPageLimit(t *testing.T) {
	tab := newOrgTable[int](nil)
	for i := range projections.MaxPageLimit + 10 {
		tab.put("org", fmt.Sprintf("k%04d", i), i)
	}
	if got := len(tab.page("org", projections.Page{}, nil)); got != projections.DefaultPageLimit {
		t.Fatalf("default page has %d records, want %d", got, projections.DefaultPageLimit)
	}
	if got := len(tab.page("org", projections.Page{Limit: 10_000}, nil)); got != projections.MaxPageLimit {
		t.Fatalf("large page has %d records, want %d", got, projections.MaxPageLimit)
	}
}

func TestOrgTableCopiesValues(t *testing.T) {
	tab := newOrgTable(slices.Clone[[]string])
	in := []string{"a"}
	tab.put("org", "k", in)
	in[0] = "changed after put"
	got, _ := tab.get("org", "k")
	got[0] = "changed after get"
	listed := tab.page("org", projections.Page{}, nil)
	listed[0][0] = "changed after page"
	all := tab.all("org")
	if all[0][0] != "a" {
		t.Fatalf("stored value = %q, want it unaffected by callers", all[0][0])
	}
}

// TestOrgTableLocksPerOrganization holds one organization's read lock, as
// a long scan would, and requires another organization's writer to finish.
func TestOrgTableLocksPerOrganization(t *testing.T) {
	tab := newOrgTable[int](nil)
	tab.put("busy", "k", 1)
	busy := tab.rows("busy", false)
	busy.mu.RLock()
	defer busy.mu.RUnlock()

	done := make(chan struct{})
	go func() {
		tab.put("other", "k", 2)
		tab.page("other", projections.Page{}, nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a write to one organization waited for another organization's reader")
	}
}
