package postgres

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/readmodeltest"
)

const embeddingDims = 384

// embedding returns a unit vector that leans towards the first axis by
// closeness (1: on it) and away along axis.
func embedding(closeness float64, axis int) []float32 {
	v := make([]float32, embeddingDims)
	v[0] = float32(closeness)
	v[axis] = float32(math.Sqrt(1 - closeness*closeness))
	return v
}

func cosineDistance(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return 1 - dot/math.Sqrt(na*nb)
}

// TestKnowledgeChunksStayInTheirOrganization runs nearest-neighbour and
// keyword queries over knowledge_chunks as the application role, with raw
// SQL. The other organization's chunks are all nearer to the query than any
// of org-a's, so that a query that let them through would return them
// first.
func TestKnowledgeChunksStayInTheirOrganization(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	b := setup(t)
	ctx := b.ctx
	app := b.store.db.pool // the application role, with pgvector's types

	query := embedding(1, 1)
	type chunk struct {
		org, id, text string
		vec           []float32
	}
	var chunks []chunk
	for i := range 200 {
		chunks = append(chunks, chunk{"org-b", fmt.Sprintf("b-%03d", i), "secret plans of org b", embedding(0.99, 2+i)})
	}
	for i := range 8 {
		chunks = append(chunks, chunk{"org-a", fmt.Sprintf("a-%d", i), fmt.Sprintf("plans of org a number %d", i), embedding(0.9-0.1*float64(i), 2+i)})
	}
	for _, org := range []string{"org-a", "org-b"} {
		var stored []projections.StoredChunk
		for i, c := range chunks {
			if c.org == org {
				stored = append(stored, projections.StoredChunk{ID: c.id, KnowledgeBaseID: "kb-1", DocumentID: "doc-1",
					Ordinal: i, Text: c.text, Embedding: c.vec})
			}
		}
		b.unit(t, func(ctx context.Context) error {
			return b.store.Chunks().ReplaceChunks(ctx, scope(t, org), "doc-1", stored)
		})
	}
	var wantA []string
	byDistance := slices.Clone(chunks)
	sort.SliceStable(byDistance, func(i, j int) bool {
		return cosineDistance(byDistance[i].vec, query) < cosineDistance(byDistance[j].vec, query)
	})
	for _, c := range byDistance {
		if c.org == "org-a" && len(wantA) < 5 {
			wantA = append(wantA, c.id)
		}
	}

	// search runs stmt as the application role with org set ("" sets
	// nothing) after the settings, and returns the chunks' org/id.
	search := func(t *testing.T, org string, settings []string, stmt string, args ...any) []string {
		t.Helper()
		tx, err := app.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if org != "" {
			if _, err := tx.Exec(ctx, setOrgSQL, org); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range settings {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		rows, err := tx.Query(ctx, stmt, args...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var org, id string
			err := r.Scan(&org, &id)
			return org + "/" + id, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	prefixed := func(org string, ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = org + "/" + id
		}
		return out
	}
	want := prefixed("org-a", wantA)
	vec := pgvector.NewVector(query)

	t.Run("WhereOrgAndPolicy", func(t *testing.T) {
		got := search(t, "org-a", nil, `SELECT org_id, chunk_id FROM knowledge_chunks
			WHERE org_id = $1 ORDER BY embedding <=> $2 LIMIT 5`, "org-a", vec)
		if !slices.Equal(got, want) {
			t.Fatalf("nearest chunks of org-a = %v, want %v", got, want)
		}
	})
	t.Run("PolicyAlone", func(t *testing.T) {
		got := search(t, "org-a", nil, `SELECT org_id, chunk_id FROM knowledge_chunks ORDER BY embedding <=> $1 LIMIT 5`, vec)
		if !slices.Equal(got, want) {
			t.Fatalf("nearest chunks with only the policy = %v, want %v", got, want)
		}
	})
	t.Run("NoOrgSet", func(t *testing.T) {
		if got := search(t, "", nil, `SELECT org_id, chunk_id FROM knowledge_chunks ORDER BY embedding <=> $1 LIMIT 5`, vec); len(got) != 0 {
			t.Fatalf("without an org: %v", got)
		}
	})
	t.Run("HNSWIndex", func(t *testing.T) {
		// For an organization this small the planner rightly prefers the
		// org_id btree and an exact sort; forced through the HNSW index, the
		// org conditions filter the index's candidates: org-b's 200 nearer
		// chunks fill the default candidate list (hnsw.ef_search 40), so
		// without an iterative scan org-a gets fewer than 5 chunks (and never
		// another org's). Retrieval must turn the iterative scan on.
		forceIndex := []string{`SET LOCAL enable_seqscan = off`, `SET LOCAL enable_bitmapscan = off`, `SET LOCAL enable_sort = off`}
		stmt := `SELECT org_id, chunk_id FROM knowledge_chunks WHERE org_id = $1 ORDER BY embedding <=> $2 LIMIT 5`
		var plan []string
		tx, err := app.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range forceIndex {
			if err == nil {
				_, err = tx.Exec(ctx, s)
			}
		}
		if err == nil {
			var rows pgx.Rows
			rows, err = tx.Query(ctx, `EXPLAIN `+stmt, "org-a", vec)
			if err == nil {
				plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
		}
		_ = tx.Rollback(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(plan, "\n"), "knowledge_chunks_embedding") {
			t.Fatalf("the query does not use the HNSW index:\n%s", strings.Join(plan, "\n"))
		}
		plain := search(t, "org-a", forceIndex, stmt, "org-a", vec)
		for _, c := range plain {
			if !strings.HasPrefix(c, "org-a/") {
				t.Fatalf("through the index: %v", plain)
			}
		}
		t.Logf("through the HNSW index without an iterative scan: %d of 5 chunks", len(plain))
		got := search(t, "org-a", append(forceIndex, `SET LOCAL hnsw.iterative_scan = strict_order`), stmt, "org-a", vec)
		if !slices.Equal(got, want) {
			t.Fatalf("through the HNSW index with an iterative scan = %v, want %v", got, want)
		}
	})
	t.Run("Keywords", func(t *testing.T) {
		// With the plan left to the planner, and then with the GIN index
		// of the words' levels as the one way to find them: row-level
		// security holds either way.
		forceIndex := []string{`SET LOCAL enable_seqscan = off`, `SET LOCAL enable_indexscan = off`}
		for _, settings := range [][]string{nil, forceIndex} {
			for _, matching := range []string{
				`SELECT org_id, chunk_id FROM knowledge_chunk_terms WHERE tsv @@ plainto_tsquery('simple', $1) ORDER BY chunk_id`,
				`SELECT org_id, chunk_id FROM knowledge_chunk_terms WHERE levels @@ (quote_literal($1 || ' 0'))::tsquery ORDER BY chunk_id`,
			} {
				got := search(t, "org-a", settings, matching, "plans")
				if len(got) != 8 || slices.ContainsFunc(got, func(c string) bool { return !strings.HasPrefix(c, "org-a/") }) {
					t.Fatalf("keyword search of org-a = %v", got)
				}
				if got := search(t, "org-a", settings, matching, "secret"); len(got) != 0 {
					t.Fatalf("org-a finds org-b's words: %v", got)
				}
				if got := search(t, "", settings, matching, "plans"); len(got) != 0 {
					t.Fatalf("without an org: %v", got)
				}
			}
		}
	})
}

// TestKeywordRankingUsesTheIndexUnderRowLevelSecurity explains the search
// statement as the application role, under forced row-level security, for
// a query whose word every chunk of both organizations holds: the keyword
// ranking must find its candidates through the GIN index of the words'
// levels (an index condition on levels @@), not by filtering the
// organization's rows. That needs ts_match_vq to be leakproof in the
// database (scripts/provision-postgres marks it) and the lookups to reach
// the scan as a column. The search still finds only its own organization's
// chunks, and here the same as the exact keyword ranking, through the
// lookups and through the statement used where the index cannot serve.
func TestKeywordRankingUsesTheIndexUnderRowLevelSecurity(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	b := setup(t)
	ctx := b.ctx
	for _, org := range []string{"org-a", "org-b"} {
		var chunks []projections.StoredChunk
		for i := range 3000 {
			chunks = append(chunks, projections.StoredChunk{ID: fmt.Sprintf("%s-%04d", org, i), KnowledgeBaseID: "kb-1",
				DocumentID: fmt.Sprintf("doc-%d", i%5), Ordinal: i,
				Text:      strings.Repeat("invoice ", 1+i%7) + fmt.Sprintf("%s word%d", org, i%11),
				Embedding: readmodeltest.Embedding(0.5, 2+i%300)})
		}
		writeChunks(t, b, scope(t, org), chunks)
	}
	if _, err := b.owner.Exec(ctx, `ANALYZE knowledge_chunk_terms`); err != nil {
		t.Fatal(err)
	}
	if !b.store.Chunks().KeywordIndex() {
		t.Fatal("tsvector @@ tsquery is not leakproof in the test database: run scripts/provision-postgres")
	}
	q := projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: readmodeltest.Embedding(1, 1), Text: "invoice word3", K: 10}
	bounded := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
	// Fewer than either organization's chunks, so that the lookups run
	// (with so few chunks, the planner might read an organization's rows
	// rather than look each cell up: 3,000 make the index worth it); yet
	// the first cell, the chunks that hold word3 and invoice 6 or 7 times
	// (level 5, about 78), holds all the top 40 need.
	bounded.tuning.keywordCandidates, bounded.tuning.keywordScanMax = 100, 100
	cells, _, err := bounded.keywordCells(ctx, "org-a", q)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) == 0 {
		t.Fatal("no keyword cells planned for org-a")
	}
	// The levels probe sees only its own organization's words: org-a's
	// name is a word of org-a's chunks alone (as are its parts "org" and
	// "a": the query's three lexemes are all the cells' words).
	for org, wantOrgA := range map[string]bool{"org-a": true, "org-b": false} {
		cells, _, err := bounded.keywordCells(ctx, org, projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Text: "org-a", K: 10})
		if err != nil {
			t.Fatal(err)
		}
		named := slices.ContainsFunc(cells, func(c string) bool { return strings.Contains(c, "'org-a ") })
		if named != wantOrgA || len(cells) == 0 {
			t.Errorf("%s plans cells %v: naming org-a's word %v, want %v", org, cells, named, wantOrgA)
		}
	}
	// A query whose every word the cells hold reads fewer candidates than
	// one whose cells leave words out (wholeKeywordCandidates).
	defaults := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
	defaults.tuning.keywordScanMax = 100
	// Past maxProbedKeywordWords words the probe cannot tell whether the
	// words it did not look up are held.
	var many []string
	for i := range maxProbedKeywordWords {
		many = append(many, fmt.Sprintf("x%02d", i))
	}
	for text, want := range map[string]int{
		"invoice word3":                            wholeKeywordCandidates,
		"invoice word3 word4 word5":                keywordCandidates,
		"invoice word3 " + strings.Join(many, " "): keywordCandidates,
	} {
		_, budget, err := defaults.keywordCells(ctx, "org-a", projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Text: text, K: 10})
		if err != nil {
			t.Fatal(err)
		}
		if budget != want {
			t.Errorf("%q reads %d candidates, want %d", text, budget, want)
		}
	}
	// The rows are few: without enable_seqscan off the planner may rightly
	// read them all, and rather than look a cell up in the index it may
	// test each of the organization's 3,000 rows against it (they are half
	// the index's entries), unless testing a row is made to cost more.
	// What matters is that it can use the index at all.
	plan := explainSearch(t, b, bounded, "org-a", q, cells, `SET LOCAL enable_seqscan = off; SET LOCAL cpu_operator_cost = 0.1`)
	if !regexp.MustCompile(`Bitmap Index Scan on knowledge_chunk_terms_levels\s+Index Cond: \(\(org_id = 'org-a'::text COLLATE "C"\) AND \(levels @@ `).MatchString(plan) {
		t.Fatalf("the keyword ranking does not look its words up in the levels index under row-level security "+
			"(is pg_catalog.ts_match_vq leakproof? scripts/provision-postgres marks it):\n%s", plan)
	}

	exact := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
	exact.tuning.keywordCandidates = exactKeywords
	// Where the index cannot serve (ts_match_vq not leakproof), the
	// statement that reads every chunk holding a word.
	scan := &Chunks{db: b.store.db, tuning: defaultTuning}
	for _, org := range []string{"org-a", "org-b"} {
		want, err := exact.Search(ctx, scope(t, org), q)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*Chunks{"bounded": bounded, "scan": scan} {
			got, err := c.Search(ctx, scope(t, org), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 10 || !slices.Equal(got, want) {
				t.Fatalf("%s: %s keyword ranking = %v, exact = %v", org, name, got, want)
			}
			for _, h := range got {
				if !strings.HasPrefix(h.ChunkID, org+"-") {
					t.Fatalf("%s finds %s", org, h.ChunkID)
				}
			}
		}
	}
}

// TestKeywordCellsAreReadInTheirOrder gives the keyword statement 128
// cells whose first holds the 40 chunks that score highest and whose
// others hold every chunk, with a budget of 40: read in the cells' order,
// the first cell fills the budget and the ranking is exact. Where the
// organization's rows look cheaper to read than the cells to look up, the
// planner would rather read the rows once and test each against every cell
// (the nested loop the other way round): the budget then fills with the
// first rows in index order, and each row is tested against every cell (at
// 1,000,000 chunks, 158,570 tests and 21 ms for an organization of 1,969).
// The lookup is fenced (OFFSET 0) so that it runs per cell whatever the
// costs; here bitmap scans and materialization are turned off, which makes
// reading the rows first the cheaper plan at this small scale, as the
// index's size makes it at the large one.
func TestKeywordCellsAreReadInTheirOrder(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	b := setup(t)
	ctx := b.ctx
	var chunks []projections.StoredChunk
	for i := range 2000 {
		text := "invoice note"
		if i >= 1960 { // the highest ids: the last a scan in id order reaches
			text = strings.Repeat("invoice report ", 7)
		}
		chunks = append(chunks, projections.StoredChunk{ID: fmt.Sprintf("org-a-%04d", i), KnowledgeBaseID: "kb-1",
			DocumentID: fmt.Sprintf("doc-%d", i%5), Ordinal: i, Text: text, Embedding: readmodeltest.Embedding(0.5, 2+i%300)})
	}
	writeChunks(t, b, scope(t, "org-a"), chunks)
	if _, err := b.owner.Exec(ctx, `ANALYZE knowledge_chunk_terms`); err != nil {
		t.Fatal(err)
	}
	c := &Chunks{db: b.store.db, keywordIndex: b.store.chunks.keywordIndex, tuning: defaultTuning}
	c.tuning.keywordCandidates, c.tuning.keywordScanMax = minCandidateDepth, minCandidateDepth
	cells := []string{"'invoice 5' & 'report 5'"}
	for len(cells) < maxKeywordCells {
		cells = append(cells, "'invoice 0'")
	}
	q := projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: readmodeltest.Embedding(1, 1), Text: "invoice report", K: minCandidateDepth}
	settings, _, args := c.searchArgs("org-a", q, cells)
	const otherPlanCheaper = `SET LOCAL enable_bitmapscan = off; SET LOCAL enable_material = off`
	got := searchFirstColumn(t, b, settings, otherPlanCheaper, searchKeywordSQL, args)
	var want []string
	for i := range minCandidateDepth {
		want = append(want, fmt.Sprintf("org-a-%04d", 1960+i))
	}
	if !slices.Equal(got, want) {
		plan := searchFirstColumn(t, b, settings, otherPlanCheaper, `EXPLAIN (COSTS OFF) `+searchKeywordSQL, args)
		t.Fatalf("the keyword ranking = %v, want the first cell's chunks %v: the cells were not read in their order\n%s",
			got, want, strings.Join(plan, "\n"))
	}
}

