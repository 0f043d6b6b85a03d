package readmodeltest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/projections"
)

// Dimensions is the size of the suite's embeddings: that of the PostgreSQL
// adapter's chunk column, which accepts no other.
const Dimensions = 384

// Embedding returns a unit vector of Dimensions at cosine similarity
// closeness (0 < closeness ≤ 1) to the first axis, leaning towards axis
// (1 ≤ axis < Dimensions) for the rest. Two embeddings of different axes
// have cosine similarity closenessA·closenessB.
func Embedding(closeness float64, axis int) []float32 {
	v := make([]float32, Dimensions)
	v[0] = float32(closeness)
	v[axis] = float32(math.Sqrt(1 - closeness*closeness))
	return v
}

// runKnowledge runs the cases of the knowledge read models.
func runKnowledge(t *testing.T, newModels func(t *testing.T) Models) {
	// models returns fresh models, or skips when the adapter under test has
	// no knowledge read models.
	models := func(t *testing.T) Models {
		t.Helper()
		m := newModels(t)
		if m.Knowledge == nil || m.Chunks == nil {
			t.Skip("no knowledge read models in this suite's Models")
		}
		return m
	}

	t.Run("KnowledgeZeroScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		var zero access.Scope
		checks := map[string]error{
			"KnowledgeBase":  first(m.Knowledge.KnowledgeBase(ctx, zero, "kb-1")),
			"KnowledgeBases": first(m.Knowledge.KnowledgeBases(ctx, zero, projections.Page{})),
			"DocumentByID":   first(m.Knowledge.DocumentByID(ctx, zero, "doc-1")),
			"Documents":      first(m.Knowledge.Documents(ctx, zero, "kb-1", projections.Page{})),
			"PutKnowledgeBase": m.write(ctx, func(ctx context.Context) error {
				return m.Knowledge.PutKnowledgeBase(ctx, zero, projections.KnowledgeBase{ID: "kb-1"})
			}),
			"PutDocument": m.write(ctx, func(ctx context.Context) error {
				return m.Knowledge.PutDocument(ctx, zero, projections.Document{ID: "doc-1", KnowledgeBaseID: "kb-1"})
			}),
			"DeleteDocument": m.write(ctx, func(ctx context.Context) error {
				return m.Knowledge.DeleteDocument(ctx, zero, "kb-1", "doc-1")
			}),
			"ReplaceChunks": m.write(ctx, func(ctx context.Context) error {
				return m.Chunks.ReplaceChunks(ctx, zero, "doc-1", nil)
			}),
			"DeleteChunks": m.write(ctx, func(ctx context.Context) error {
				return m.Chunks.DeleteChunks(ctx, zero, "doc-1")
			}),
			"Search": first(m.Chunks.Search(ctx, zero, projections.ChunkQuery{
				KnowledgeBaseIDs: []string{"kb-1"}, Vector: Embedding(1, 1), Text: "x", K: 5,
			})),
		}
		for name, err := range checks {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}
		// The memory adapter's Document answers a zero scope with
		// ErrNotFound; it fails closed all the same.
		if _, err := m.Knowledge.Document(ctx, zero, "kb-1", "doc-1"); !errors.Is(err, access.ErrNoScope) && !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("Document with a zero scope: %v, want ErrNoScope", err)
		}
	})

	t.Run("KnowledgeRoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		bases := []projections.KnowledgeBase{
			{ID: "kb-1", Name: "Handbook", Description: "how we work", EmbeddingModel: "hashing-384", Dimensions: 384,
				Grants:   []knowledge.Grant{{Subject: "role:viewer", Permissions: []string{"kb:read"}}, {Subject: "user:bob"}},
				Archived: true, CreatedBy: "alice", CreatedAt: at, UpdatedAt: at.Add(time.Second)},
			{ID: "kb-2", Name: "Empty grants", Grants: []knowledge.Grant{}, CreatedAt: at, UpdatedAt: at},
		}
		docs := []projections.Document{
			{ID: "doc-1", KnowledgeBaseID: "kb-1", Title: "Leave", ContentType: "text/markdown", ContentHash: "sha256:1",
				SizeBytes: 1234, Version: 2, State: projections.DocumentFailed, FailureReason: "too long", Chunks: 0,
				CreatedBy: "alice", CreatedAt: at, UpdatedAt: at.Add(time.Minute)},
			{ID: "doc-2", KnowledgeBaseID: "kb-2", Title: "Other base", State: projections.DocumentReady, Chunks: 3, CreatedAt: at, UpdatedAt: at},
		}
		for i := range 12 {
			docs = append(docs, projections.Document{ID: fmt.Sprintf("doc-kb1-%02d", i), KnowledgeBaseID: "kb-1",
				Title: "t", Version: 1, State: projections.DocumentPending, CreatedAt: at, UpdatedAt: at})
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			for _, kb := range bases {
				if err := m.Knowledge.PutKnowledgeBase(ctx, a, kb); err != nil {
					return err
				}
			}
			// nil grants come back as an empty list.
			if err := m.Knowledge.PutKnowledgeBase(ctx, a, projections.KnowledgeBase{ID: "kb-3", CreatedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
			for _, doc := range docs {
				if err := m.Knowledge.PutDocument(ctx, a, doc); err != nil {
					return err
				}
			}
			return nil
		}))
		for _, want := range bases {
			got, err := m.Knowledge.KnowledgeBase(ctx, a, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("KnowledgeBase(%s) = %#v, %v\nwant %#v", want.ID, got, err, want)
			}
			if _, err := m.Knowledge.KnowledgeBase(ctx, b, want.ID); !errors.Is(err, projections.ErrNotFound) {
				t.Errorf("org-b reads org-a's knowledge base %s: %v", want.ID, err)
			}
		}
		kb3, err := m.Knowledge.KnowledgeBase(ctx, a, "kb-3")
		if err != nil || kb3.Grants == nil || len(kb3.Grants) != 0 {
			t.Errorf("knowledge base written with nil grants: %#v, %v; want an empty list", kb3.Grants, err)
		}
		// Returned records are copies.
		got, _ := m.Knowledge.KnowledgeBase(ctx, a, "kb-1")
		got.Grants[0].Permissions[0] = "kb:manage"
		if again, _ := m.Knowledge.KnowledgeBase(ctx, a, "kb-1"); again.Grants[0].Permissions[0] != "kb:read" {
			t.Error("a returned knowledge base aliases the stored one")
		}
		list, err := m.Knowledge.KnowledgeBases(ctx, a, projections.Page{After: "kb-1", Limit: 1})
		if err != nil || len(list) != 1 || list[0].ID != "kb-2" {
			t.Errorf("knowledge bases after kb-1, limit 1 = %v, %v", list, err)
		}
		if list, err := m.Knowledge.KnowledgeBases(ctx, b, projections.Page{}); err != nil || list == nil || len(list) != 0 {
			t.Errorf("org-b lists %v, %v; want an empty list", list, err)
		}

		for _, want := range docs[:2] {
			got, err := m.Knowledge.Document(ctx, a, want.KnowledgeBaseID, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Document(%s) = %#v, %v\nwant %#v", want.ID, got, err, want)
			}
			if got, err := m.Knowledge.DocumentByID(ctx, a, want.ID); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("DocumentByID(%s) = %#v, %v", want.ID, got, err)
			}
			if _, err := m.Knowledge.DocumentByID(ctx, b, want.ID); !errors.Is(err, projections.ErrNotFound) {
				t.Errorf("org-b reads org-a's document %s: %v", want.ID, err)
			}
		}
		if _, err := m.Knowledge.Document(ctx, a, "kb-2", "doc-1"); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("doc-1 through the wrong knowledge base: %v, want ErrNotFound", err)
		}
		var paged []string
		after := ""
		for {
			page, err := m.Knowledge.Documents(ctx, a, "kb-1", projections.Page{After: after, Limit: 5})
			must(t, err)
			for _, d := range page {
				if d.KnowledgeBaseID != "kb-1" {
					t.Fatalf("documents of kb-1 include %s of %s", d.ID, d.KnowledgeBaseID)
				}
				paged = append(paged, d.ID)
			}
			if len(page) < 5 {
				break
			}
			after = page[len(page)-1].ID
		}
		if len(paged) != 13 || paged[0] != "doc-1" || paged[1] != "doc-kb1-00" || !slices.IsSorted(paged) {
			t.Errorf("paged documents of kb-1 = %v", paged)
		}
		if list, err := m.Knowledge.Documents(ctx, b, "kb-1", projections.Page{}); err != nil || list == nil || len(list) != 0 {
			t.Errorf("org-b lists documents %v, %v; want an empty list", list, err)
		}

		// Deleting in org-b removes nothing of org-a; in org-a it does.
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Knowledge.DeleteDocument(ctx, b, "kb-1", "doc-1") }))
		if _, err := m.Knowledge.DocumentByID(ctx, a, "doc-1"); err != nil {
			t.Errorf("org-b's delete removed org-a's document: %v", err)
		}
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Knowledge.DeleteDocument(ctx, a, "kb-1", "doc-1") }))
		if _, err := m.Knowledge.DocumentByID(ctx, a, "doc-1"); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("deleted document: %v", err)
		}

		// A projection reads a document to update it inside its unit.
		must(t, m.write(ctx, func(ctx context.Context) error {
			doc, err := m.Knowledge.DocumentByID(ctx, a, "doc-2")
			if err != nil {
				return err
			}
			doc.State, doc.Chunks, doc.Version = projections.DocumentPending, 0, 2
			if err := m.Knowledge.PutDocument(ctx, a, doc); err != nil {
				return err
			}
			again, err := m.Knowledge.DocumentByID(ctx, a, "doc-2")
			if err != nil || again.Version != 2 {
				return fmt.Errorf("read back in the unit: %+v, %v", again, err)
			}
			return nil
		}))
	})

	// A chunk recorded while the embedding store lacked its vector is kept
	// without one: keyword search finds it, the vector ranking passes over
	// it, and a query without a shared word does not return it.
	t.Run("ChunkWithoutVectorIsFoundByKeyword", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		must(t, m.write(ctx, func(ctx context.Context) error {
			return m.Chunks.ReplaceChunks(ctx, a, "doc-1", []projections.StoredChunk{
				{ID: "with", KnowledgeBaseID: "kb-1", DocumentID: "doc-1", Ordinal: 0, Text: "holiday calendar", Embedding: Embedding(0.9, 2)},
				{ID: "without", KnowledgeBaseID: "kb-1", DocumentID: "doc-1", Ordinal: 1, Text: "parental leave policy"},
			})
		}))
		search := func(text string) []string {
			t.Helper()
			hits, err := m.Chunks.Search(ctx, a, projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: Embedding(1, 1), Text: text, K: 10})
			if err != nil {
				t.Fatalf("Search(%q): %v", text, err)
			}
			var ids []string
			for _, h := range hits {
				ids = append(ids, h.ChunkID)
			}
			slices.Sort(ids) // one ranking each: their fused scores tie
			return ids
		}
		if got := search("parental leave"); !slices.Equal(got, []string{"with", "without"}) {
			t.Errorf("search by its words = %v, want both chunks", got)
		}
		if got := search("unrelated words"); !slices.Equal(got, []string{"with"}) {
			t.Errorf("search without its words = %v, want only the chunk with a vector", got)
		}
	})

	t.Run("SearchStaysInTheOrganizationAndTheBases", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		query := Embedding(1, 1)
		// org-b's chunks are nearer to the query and hold its words more
		// often than any of org-a's, in bases of the same ids.
		var aChunks, bChunks []projections.StoredChunk
		for i := range 30 {
			bChunks = append(bChunks, projections.StoredChunk{ID: fmt.Sprintf("b-%02d", i), KnowledgeBaseID: fmt.Sprintf("kb-%d", 1+i%2),
				DocumentID: "doc-b", Ordinal: i, Text: "quarterly revenue revenue revenue secret", Embedding: Embedding(0.99, 2+i)})
		}
		for i := range 6 {
			aChunks = append(aChunks, projections.StoredChunk{ID: fmt.Sprintf("a-%02d", i), KnowledgeBaseID: fmt.Sprintf("kb-%d", 1+i%2),
				DocumentID: fmt.Sprintf("doc-a%d", 1+i%2), Ordinal: i / 2, Heading: "Revenue", Text: fmt.Sprintf("quarterly revenue %d", i),
				Embedding: Embedding(0.8-0.1*float64(i), 2+i)})
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return errors.Join(
				m.Chunks.ReplaceChunks(ctx, b, "doc-b", bChunks),
				m.Chunks.ReplaceChunks(ctx, a, "doc-a1", []projections.StoredChunk{aChunks[0], aChunks[2], aChunks[4]}),
				m.Chunks.ReplaceChunks(ctx, a, "doc-a2", []projections.StoredChunk{aChunks[1], aChunks[3], aChunks[5]}),
			)
		}))
		search := func(s access.Scope, kbs []string, k int) []projections.ChunkHit {
			t.Helper()
			hits, err := m.Chunks.Search(ctx, s, projections.ChunkQuery{KnowledgeBaseIDs: kbs, Vector: query, Text: "quarterly revenue secret", K: k})
			if err != nil {
				t.Fatalf("Search(%s, %v): %v", s.OrgID(), kbs, err)
			}
			if hits == nil {
				t.Fatalf("Search(%s, %v) = nil, want a list", s.OrgID(), kbs)
			}
			return hits
		}
		ids := func(hits []projections.ChunkHit) []string {
			out := make([]string, len(hits))
			for i, h := range hits {
				out[i] = h.ChunkID
			}
			return out
		}
		if got := ids(search(a, []string{"kb-1", "kb-2"}, 10)); !slices.Equal(got, []string{"a-00", "a-01", "a-02", "a-03", "a-04", "a-05"}) {
			t.Errorf("org-a, both bases = %v", got)
		}
		hits := search(a, []string{"kb-1"}, 10)
		if got := ids(hits); !slices.Equal(got, []string{"a-00", "a-02", "a-04"}) {
			t.Errorf("org-a, kb-1 = %v", got)
		}
		want := projections.ChunkHit{ChunkID: "a-00", DocumentID: "doc-a1", KnowledgeBaseID: "kb-1", Ordinal: 0,
			Heading: "Revenue", Text: "quarterly revenue 0", Score: 2.0 / 61}
		if len(hits) > 0 && !sameHit(hits[0], want) {
			t.Errorf("first hit = %#v, want %#v", hits[0], want)
		}
		if got := ids(search(a, []string{"kb-2", "kb-9"}, 10)); !slices.Equal(got, []string{"a-01", "a-03", "a-05"}) {
			t.Errorf("org-a, kb-2 and a missing base = %v", got)
		}
		if got := search(a, []string{"kb-9"}, 10); len(got) != 0 {
			t.Errorf("org-a, a missing base = %v", ids(got))
		}
		if got := search(a, []string{}, 10); len(got) != 0 {
			t.Errorf("org-a, no bases = %v", ids(got))
		}
		if got := search(a, nil, 10); len(got) != 0 {
			t.Errorf("org-a, nil bases = %v", ids(got))
		}
		if got := ids(search(b, []string{"kb-1"}, 3)); !slices.Equal(got, []string{"b-00", "b-02", "b-04"}) {
			t.Errorf("org-b, kb-1, k 3 = %v", got)
		}
		if got := search(scope(t, "org-c"), []string{"kb-1", "kb-2"}, 10); len(got) != 0 {
			t.Errorf("org-c sees %v", ids(got))
		}
		// Deleting in org-b a document id org-a uses removes nothing of org-a.
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Chunks.DeleteChunks(ctx, b, "doc-a1") }))
		if got := search(a, []string{"kb-1"}, 10); len(got) != 3 {
			t.Errorf("after org-b deleted doc-a1: org-a finds %v", ids(got))
		}
	})

	t.Run("SearchNeverReturnsReplacedOrDeletedChunks", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		query := Embedding(1, 1)
		chunk := func(id, doc string, closeness float64, axis int, text string) projections.StoredChunk {
			return projections.StoredChunk{ID: id, KnowledgeBaseID: "kb-1", DocumentID: doc, Text: text, Embedding: Embedding(closeness, axis)}
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return errors.Join(
				m.Chunks.ReplaceChunks(ctx, a, "doc-1", []projections.StoredChunk{
					chunk("v1-0", "doc-1", 0.99, 2, "leave policy old"), chunk("v1-1", "doc-1", 0.98, 3, "leave policy old")}),
				m.Chunks.ReplaceChunks(ctx, a, "doc-2", []projections.StoredChunk{chunk("d2-0", "doc-2", 0.97, 4, "leave policy")}),
				m.Chunks.ReplaceChunks(ctx, a, "doc-3", []projections.StoredChunk{chunk("d3-0", "doc-3", 0.1, 5, "unrelated")}),
			)
		}))
		search := func() []string {
			t.Helper()
			hits, err := m.Chunks.Search(ctx, a, projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: query, Text: "leave policy old", K: 10})
			must(t, err)
			var out []string
			for _, h := range hits {
				out = append(out, h.ChunkID)
			}
			return out
		}
		if got := search(); !slices.Equal(got, []string{"v1-0", "v1-1", "d2-0", "d3-0"}) {
			t.Fatalf("before = %v", got)
		}
		// A new version's chunks replace the old ones, even those it does
		// not rename; a redelivered replace changes nothing.
		v2 := []projections.StoredChunk{chunk("v2-0", "doc-1", 0.5, 6, "leave policy new")}
		for range 2 {
			must(t, m.write(ctx, func(ctx context.Context) error {
				return errors.Join(m.Chunks.ReplaceChunks(ctx, a, "doc-1", v2), m.Chunks.DeleteChunks(ctx, a, "doc-2"))
			}))
		}
		if got := search(); !slices.Equal(got, []string{"v2-0", "d3-0"}) {
			t.Fatalf("after replacing doc-1 and deleting doc-2 = %v", got)
		}
		// Replacing with no chunks empties the document.
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Chunks.ReplaceChunks(ctx, a, "doc-1", nil) }))
		if got := search(); !slices.Equal(got, []string{"d3-0"}) {
			t.Fatalf("after replacing doc-1 with nothing = %v", got)
		}
	})

	t.Run("SearchFusesRankings", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		query := Embedding(1, 1)
		// Vector ranks c1..c5 in order; keyword ranks (query "alpha beta",
		// any term counts, 1 + ln n per term): c5 (alpha×2, beta: 2.69),
		// c4 (alpha, beta: 2), c1 (alpha: 1); c2 and c3 hold neither.
		corpus := []projections.StoredChunk{
			{ID: "c1", Text: "Alpha", Embedding: Embedding(0.9, 2)},
			{ID: "c2", Text: "gamma delta", Embedding: Embedding(0.8, 3)},
			{ID: "c3", Text: "epsilon", Embedding: Embedding(0.7, 4)},
			{ID: "c4", Text: "alpha, beta.", Embedding: Embedding(0.6, 5)},
			{ID: "c5", Text: "alpha beta alpha", Embedding: Embedding(0.5, 6)},
			// Same vector and text as c2, so tied with it on both: the id breaks it.
			{ID: "c0", Text: "gamma delta", Embedding: Embedding(0.8, 3)},
		}
		for i := range corpus {
			corpus[i].KnowledgeBaseID, corpus[i].DocumentID, corpus[i].Ordinal = "kb-1", "doc-1", i
		}
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Chunks.ReplaceChunks(ctx, a, "doc-1", corpus) }))
		rrf := func(ranks ...int) float64 {
			var s float64
			for _, r := range ranks {
				s += 1 / float64(60+r)
			}
			return s
		}
		type want struct {
			id    string
			score float64
		}
		tests := []struct {
			name string
			text string
			k    int
			want []want
		}{
			{"both rankings", "alpha beta", 10, []want{
				{"c1", rrf(1, 3)}, {"c5", rrf(6, 1)}, {"c4", rrf(5, 2)}, {"c0", rrf(2)}, {"c2", rrf(3)}, {"c3", rrf(4)}}},
			{"k honoured", "alpha beta", 2, []want{{"c1", rrf(1, 3)}, {"c5", rrf(6, 1)}}},
			{"no term matches: vector only", "zeta", 10, []want{
				{"c1", rrf(1)}, {"c0", rrf(2)}, {"c2", rrf(3)}, {"c3", rrf(4)}, {"c4", rrf(5)}, {"c5", rrf(6)}}},
			{"no text: vector only", "", 3, []want{{"c1", rrf(1)}, {"c0", rrf(2)}, {"c2", rrf(3)}}},
			// epsilon twice lifts c3 (2) above c0 and c2 (gamma: 1 each);
			// counted once, c3 would tie with them and rank after them.
			{"repeated term counts twice", "Epsilon epsilon gamma", 10, []want{
				{"c0", rrf(2, 2)}, {"c3", rrf(4, 1)}, {"c2", rrf(3, 3)}, {"c1", rrf(1)}, {"c4", rrf(5)}, {"c5", rrf(6)}}},
			// Punctuation and operators are separators, never syntax.
			{"hostile text", `Alpha's e-mail: a\b & c | d !(x) <-> 'y' \`, 10, []want{
				{"c1", rrf(1, 2)}, {"c5", rrf(6, 1)}, {"c4", rrf(5, 3)}, {"c0", rrf(2)}, {"c2", rrf(3)}, {"c3", rrf(4)}}},
			{"k zero", "alpha", 0, nil},
		}
		for _, tt := range tests {
			hits, err := m.Chunks.Search(ctx, a, projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: query, Text: tt.text, K: tt.k})
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var got []want
			for _, h := range hits {
				got = append(got, want{h.ChunkID, h.Score})
			}
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				ok = got[i].id == tt.want[i].id && math.Abs(got[i].score-tt.want[i].score) < 1e-12
			}
			if !ok {
				t.Errorf("%s: got %v\nwant %v", tt.name, got, tt.want)
			}
		}
	})
	t.Run("SearchMatchesAReferenceRanking", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		// A random corpus small enough that every chunk is within the
		// candidate depth of both rankings (max(4k, 40) for k = 15), so
		// that depth-limited fusion and fusion of whole rankings agree.
		r := rand.New(rand.NewPCG(3, 4))
		words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu")
		randomVector := func() []float32 {
			v := make([]float32, Dimensions)
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			return v
		}
		var corpus []projections.StoredChunk
		for i := range 60 {
			var text []string
			for range 1 + r.IntN(12) {
				text = append(text, words[r.IntN(len(words))])
			}
			corpus = append(corpus, projections.StoredChunk{ID: fmt.Sprintf("chunk-%02d", r.IntN(100)*100+i), KnowledgeBaseID: "kb-1",
				DocumentID: fmt.Sprintf("doc-%d", i%4), Ordinal: i, Text: strings.Join(text, " "), Embedding: randomVector()})
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			for d := range 4 {
				var doc []projections.StoredChunk
				for _, ch := range corpus {
					if ch.DocumentID == fmt.Sprintf("doc-%d", d) {
						doc = append(doc, ch)
					}
				}
				if err := m.Chunks.ReplaceChunks(ctx, a, fmt.Sprintf("doc-%d", d), doc); err != nil {
					return err
				}
			}
			return nil
		}))
		for n := range 20 {
			q := projections.ChunkQuery{KnowledgeBaseIDs: []string{"kb-1"}, Vector: randomVector(), K: 15,
				Text: strings.Join([]string{words[r.IntN(len(words))], words[r.IntN(len(words))], "Omega"}, " ")}
			if n%5 == 0 {
				q.Text = ""
			}
			want := referenceRanking(corpus, q)
			hits, err := m.Chunks.Search(ctx, a, q)
			must(t, err)
			ok := len(hits) == len(want)
			for i := 0; ok && i < len(hits); i++ {
				ok = hits[i].ChunkID == want[i].ChunkID && math.Abs(hits[i].Score-want[i].Score) < 1e-12
			}
			if !ok {
				t.Errorf("query %d (%q):\ngot  %v\nwant %v", n, q.Text, hitSummary(hits), hitSummary(want))
			}
		}
	})
}

func sameHit(a, b projections.ChunkHit) bool {
	score := math.Abs(a.Score-b.Score) < 1e-12
	a.Score, b.Score = 0, 0
	return score && a == b
}

// referenceRanking is the ranking the ports define, computed plainly: the
// cosine ranking and the keyword ranking (Σ 1 + ln n over the query's
// words, lower-cased, that a chunk holds n > 0 times; chunks holding none
// are not ranked) of all chunks, ties by id, fused by Σ 1/(60 + rank).
func referenceRanking(chunks []projections.StoredChunk, q projections.ChunkQuery) []projections.ChunkHit {
	words := func(s string) []string { return strings.Fields(strings.ToLower(s)) }
	type scored struct {
		chunk        projections.StoredChunk
		cos, keyword float64
	}
	all := make([]scored, len(chunks))
	for i, ch := range chunks {
		var dot, nq, nc float64
		for j := range q.Vector {
			dot += float64(q.Vector[j]) * float64(ch.Embedding[j])
			nq += float64(q.Vector[j]) * float64(q.Vector[j])
			nc += float64(ch.Embedding[j]) * float64(ch.Embedding[j])
		}
		counts := map[string]int{}
		for _, w := range words(ch.Text) {
			counts[w]++
		}
		var kw float64
		for _, w := range words(q.Text) {
			if n := counts[w]; n > 0 {
				kw += 1 + math.Log(float64(n))
			}
		}
		all[i] = scored{ch, dot / math.Sqrt(nq*nc), kw}
	}
	fused := map[string]float64{}
	rank := func(better func(a, b scored) bool, keep func(s scored) bool) {
		sorted := slices.Clone(all)
		slices.SortFunc(sorted, func(a, b scored) int {
			switch {
			case better(a, b):
				return -1
			case better(b, a):
				return 1
			}
			return strings.Compare(a.chunk.ID, b.chunk.ID)
		})
		r := 0
		for _, s := range sorted {
			if keep(s) {
				r++
				fused[s.chunk.ID] += 1 / float64(60+r)
			}
		}
	}
	rank(func(a, b scored) bool { return a.cos > b.cos }, func(scored) bool { return true })
	rank(func(a, b scored) bool { return a.keyword > b.keyword }, func(s scored) bool { return s.keyword > 0 })
	slices.SortFunc(all, func(a, b scored) int {
		if fa, fb := fused[a.chunk.ID], fused[b.chunk.ID]; fa != fb {
			if fa > fb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.chunk.ID, b.chunk.ID)
	})
	var out []projections.ChunkHit
	for _, s := range all[:min(q.K, len(all))] {
		out = append(out, projections.ChunkHit{ChunkID: s.chunk.ID, DocumentID: s.chunk.DocumentID, KnowledgeBaseID: s.chunk.KnowledgeBaseID,
			Ordinal: s.chunk.Ordinal, Heading: s.chunk.Heading, Text: s.chunk.Text, Score: fused[s.chunk.ID]})
	}
	return out
}

func hitSummary(hits []projections.ChunkHit) string {
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "%s:%.6f ", h.ChunkID, h.Score)
	}
	return b.String()
}
