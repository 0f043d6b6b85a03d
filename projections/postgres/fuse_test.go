package postgres

import (
	"reflect"
	"testing"

	"github.com/palisadehq/palisade/projections"
)

// TestFuseRankingsAsTheStatementDoes: a split search's fusion scores a
// chunk Σ 1/(rrfK + rank) over the rankings that hold it, breaks ties by
// chunk id in byte order, keeps the first k, and keeps each chunk's row.
func TestFuseRankingsAsTheStatementDoes(t *testing.T) {
	hits := func(ids ...string) []projections.ChunkHit {
		out := make([]projections.ChunkHit, len(ids))
		for i, id := range ids {
			out[i] = projections.ChunkHit{ChunkID: id, Text: "text of " + id}
		}
		return out
	}
	score := func(ranks ...int) float64 {
		var s float64
		for _, r := range ranks {
			s += 1 / float64(rrfK+r)
		}
		return s
	}
	for _, tc := range []struct {
		name              string
		k                 int
		vector, keyword   []projections.ChunkHit
		wantIDs           []string
		wantFirstScoreSum float64
	}{
		{"both rankings add up", 3, hits("a", "b", "c"), hits("c", "b", "x"), []string{"c", "b", "a"}, score(3, 1)},
		{"equal scores go by id, byte order", 2, hits("b", "a"), hits("a", "b"), []string{"a", "b"}, score(2, 1)},
		{"upper case sorts before lower case", 2, hits("a"), hits("B"), []string{"B", "a"}, score(1)},
		{"k cuts", 1, hits("a", "b"), nil, []string{"a"}, score(1)},
		{"fewer than k", 5, hits("a"), hits("b"), []string{"a", "b"}, score(1)},
		{"nothing", 3, nil, nil, []string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fuseRankings(tc.k, tc.vector, tc.keyword)
			ids := []string{}
			for _, h := range got {
				ids = append(ids, h.ChunkID)
				if h.Text != "text of "+h.ChunkID {
					t.Errorf("chunk %s came back with the row %q", h.ChunkID, h.Text)
				}
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Fatalf("fused %v, want %v", ids, tc.wantIDs)
			}
			if len(got) > 0 && got[0].Score != tc.wantFirstScoreSum {
				t.Errorf("first score %v, want %v", got[0].Score, tc.wantFirstScoreSum)
			}
		})
	}
}
