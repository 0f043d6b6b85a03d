package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// searchTuning holds the parameters of the two rankings; tests change
// them to measure one of its branches alone.
type searchTuning struct {
	// exactScanMax is the most covered chunks ranked by an exact scan;
	// indexedExactScanMax, if less, is that most for an organization with
	// an HNSW index of its own (IndexOrganizations).
	exactScanMax, indexedExactScanMax int
	// efSearch is hnsw.ef_search; maxScanTuples is hnsw.max_scan_tuples.
	efSearch, maxScanTuples int
	// candidates is how many covered chunks the HNSW branch takes from the
	// index (at least the candidate depth) before ranking them exactly.
	candidates int
	// iterativeScan is hnsw.iterative_scan.
	iterativeScan string
	// keywordCandidates is how many covered chunks the keyword ranking
	// reads, cell by cell, before ranking them all exactly; exactKeywords
	// reads every chunk that holds a word. Up to keywordScanMax covered
	// chunks (or keywordCandidates, if more), it reads every chunk that
	// holds a word. wholeKeywordCandidates, if less, is how many it reads
	// when the cells are made of every word of the query that a covered
	// chunk holds.
	keywordCandidates, wholeKeywordCandidates, keywordScanMax int
}

var defaultTuning = searchTuning{
	exactScanMax:        exactScanMaxChunks,
	indexedExactScanMax: indexedExactScanMaxChunks,
	efSearch:            hnswEfSearch,
	maxScanTuples:       hnswMaxScanTuples,
	candidates:          hnswCandidates,
	iterativeScan:       "relaxed_order",

	keywordCandidates:      keywordCandidates,
	wholeKeywordCandidates: wholeKeywordCandidates,
	keywordScanMax:         keywordScanMax,
}

// Search parameters. See Search for why they are what they are.
const (
	// rrfK is the constant of reciprocal rank fusion: score = Σ 1/(rrfK+rank),
	// as in the memory adapter.
	rrfK = 60
	// minCandidateDepth is the least number of candidates each ranking
	// contributes to the fusion; a query for k takes max(4k, 40).
	minCandidateDepth = 40
	// exactScanMaxChunks is the most chunks a search may cover and still
	// rank them by an exact scan rather than through the HNSW index.
	exactScanMaxChunks = 20000
	// indexedExactScanMaxChunks is that most for an organization with an
	// HNSW index of its own: its graph leads to its chunks as fast as an
	// exact scan reads this many.
	indexedExactScanMaxChunks = 10000
	// hnswEfSearch is the HNSW candidate list of an index scan (default 40).
	hnswEfSearch = 400
	// hnswMaxScanTuples bounds how many index tuples an iterative scan
	// visits before it gives up (default 20,000).
	hnswMaxScanTuples = 100000
	// hnswCandidates is how many covered chunks the HNSW branch takes from
	// the index before it ranks them exactly and keeps the candidate depth.
	hnswCandidates = 400
	// keywordCandidates is how many covered chunks the keyword ranking
	// reads, cell by cell (planKeywordCells), before it ranks them all
	// exactly.
	keywordCandidates = 400
	// wholeKeywordCandidates is that many where the cells are made of every
	// word of the query that a covered chunk holds (a query of up to
	// maxKeywordCellWords words): each chunk's whole score then lies
	// between its cell's bounds, so the cells come in the order of the
	// scores up to a level's width and fewer candidates hold the top ones.
	// At 1,000,000 chunks, 200 instead of 400 kept three-word hybrid
	// recall@10 at 1.000 for every organization measured and took the
	// largest organization's hybrid search from 18.4 to 15.4 ms
	// (BENCHMARKS.md). A longer query's cells leave words out, whose
	// chunks only a deeper read finds: it keeps keywordCandidates.
	wholeKeywordCandidates = 200
	// keywordScanMax is the most covered chunks the keyword ranking reads
	// all of (those that hold a word of the query) rather than looking
	// them up by cells: for a small organization the lookups cost more,
	// and find less, than reading its chunks.
	keywordScanMax = 1000
	// maxProbedKeywordWords is how many of the query's words the levels
	// probe looks up.
	maxProbedKeywordWords = 32
	// exactKeywords, as keywordCandidates, reads every covered chunk that
	// holds a word of the query: the exact keyword ranking.
	exactKeywords = math.MaxInt32
	// topKeywordLevel is the highest level of migration 00017's levels
	// column: floor(3 ln 256), PostgreSQL keeping at most 256 positions of
	// a lexeme.
	topKeywordLevel = 16
)

