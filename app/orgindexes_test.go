package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/app"
)

// TestLargeOrganizationsGetAnIndexOfTheirOwn: a server given the owner
// role's URL gives an organization that has reached the threshold indexes
// of its own (HNSW and keyword levels), and none to one below it; searches
// go on as before, and the passes are counted in the metrics.
func TestLargeOrganizationsGetAnIndexOfTheirOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	owner, appURL, schema := postgresForTest(t, dir)
	h := openHarness(t, dir, onSchema(owner, appURL, schema, false), func(cfg *app.Config) {
		cfg.OrganizationIndexInterval, cfg.OrganizationIndexMin = 50*time.Millisecond, 4
	})
	large, largeOwner := h.createOrg("Large", "lena")
	small, smallOwner := h.createOrg("Small", "sam")
	var long strings.Builder
	for i := range 12 {
		fmt.Fprintf(&long, "## Section %d\n\n%s\n\n", i, strings.Repeat(fmt.Sprintf("Refunds of kind %d are paid within %d days. ", i, i+3), 40))
	}
	kb := h.createKB(largeOwner, "Handbook")
	if doc := h.addDoc(largeOwner, kb, "Policies", "text/markdown", long.String()); doc.State != "ready" {
		t.Fatalf("large organization's document: %+v", doc)
	}
	smallKB := h.createKB(smallOwner, "Notes")
	if doc := h.addDoc(smallOwner, smallKB, "Note", "text/plain", "Refunds are paid within five days."); doc.State != "ready" {
		t.Fatalf("small organization's document: %+v", doc)
	}

	conn, err := pgx.Connect(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	predicates := func() []string {
		rows, err := conn.Query(context.Background(), `SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND (c.relname LIKE 'knowledge_chunks_embedding_org_%' OR c.relname LIKE 'knowledge_chunk_terms_levels_org_%')
				AND i.indisvalid`, schema)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var got []string
	// CREATE INDEX CONCURRENTLY waits for every older transaction of the
	// database, other tests' too: the bound is generous.
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = predicates(); len(got) > 1 {
			break
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], "'"+large+"'") || !strings.Contains(got[1], "'"+large+"'") || strings.Contains(strings.Join(got, " "), small) {
		t.Fatalf("organization indexes = %v, want two, for %s", got, large)
	}

	res := h.search(largeOwner, map[string]any{"query": "refunds of kind 7", "knowledge_base_ids": []string{kb}, "k": 3})
	if len(res.Results) == 0 {
		t.Fatal("the large organization's search found nothing")
	}
	// Its two indexes (HNSW and keyword levels) counted once the pass that
	// built them has returned.
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if metrics = string(h.must(http.StatusOK, http.MethodGet, "/metrics", "", nil).body); strings.Contains(metrics, `changes_total{change="created"} 2`) {
			break
		}
	}
	for _, want := range []string{`palisade_organization_index_changes_total{change="created"} 2`, `palisade_organization_index_passes_total{outcome="ok"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics do not hold %s", want)
		}
	}
}