// explainSearch returns the plan of c's search statement for org, q and
// cells, as the application role under row-level security, after the
// search's settings and then setting (SET LOCAL …), with EXPLAIN's options
// besides COSTS OFF.
func explainSearch(t *testing.T, b *bundle, c *Chunks, org string, q projections.ChunkQuery, cells []string, setting string, options ...string) string {
	t.Helper()
	settings, stmt, args := c.searchArgs(org, q, cells)
	lines := searchFirstColumn(t, b, settings, setting, `EXPLAIN (`+strings.Join(append(options, "COSTS OFF"), ", ")+`) `+stmt, args)
	return strings.Join(lines, "\n")
}

// searchFirstColumn runs stmt as the application role in a read-only
// transaction, after searchSettingsSQL with settings and then setting (SET
// LOCAL …), and returns the text of each row's first column.
func searchFirstColumn(t *testing.T, b *bundle, settings []any, setting, stmt string, args []any) []string {
	t.Helper()
	var out []string
	err := pgx.BeginTxFunc(b.ctx, b.store.db.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(b.ctx, searchSettingsSQL, settings...); err != nil {
			return err
		}
		if _, err := tx.Exec(b.ctx, setting); err != nil {
			return err
		}
		rows, err := tx.Query(b.ctx, stmt, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
			var first string
			vals, err := row.Values()
			if err == nil && len(vals) > 0 {
				first, _ = vals[0].(string)
			}
			return first, err
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