// searchSettingsSQL sets, for the search's own read-only transaction, the
// organization and what the vector ranking needs: the HNSW scan's width
// and its iterative mode (pgvector 0.8), a fresh plan on every call (a
// generic plan cannot know whether the organization is small or large), no
// parallel workers (starting them costs more than the whole search) and no
// JIT compilation (the estimated cost of the branch that does not run would
// trigger it, at tens of milliseconds, for a statement that takes a few).
const searchSettingsSQL = `SELECT set_config('palisade.org_id', $1, true),
	set_config('hnsw.ef_search', $2, true),
	set_config('hnsw.max_scan_tuples', $3, true),
	set_config('hnsw.iterative_scan', $4, true),
	set_config('plan_cache_mode', 'force_custom_plan', true),
	set_config('max_parallel_workers_per_gather', '0', true),
	set_config('jit', 'off', true)`

// keywordLevelsSettingsSQL sets, for keywordLevelsSQL's own transaction,
// the organization, a fresh plan on every call and no JIT compilation, for
// the reasons searchSettingsSQL gives: a generic plan cannot see that the
// organization has an index of its own (IndexOrganizations), and the
// estimated cost of probing a large organization's levels crosses the JIT
// threshold for a statement that takes a millisecond.
const keywordLevelsSettingsSQL = `SELECT set_config('palisade.org_id', $1, true),
	set_config('plan_cache_mode', 'force_custom_plan', true),
	set_config('jit', 'off', true)`

