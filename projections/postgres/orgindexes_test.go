package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/readmodeltest"
)

// TestOrganizationIndexes runs IndexOrganizations over two organizations,
// one above the threshold and one below, and checks what a pass builds,
// keeps and drops; that the large organization's vector search walks its
// own index, and finds what the exact ranking finds; that the other's
// never names it; and that a second pass at once does nothing.
func TestOrganizationIndexes(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	b := setup(t)
	ctx := b.ctx
	sizes := map[string]int{"org-a": 600, "org-b": 150}
	for org, n := range sizes {
		var chunks []projections.StoredChunk
		for i := range n {
			chunks = append(chunks, projections.StoredChunk{ID: fmt.Sprintf("%s-%04d", org, i), KnowledgeBaseID: "kb-1",
				DocumentID: fmt.Sprintf("doc-%d", i%5), Ordinal: i, Text: "policy " + org,
				Embedding: readmodeltest.Embedding(0.3+0.6*float64(i%17)/17, 2+i%300)})
		}
		writeChunks(t, b, scope(t, org), chunks)
	}
	const min = 400

	report, err := IndexOrganizations(ctx, db.ownerURL, b.schema, min)
	if err != nil {
		t.Fatal(err)
	}
	levelsIndex := orgLevelsIndexPrefix + orgIndexHash("org-a")
	if want := []string{levelsIndex, orgIndexName("org-a")}; !slices.Equal(report.Created, want) || len(report.Dropped) != 0 || report.Kept != 0 {
		t.Fatalf("first pass = %+v, want created %v only", report, want)
	}
	for _, name := range []string{levelsIndex, orgIndexName("org-a")} {
		var predicate string
		if err := b.owner.QueryRow(ctx, `SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			WHERE c.relname = $1 AND c.relnamespace = $2::regnamespace`, name, b.schema).Scan(&predicate); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(predicate, `'org-a'::text COLLATE "C"`) {
			t.Fatalf("%s is for %s", name, predicate)
		}
	}
	if report, err = IndexOrganizations(ctx, db.ownerURL, b.schema, min); err != nil || len(report.Created)+len(report.Dropped)+len(report.Rebuilt) != 0 || report.Kept != 2 {
		t.Fatalf("second pass = %+v, %v; want org-a's indexes kept", report, err)
	}

	// Chunks written now gather in the keyword indexes' pending lists,
	// org-a's own and the shared one, but never past 256 kB (32 pages),
	// since every lookup reads the whole list; with PostgreSQL's default
	// of 4 MB these writes leave more (gin_clean_pending_list counts the
	// pages it moves out of a list).
	var more []projections.StoredChunk
	for i := range 400 {
		text := "policy renewal"
		for j := range 30 {
			text += fmt.Sprintf(" term%03d", (i+j)%500)
		}
		more = append(more, projections.StoredChunk{ID: fmt.Sprintf("org-a-more-%03d", i), KnowledgeBaseID: "kb-1",
			DocumentID: fmt.Sprintf("doc-more-%d", i/40), Ordinal: i, Text: text, Embedding: readmodeltest.Embedding(0.5, 2+i%300)})
	}
	writeChunks(t, b, scope(t, "org-a"), more)
	for _, index := range []string{levelsIndex, "knowledge_chunk_terms_levels"} {
		var pending int64
		if err := b.owner.QueryRow(ctx, `SELECT gin_clean_pending_list($1::regclass)`, index).Scan(&pending); err != nil || pending > 32 {
			t.Errorf("%s held %d pages of pending entries after the writes, want at most 32: %v", index, pending, err)
		}
	}
	deleteDocuments(t, b, scope(t, "org-a"), more)

	// An index built with pgvector's default parameters (as before
	// orgIndexBuildOptions) is built anew under its name, and a
	// replacement that a pass cut short left behind goes.
	name := orgIndexName("org-a")
	for _, stmt := range []string{
		`DROP INDEX ` + pgx.Identifier{name}.Sanitize(),
		`CREATE INDEX ` + pgx.Identifier{name}.Sanitize() + ` ON knowledge_chunks USING hnsw (embedding vector_cosine_ops) WHERE org_id = 'org-a'`,
		`CREATE INDEX ` + pgx.Identifier{orgIndexName("org-b") + orgIndexNextSuffix}.Sanitize() + ` ON knowledge_chunks USING hnsw (embedding vector_cosine_ops) WHERE org_id = 'org-b'`,
	} {
		if _, err := b.owner.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	report, err = IndexOrganizations(ctx, db.ownerURL, b.schema, min)
	if err != nil || !slices.Equal(report.Rebuilt, []string{name}) || !slices.Equal(report.Dropped, []string{orgIndexName("org-b") + orgIndexNextSuffix}) ||
		len(report.Created) != 0 || report.Kept != 1 {
		t.Fatalf("pass over an index of old parameters = %+v, %v; want it rebuilt and the leftover dropped", report, err)
	}
	var (
		options []string
		valid   bool
		count   int
	)
	if err := b.owner.QueryRow(ctx, `SELECT c.reloptions, i.indisvalid, (SELECT count(*) FROM pg_class o WHERE o.relnamespace = c.relnamespace AND starts_with(o.relname, $2))
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`, name, orgIndexPrefix).Scan(&options, &valid, &count); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(options, []string{"ef_construction=128"}) || !valid || count != 1 {
		t.Fatalf("after the rebuild: %s has options %q, valid %v; %d organization indexes in all, want 1", name, options, valid, count)
	}

	// Both organizations cover more chunks than the exact scan may read
	// here, so their searches go through an HNSW index.
	viaIndex := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
	viaIndex.tuning.exactScanMax = 100
	exact := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
	q := projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: readmodeltest.Embedding(0.9, 7), K: 10}
	for org, own := range map[string]bool{"org-a": true, "org-b": false} {
		plan := explainSearch(t, b, viaIndex, org, q, nil, sortsOff)
		walks := "Index Scan using knowledge_chunks_embedding on knowledge_chunks"
		if own {
			walks = "Index Scan using " + orgIndexName("org-a") + " on knowledge_chunks"
		}
		if !strings.Contains(plan, walks) || !own && strings.Contains(plan, "Index Scan using "+orgIndexPrefix) {
			t.Errorf("%s: the plan does not walk %q alone:\n%s", org, walks, plan)
		}
		got, err := viaIndex.Search(ctx, scope(t, org), q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := exact.Search(ctx, scope(t, org), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("%s: through the index %v, exact %v", org, ids(got), ids(want))
		}
	}

	// The keyword ranking's lookups, and the levels probe's, go to org-a's
	// own levels index alone (not ANDed with org-a's entry in the shared
	// one), and org-b's never to it. The rows are few: without
	// enable_seqscan and enable_material off the planner may rightly read
	// them all (and for org-b's 150 it still does).
	kq := q
	kq.Text = "policy"
	levelsScans := regexp.MustCompile(`Bitmap Index Scan on (knowledge_chunk_terms_levels\S*)`)
	for org, want := range map[string]string{"org-a": levelsIndex, "org-b": "knowledge_chunk_terms_levels"} {
		plans := map[string]string{"search": explainSearch(t, b, viaIndex, org, kq, []string{"'policy 0'"}, `SET LOCAL enable_seqscan = off; SET LOCAL enable_material = off`)}
		err := pgx.BeginTxFunc(ctx, b.store.db.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, keywordLevelsSettingsSQL, org); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_material = off`); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `EXPLAIN (COSTS OFF) `+keywordLevelsSQL, org, kq.KnowledgeBaseIDs, kq.Text, topKeywordLevel, 1, maxProbedKeywordWords)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			plans["levels probe"] = strings.Join(lines, "\n")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for stmt, plan := range plans {
			var scanned []string
			for _, m := range levelsScans.FindAllStringSubmatch(plan, -1) {
				scanned = append(scanned, m[1])
			}
			if org == "org-a" && len(scanned) == 0 || slices.ContainsFunc(scanned, func(s string) bool { return s != want }) {
				t.Errorf("%s's %s looks its words up in %q, want %s alone:\n%s", org, stmt, scanned, want, plan)
			}
		}
	}

	// Where the organization has its index, the exact scan gives way to it
	// from the lesser threshold (indexedExactScanMax) on; elsewhere at the
	// usual one. Which branch ran, EXPLAIN ANALYZE says.
	for _, c := range []struct {
		org                 string
		indexedExactScanMax int
		walked              string
	}{
		{"org-a", 100, orgIndexName("org-a")}, // 600 chunks, indexed: past 100, its own graph
		{"org-a", 10000, ""},                  // below the lesser threshold: exact
		{"org-b", 100, ""},                    // 150 chunks, no index of its own: exact up to 20,000
	} {
		gated := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
		gated.tuning.indexedExactScanMax = c.indexedExactScanMax
		plan := explainSearch(t, b, gated, c.org, q, nil, sortsOff, "ANALYZE", "TIMING OFF", "SUMMARY OFF")
		var walked []string
		for _, line := range strings.Split(plan, "\n") {
			if m := regexp.MustCompile(`Index Scan using (knowledge_chunks_embedding\S*) on`).FindStringSubmatch(line); m != nil && !strings.Contains(line, "never executed") {
				walked = append(walked, m[1])
			}
		}
		if want := []string{c.walked}; c.walked == "" && len(walked) != 0 || c.walked != "" && !slices.Equal(walked, want) {
			t.Errorf("%s, indexed threshold %d: walked HNSW indexes %q, want %q\n%s", c.org, c.indexedExactScanMax, walked, c.walked, plan)
		}
	}

	// A pass while another session holds the lock does nothing.
	lock, err := b.owner.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock($1)`, advisoryLockID(b.schema+"/organization-indexes")); err != nil {
		t.Fatal(err)
	}
	report, err = IndexOrganizations(ctx, db.ownerURL, b.schema, 100)
	if err != nil || !report.Skipped || len(report.Created) != 0 {
		t.Errorf("pass under another session's lock = %+v, %v; want skipped", report, err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock($1)`, advisoryLockID(b.schema+"/organization-indexes")); err != nil {
		t.Fatal(err)
	}
	lock.Release()

	// Below half the threshold, the index goes.
	b.unit(t, func(ctx context.Context) error {
		for i := range 4 {
			if err := b.store.Chunks().DeleteChunks(ctx, scope(t, "org-a"), fmt.Sprintf("doc-%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	report, err = IndexOrganizations(ctx, db.ownerURL, b.schema, min)
	if want := []string{levelsIndex, orgIndexName("org-a")}; err != nil || !slices.Equal(report.Dropped, want) || len(report.Created) != 0 {
		t.Fatalf("pass after org-a shrank to 120 chunks = %+v, %v; want its indexes dropped", report, err)
	}
	if plan := explainSearch(t, b, viaIndex, "org-a", q, nil, sortsOff); strings.Contains(plan, "Index Scan using "+orgIndexPrefix) {
		t.Fatalf("org-a's search still names a dropped index:\n%s", plan)
	}
}

// TestOrganizationIndexMaintenanceStaysWithTheOwner checks migration
// 00020's policy from both sides: the owner counts every organization's
// chunks only in a session that asked for maintenance, and the
// application role, whatever it sets, still sees its own organization's
// chunks alone.
func TestOrganizationIndexMaintenanceStaysWithTheOwner(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	b := setup(t)
	ctx := b.ctx
	for org, n := range map[string]int{"org-a": 7, "org-b": 3} {
		var chunks []projections.StoredChunk
		for i := range n {
			chunks = append(chunks, projections.StoredChunk{ID: fmt.Sprintf("%s-%d", org, i), KnowledgeBaseID: "kb-1",
				DocumentID: "doc-1", Ordinal: i, Text: "x", Embedding: readmodeltest.Embedding(0.5, 2+i)})
		}
		writeChunks(t, b, scope(t, org), chunks)
	}
	count := func(pool interface {
		Begin(context.Context) (pgx.Tx, error)
	}, settings map[string]string) int {
		t.Helper()
		var n int
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for name, value := range settings {
				if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, name, value); err != nil {
					return err
				}
			}
			return tx.QueryRow(ctx, `SELECT count(*) FROM knowledge_chunks`).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	maintenance := map[string]string{"palisade.maintenance": "organization-indexes"}
	for _, c := range []struct {
		name     string
		owner    bool
		settings map[string]string
		want     int
	}{
		{"owner, no setting", true, nil, 0},
		{"owner, maintenance", true, maintenance, 10},
		{"owner, other maintenance value", true, map[string]string{"palisade.maintenance": "on"}, 0},
		{"app, maintenance", false, maintenance, 0},
		{"app as org-b, maintenance", false, map[string]string{"palisade.maintenance": "organization-indexes", "palisade.org_id": "org-b"}, 3},
		{"app as org-b", false, map[string]string{"palisade.org_id": "org-b"}, 3},
	} {
		var got int
		if c.owner {
			got = count(b.owner, c.settings)
		} else {
			got = count(b.store.db.pool, c.settings)
		}
		if got != c.want {
			t.Errorf("%s: sees %d chunks, want %d", c.name, got, c.want)
		}
	}
}

func TestOrgLiteral(t *testing.T) {
	for _, c := range []struct {
		org, want string
		err       bool
	}{
		{"org-a", "'org-a'", false},
		{"01JBCD_x.y:z", "'01JBCD_x.y:z'", false},
		{"", "", true},
		{"a'b", "", true},
		{`a\b`, "", true},
		{"a b", "", true},
		{"é", "", true},
	} {
		got, err := orgLiteral(c.org)
		if got != c.want || (err != nil) != c.err || err != nil && !errors.Is(err, errOrgID) {
			t.Errorf("orgLiteral(%q) = %q, %v", c.org, got, err)
		}
	}
}

func TestIndexOrganizationsRefusesTooSmallAThreshold(t *testing.T) {
	if _, err := IndexOrganizations(context.Background(), "postgres://unused", "", 1); err == nil {
		t.Fatal("a threshold of 1 chunk was accepted")
	}
}

func ids(hits []projections.ChunkHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ChunkID
	}
	return out
}

// sortsOff is for explainSearch: so few rows sort faster than any index
// walks them, and without it the planner rightly sorts them. What matters
// here is which HNSW index it takes when it takes one.
const sortsOff = `SET LOCAL enable_sort = off`