// searchSQL ranks, fuses and returns in one statement. Parameters: $1 org,
// $2 knowledge base ids, $3 query vector, $4 query text, $5 candidate
// depth, $6 k, $7 exactScanMaxChunks, $8 how many chunks the HNSW branch
// takes from the index before ranking them exactly, $9 rrfK, $10
// indexedExactScanMaxChunks, $11 the keyword ranking's cells
// (planKeywordCells: tsquery texts, in the order to read them), $12 how
// many chunks the keyword ranking reads through them, $13 the most covered
// chunks it reads all of instead.
//
// Every ranking reads under org_id = $1 AND knowledge_base_id = ANY($2):
// the restriction is part of each scan (invariant 7), and row-level
// security applies it once more.
//
// covered counts the chunks the search covers, but never past $7 + 1: an
// index-only scan of (org_id, knowledge_base_id) that stops there, so its
// cost is bounded whatever the organization's size. vector_gate compares
// it with $7, or with the lesser $10 where the organization has a valid
// HNSW index of its own (orgIndexName, computed here from $1; the planner
// walks that index for approximate). Each runs once (an InitPlan); exact
// and approximate each carry a one-time filter on the gate, so only one of
// them runs. exact orders by the distance plus zero, which no
// index provides, so it reads the covered chunks by the btree and keeps the
// $5 nearest with a top-N sort: exact, and at most $7 distances.
// approximate orders by the distance itself, which the HNSW index provides,
// with the restriction as a filter; the iterative scan goes on through the
// graph until $8 covered chunks have passed the filter, and MATERIALIZED
// keeps the exact re-ranking outside from being folded into it.
//
// The keyword ranking scores as the memory adapter does: a chunk holding
// any of the query's words (the lexemes of to_tsvector('simple', $4),
// lower-cased words) scores, for each word it holds n times, (times in the
// query) · (1 + ln n); setweight and ts_filter cut the chunk's tsvector
// down to the query's words before they are counted. But it scores only
// candidates: the first $11 covered chunks that the cells $10 find, in
// the order of the cells, through the GIN index of (org_id, levels) of
// knowledge_chunk_terms (migration 00017). Each cell is one lookup, a
// conjunction of '<word> <level>' lexemes; planKeywordCells orders them so
// that the chunks that could score highest are read first, and a chunk
// found by several cells is scored once. (The order is the plan's: a
// nested loop over the unnested array, no sort. The lookup is fenced by
// OFFSET 0 so that it stays a subquery run once per cell: unfenced, the
// planner may find it cheaper to read the organization's rows once and
// test each against every cell, as it did for organizations of one to two
// thousand chunks in a table of a million; the budget then filled with the
// first rows in index order, whichever cells they matched, and each row
// was tested against every cell, 22 to 33 ms instead of 5 to 7
// (TestKeywordCellsAreReadInTheirOrder). Were the order lost, only the
// choice of candidates would suffer, never a score, and never the
// organization.) When the search covers no more than $12 chunks (at least
// $11), the lookups would find most chunks that hold a word anyway, and
// cost more than reading them: the second branch, gated like the vector ranking's
// by covered, reads the covered chunks that hold a word of the query
// instead (the OR of the words is plainto_tsquery's AND with its operators
// swapped; a lexeme holds no space), and $10 is empty. The cells reach the
// scan as a column (c.cell) of the unnested parameter rather than as an
// expression: under row-level security a condition that applied a
// function that is not leakproof (the cast that builds the tsquery) to a
// column would not be used as an index condition. ts_match_vq (@@) itself
// must be leakproof in the database for the index to serve (migration
// 00017 says why it may be); without it the same statement filters the
// organization's rows instead, as slowly as an exact ranking. With $11 at
// least as large as the organization the ranking is exact (exactKeywords;
// the tests measure the bounded one's recall against it). An empty query
// has no words, so no cells.
const (
	// coveredSQL and coveredEndSQL enclose the bound of the count of
	// covered chunks that a statement's covered opens with (see searchSQL).
	coveredSQL = `WITH covered AS (
	SELECT count(*) AS n FROM (
		SELECT FROM knowledge_chunks WHERE org_id = $1 AND knowledge_base_id = ANY($2) LIMIT `
	coveredEndSQL = `
	) c
),
`

	searchSQL = searchHeadSQL + keywordIndexSQL + searchTailSQL
	// searchScanSQL is searchSQL where the keyword index cannot serve
	// (see Chunks.keywordIndex).
	searchScanSQL = searchHeadSQL + keywordScanSQL + searchTailSQL
	// searchVectorSQL is searchSQL for a query without text: no keyword
	// ranking, so nothing of it to plan (a fresh plan is made for every
	// search, and the keyword ranking's part of it cost the smallest
	// organizations' vector searches about a third of their time).
	searchVectorSQL = searchHeadSQL + keywordNoneSQL + searchTailSQL

	searchHeadSQL = `
` + coveredSQL + `$7 + 1` + coveredEndSQL + `vector_gate AS (
	SELECT (SELECT n FROM covered) <= CASE
		WHEN coalesce((SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass('` + orgIndexPrefix + `' ||
			left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), ` + orgIndexHashDigits + `))), false)
		THEN least($7::bigint, $10::bigint) ELSE $7::bigint END AS exact
),
exact AS (
	SELECT chunk_id, embedding <=> $3 AS distance
	FROM knowledge_chunks
	WHERE org_id = $1 AND knowledge_base_id = ANY($2) AND (SELECT exact FROM vector_gate)
		AND embedding IS NOT NULL
	ORDER BY (embedding <=> $3) + 0, chunk_id
	LIMIT $5
),
approximate AS MATERIALIZED (
	SELECT chunk_id, embedding <=> $3 AS distance
	FROM knowledge_chunks
	WHERE org_id = $1 AND knowledge_base_id = ANY($2) AND NOT (SELECT exact FROM vector_gate)
		AND embedding IS NOT NULL
	ORDER BY embedding <=> $3
	LIMIT $8
),
by_vector AS (
	SELECT chunk_id, row_number() OVER (ORDER BY distance, chunk_id) AS rank
	FROM (
		SELECT chunk_id, distance FROM exact
		UNION ALL
		(SELECT chunk_id, distance FROM approximate ORDER BY distance, chunk_id LIMIT $5)
	) v
),
`
	keywordIndexSQL = `keyword_candidates AS (
	SELECT DISTINCT ON (k.chunk_id) k.chunk_id, k.tsv
	FROM (
		SELECT k.chunk_id, k.tsv
		FROM (
			SELECT t.chunk_id, t.tsv
			FROM unnest($11::text[]::tsquery[]) AS c (cell)
			CROSS JOIN LATERAL (
				SELECT t.chunk_id, t.tsv FROM knowledge_chunk_terms t
				WHERE t.org_id = $1 AND t.knowledge_base_id = ANY($2) AND t.levels @@ c.cell
				OFFSET 0
			) t
			LIMIT $12
		) k
		WHERE (SELECT n FROM covered) > $13
		UNION ALL
		SELECT t.chunk_id, t.tsv FROM knowledge_chunk_terms t
		WHERE t.org_id = $1 AND t.knowledge_base_id = ANY($2) AND (SELECT n FROM covered) <= $13
			AND numnode(plainto_tsquery('simple', $4)) > 0
			AND t.tsv @@ replace(plainto_tsquery('simple', $4)::text, ' & ', ' | ')::tsquery
	) k
	ORDER BY k.chunk_id
),
by_keyword AS (
	SELECT chunk_id, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
	FROM (
		SELECT c.chunk_id, sum(cardinality(q.positions) * (1 + ln(cardinality(l.positions)::float8))) AS score
		FROM keyword_candidates c
		CROSS JOIN LATERAL unnest(ts_filter(setweight(c.tsv, 'A', tsvector_to_array(to_tsvector('simple', $4))), '{a}')) l
		JOIN unnest(to_tsvector('simple', $4)) q ON q.lexeme = l.lexeme
		GROUP BY c.chunk_id
		ORDER BY score DESC, c.chunk_id
		LIMIT $5
	) k
),
`
	// keywordScanSQL ranks exactly, reading every covered chunk that holds
	// a word of the query: the OR of the words is plainto_tsquery's AND with
	// its operators swapped (a lexeme holds no space). It does not use $11
	// to $13.
	keywordScanSQL = `by_keyword AS (
	SELECT chunk_id, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
	FROM (
		SELECT c.chunk_id,
			(SELECT sum(cardinality(q.positions) * (1 + ln(cardinality(l.positions)::float8)))
			 FROM unnest(ts_filter(setweight(c.tsv, 'A', tsvector_to_array(to_tsvector('simple', $4))), '{a}')) l
			 JOIN unnest(to_tsvector('simple', $4)) q ON q.lexeme = l.lexeme) AS score
		FROM knowledge_chunk_terms c
		WHERE c.org_id = $1 AND c.knowledge_base_id = ANY($2)
			AND numnode(plainto_tsquery('simple', $4)) > 0
			AND c.tsv @@ replace(plainto_tsquery('simple', $4)::text, ' & ', ' | ')::tsquery
		ORDER BY score DESC, c.chunk_id
		LIMIT $5
	) k
),
`
	// keywordLevelsSQL returns the words of the query $3 (at most $6 of
	// them, the most repeated first) with how often the query holds each
	// and the highest level at which a covered chunk holds it (-1 for
	// none), probing the levels index from $4 down; no words where the
	// search covers no more than $5 chunks, whose keyword ranking reads
	// them all. The lookups reach the index as a column (l.level), for the
	// reason searchSQL's comment gives.
	keywordLevelsSQL = `
` + coveredSQL + `$5 + 1` + coveredEndSQL + `words AS (
	SELECT q.lexeme, cardinality(q.positions) AS times, ARRAY(
		SELECT ('''' || replace(replace(q.lexeme || ' ' || l, '\', '\\'), '''', '''''') || '''')::tsquery
		FROM generate_series($4::integer, 0, -1) AS l
	) AS levels
	FROM unnest(to_tsvector('simple', $3)) AS q
	WHERE (SELECT n FROM covered) > $5
	ORDER BY cardinality(q.positions) DESC, q.lexeme
	LIMIT $6
)
SELECT w.lexeme, w.times, coalesce((
	SELECT $4::integer + 1 - l.n::integer
	FROM unnest(w.levels) WITH ORDINALITY AS l (level, n)
	WHERE EXISTS (
		SELECT FROM knowledge_chunk_terms t
		WHERE t.org_id = $1 AND t.knowledge_base_id = ANY($2) AND t.levels @@ l.level
	)
	LIMIT 1
), -1)
FROM words w`
	// searchKeywordSQL is searchSQL's keyword ranking alone, fused with
	// nothing (so its rows come in keyword rank order, up to $6): the half
	// of a split search (Chunks.searchSplit) that the vector ranking does
	// not run. vectorNoneSQL names $3, $8 and $10 so that the parameters
	// stay searchSQL's, and its count of the covered chunks stops past $13, all
	// the keyword ranking compares it with (not past $7: counting 20,001
	// index entries cost a large organization's search about 4 ms).
	searchKeywordSQL = vectorNoneSQL + keywordIndexSQL + searchTailSQL
	vectorNoneSQL    = `
` + coveredSQL + `least($7::bigint, $13::bigint) + 1` + coveredEndSQL + `by_vector AS (
	SELECT ''::text COLLATE "C" AS chunk_id, 0::bigint AS rank
	WHERE $3::vector IS NULL AND $8::integer IS NULL AND $10::bigint IS NULL AND false
),
`
	// keywordNoneSQL ranks nothing; it names $4 only so that the
	// statement's parameters stay those of searchScanSQL.
	keywordNoneSQL = `by_keyword AS (
	SELECT ''::text COLLATE "C" AS chunk_id, 0::bigint AS rank WHERE $4::text IS NULL AND false
),
`
	searchTailSQL = `fused AS (
	SELECT chunk_id, sum(1::float8 / ($9 + rank)) AS score
	FROM (SELECT chunk_id, rank FROM by_vector UNION ALL SELECT chunk_id, rank FROM by_keyword) r
	GROUP BY chunk_id
)
SELECT c.chunk_id, c.document_id, c.knowledge_base_id, c.ordinal, c.heading, c.text, f.score
FROM fused f
JOIN knowledge_chunks c ON c.org_id = $1 AND c.chunk_id = f.chunk_id AND c.knowledge_base_id = ANY($2)
ORDER BY f.score DESC, f.chunk_id
LIMIT $6`
)

// Search fuses the vector and the keyword ranking of the chunks of
// q.KnowledgeBaseIDs in the scope's organization: in one statement, or,
// for a query with text whose keyword index serves and outside a unit of
// work, in two run side by side and fused here (searchSplit).
//
// Why the vector ranking has two strategies. knowledge_chunks holds every
// organization's chunks under one HNSW index, and a search covers one
// organization's chosen bases, often a small part of the table. An HNSW
// scan walks the graph towards the query, keeps its ef_search nearest
// entries of every organization, and only then applies the WHERE clause: a
// small organization's chunks are mostly not among them, so the scan
// returns fewer than k, or not the nearest. pgvector 0.8's iterative scan
// walks on until enough rows pass the filter, but the rarer they are, the
// more of the graph it visits, until hnsw.max_scan_tuples stops it; and a
// graph built over a large organization's dense clusters keeps few edges
// to another's outlying chunks, so some of those cannot be reached at all
// (through the index, TestChunkSearchIsolation's org-b reaches 7 to 11 of
// its 20 chunks; TestChunkSearchRecall -v logs recall@10 down to about 0.9
// with plain HNSW and 0.975 with iterative HNSW for organizations of 2 to
// 16% of the table, varying from run to run with the graph). So:
//
//   - Up to exactScanMaxChunks covered chunks, the search ranks them
//     exactly: the btree on (org_id, knowledge_base_id) finds them, a
//     top-N sort keeps the nearest. Recall is 1 by construction, and the
//     cost is bounded by the threshold (at most 20,000 distances over rows
//     read in place), whatever the size of the table or of the other
//     organizations.
//   - Above it, the covered chunks are a share of the table large enough
//     (20,000 rows: 2% of a million) for the graph to lead to them: the
//     search uses the index with ef_search 400 (ten times the default)
//     and an iterative scan in relaxed order, which goes on until
//     hnswCandidates covered chunks have passed the filter (or
//     hnsw.max_scan_tuples tuples have been visited), and ranks those
//     exactly by distance and id, keeping the candidate depth. Taking 100
//     rather than 40 from the index lifted the largest organization's
//     recall from 0.90 to 0.99 in a corpus like BenchmarkSearch's, but a
//     loaded CI run still measured 0.925 once; 400 (ef_search 400) keeps
//     headroom. The cost follows the graph, not the organization's size.
//   - An organization that has an HNSW index of its own
//     (IndexOrganizations builds one for every organization of at least
//     DefaultOrganizationIndexMin chunks) walks that graph instead, which
//     holds its chunks alone: at 1,000,000 chunks, 7 to 13 ms where the
//     shared graph took up to 110 ms for an organization of a few percent
//     of the table. Its exact scan stops at indexedExactScanMaxChunks,
//     which an exact scan reads in about the time the graph takes.
//
// The count that chooses between them stops at the threshold, so it too is
// bounded. Both branches are in the statement, gated by the count, so the
// choice costs no round trip; the settings travel in the same batch.
//
// The keyword ranking is bounded the same way. Where the search covers
// more than keywordCandidates chunks, a first statement (keywordLevelsSQL)
// finds the highest level at which the covered chunks hold each word of
// the query; planKeywordCells turns those into cells, lookups in the
// order of the most a chunk found by each can score; and the ranking
// scores the first keywordCandidates chunks the cells find
// (wholeKeywordCandidates where the cells hold every word of the query),
// rather than every chunk that holds a word (a very common word is in
// nearly all of them). A chunk can still be missed where the budget cuts
// a cell, and chunks within a cell are read in no set order: recall@10
// against the exact keyword ranking is measured by BenchmarkSearch
// (BENCHMARKS.md), and TestChunkSearchRecall holds it at 0.95 or more for
// every organization.
func (c *Chunks) Search(ctx context.Context, scope access.Scope, q projections.ChunkQuery) ([]projections.ChunkHit, error) {
	org, err := orgOf(scope)
	if err != nil {
		return nil, err
	}
	out := []projections.ChunkHit{}
	if len(q.KnowledgeBaseIDs) == 0 || q.K <= 0 {
		return out, nil
	}
	if len(q.Vector) != ChunkDimensions {
		return nil, fmt.Errorf("chunk search: %w: the query vector has %d, the table %d", ErrDimensions, len(q.Vector), ChunkDimensions)
	}
	settings, stmt, args := c.searchArgs(org, q, nil)
	if stmt == searchSQL {
		if _, inUnit := ctx.Value(unitKey{}).(*unit); !inUnit {
			return c.searchSplit(ctx, org, q, settings, args)
		}
		cells, budget, err := c.keywordCells(ctx, org, q)
		if err != nil {
			return nil, fmt.Errorf("chunk search: %w", err)
		}
		args[keywordCellsArg], args[keywordBudgetArg] = cells, budget
	}
	out, err = c.searchOnce(ctx, settings, stmt, args)
	if err != nil {
		return nil, fmt.Errorf("chunk search: %w", err)
	}
	return out, nil
}

// searchOnce runs one search statement and returns its hits in order.
func (c *Chunks) searchOnce(ctx context.Context, settings []any, stmt string, args []any) ([]projections.ChunkHit, error) {
	out := []projections.ChunkHit{}
	err := c.db.queryWith(ctx, searchSettingsSQL, settings, stmt, args, func(rows pgx.Rows) error {
		var (
			h       projections.ChunkHit
			ordinal int32
		)
		if err := rows.Scan(&h.ChunkID, &h.DocumentID, &h.KnowledgeBaseID, &ordinal, &h.Heading, &h.Text, &h.Score); err != nil {
			return err
		}
		h.Ordinal = int(ordinal)
		out = append(out, h)
		return nil
	})
	return out, err
}

// searchSplit runs a hybrid search's two rankings at once, each on a
// connection of its own, and fuses them here exactly as searchSQL's tail
// does: each ranking returns its candidates (up to the candidate depth, $5)
// in rank order, a chunk scores Σ 1/(rrfK + rank) over the rankings that
// hold it, ties go by chunk id in byte order (COLLATE "C"), and the first
// k are kept. The vector ranking (the HNSW walk or the exact scan) and the
// keyword lookups each take about as long as the other for a large
// organization, and one statement runs them one after the other; two run
// them side by side, at the price of a second connection and of two
// snapshots (a chunk written between them may be ranked by one only).
// Each statement carries the organization's restriction and runs under
// row-level security, as the single statement does.
//
// The keyword side plans its cells (keywordCells, a round trip of its own)
// while the vector ranking already runs.
func (c *Chunks) searchSplit(ctx context.Context, org string, q projections.ChunkQuery, settings, args []any) ([]projections.ChunkHit, error) {
	// Fusing one ranking with nothing keeps its order; asking for as many
	// as the candidate depth ($6 := $5) returns all of its candidates.
	splitArgs := append([]any(nil), args...)
	splitArgs[5] = args[4]
	var (
		wg               sync.WaitGroup
		byVector         []projections.ChunkHit
		byKeyword        []projections.ChunkHit
		vectorErr, kwErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		byVector, vectorErr = c.searchOnce(ctx, settings, searchVectorSQL, splitArgs[:keywordCellsArg])
	}()
	cells, budget, kwErr := c.keywordCells(ctx, org, q)
	if kwErr == nil {
		splitArgs[keywordCellsArg], splitArgs[keywordBudgetArg] = cells, budget
		byKeyword, kwErr = c.searchOnce(ctx, settings, searchKeywordSQL, splitArgs)
	}
	wg.Wait()
	if err := errors.Join(vectorErr, kwErr); err != nil {
		return nil, fmt.Errorf("chunk search: %w", err)
	}
	return fuseRankings(q.K, byVector, byKeyword), nil
}

// fuseRankings fuses rankings (each in rank order, a chunk at most once in
// each) by reciprocal rank fusion and keeps the first k, as searchSQL's
// tail does.
func fuseRankings(k int, rankings ...[]projections.ChunkHit) []projections.ChunkHit {
	fused := map[string]*projections.ChunkHit{}
	var order []*projections.ChunkHit
	for _, ranking := range rankings {
		for i, h := range ranking {
			score := 1 / float64(rrfK+i+1)
			if f, ok := fused[h.ChunkID]; ok {
				f.Score += score
				continue
			}
			h.Score = score
			fused[h.ChunkID] = &h
			order = append(order, &h)
		}
	}
	slices.SortFunc(order, func(a, b *projections.ChunkHit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.ChunkID, b.ChunkID)
	})
	out := make([]projections.ChunkHit, 0, min(k, len(order)))
	for _, h := range order[:min(k, len(order))] {
		out = append(out, *h)
	}
	return out
}

// keywordCells plans the keyword ranking's lookups (see
// planKeywordCells) from the levels at which the covered chunks hold the
// query's words, and returns them with how many chunks the ranking reads
// from them (searchSQL's $12); no cells where the ranking reads every
// chunk that holds a word (a search that covers no more chunks than it
// may read, or the exact ranking of the tests).
func (c *Chunks) keywordCells(ctx context.Context, org string, q projections.ChunkQuery) ([]string, int, error) {
	depth := max(4*q.K, minCandidateDepth)
	budget := max(c.tuning.keywordCandidates, depth)
	if budget >= exactKeywords {
		return nil, budget, nil
	}
	var words []keywordWord
	args := []any{org, q.KnowledgeBaseIDs, q.Text, topKeywordLevel, max(c.tuning.keywordScanMax, budget), maxProbedKeywordWords}
	err := c.db.queryWith(ctx, keywordLevelsSettingsSQL, []any{org}, keywordLevelsSQL, args, func(rows pgx.Rows) error {
		var (
			w          keywordWord
			times, top int32
		)
		if err := rows.Scan(&w.lexeme, &times, &top); err != nil {
			return err
		}
		w.times, w.top = int(times), int(top)
		words = append(words, w)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("keyword levels: %w", err)
	}
	planned, whole := planKeywordCells(words)
	// The probe returns at most maxProbedKeywordWords words: as many says
	// there may be more, held by chunks the cells leave out.
	if whole && len(words) < maxProbedKeywordWords && c.tuning.wholeKeywordCandidates > 0 {
		budget = min(budget, max(c.tuning.wholeKeywordCandidates, depth))
	}
	var cells []string
	for _, c := range planned {
		cells = append(cells, c.query)
	}
	return cells, budget, nil
}

// keywordCellsArg is the index of searchSQL's $11, the keyword ranking's
// cells, among searchArgs' arguments.
const keywordCellsArg = 10

// keywordBudgetArg is the index of searchSQL's $12, how many chunks the
// keyword ranking reads from its cells.
const keywordBudgetArg = 11

// searchArgs returns the arguments of searchSettingsSQL, and the search
// statement with its arguments; cells are the keyword ranking's lookups.
func (c *Chunks) searchArgs(org string, q projections.ChunkQuery, cells []string) (settings []any, stmt string, args []any) {
	depth := max(4*q.K, minCandidateDepth)
	t := c.tuning
	candidates := max(t.candidates, depth)
	settings = []any{org, strconv.Itoa(max(t.efSearch, candidates)), strconv.Itoa(t.maxScanTuples), t.iterativeScan}
	args = []any{org, q.KnowledgeBaseIDs, pgvector.NewVector(q.Vector), q.Text, depth, q.K, t.exactScanMax, candidates, rrfK, t.indexedExactScanMax}
	switch {
	case q.Text == "":
		return settings, searchVectorSQL, args
	case !c.keywordIndex:
		return settings, searchScanSQL, args
	}
	if cells == nil {
		cells = []string{}
	}
	budget := max(t.keywordCandidates, depth)
	return settings, searchSQL, append(args, cells, budget, max(t.keywordScanMax, budget))
}
