package postgres

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/projections"
)

// A corpus is a synthetic retrieval workload for recall tests and
// benchmarks: organizations whose sizes follow a Zipf law, each with a few
// knowledge bases of documents, whose chunks have 384-dimension embeddings
// with the structure real ones have. Topics are shared by every
// organization (they all write about leave, invoices, onboarding …), each
// document is a point near its topic, each chunk a point near its document.
// So the nearest neighbours of a query in one organization are near
// neighbours of many chunks of the others, which is what makes filtered
// vector search hard. Everything is generated from a seed: no downloads.
type corpus struct {
	orgs []corpusOrg
	// total is the number of chunks of all organizations.
	total int
}

type corpusOrg struct {
	id     string
	kbs    []string
	docs   []corpusDoc
	chunks []projections.StoredChunk
	// norms are the squared norms of the chunks' embeddings.
	norms []float64
	// queries are vectors near documents of the organization, and texts
	// words to go with them.
	queries [][]float32
	texts   []string
}

type corpusDoc struct {
	id, kb string
	center []float32
}

// corpusParams says what to generate.
type corpusParams struct {
	seed    uint64
	orgs    int
	chunks  int     // total, split by Zipf
	zipf    float64 // exponent: organization i (from 1) holds ∝ i^-zipf
	topics  int
	queries int // per organization
}

const (
	chunksPerDoc = 40
	kbsPerOrg    = 3
	// Spread of a document around its topic and of a chunk around its
	// document, as the norm of a Gaussian added to a unit vector: a chunk
	// is at cosine ≈ 0.89 from its document, two chunks of one document ≈
	// 0.8 apart, two documents of one topic ≈ 0.74.
	docSpread   = 0.6
	chunkSpread = 0.5
)

// zipfSizes splits total into n sizes ∝ i^-s, each at least 1.
func zipfSizes(n, total int, s float64) []int {
	var h float64
	for i := 1; i <= n; i++ {
		h += math.Pow(float64(i), -s)
	}
	sizes := make([]int, n)
	left := total
	for i := range sizes {
		sizes[i] = max(1, int(math.Round(float64(total)*math.Pow(float64(i+1), -s)/h)))
		left -= sizes[i]
	}
	sizes[0] += left // rounding
	return sizes
}

// near returns the unit vector of center plus a Gaussian of norm ≈ spread.
func near(r *rand.Rand, center []float32, spread float64) []float32 {
	v := make([]float32, len(center))
	scale := spread / math.Sqrt(float64(len(center)))
	var norm float64
	for i := range v {
		x := float64(center[i]) + r.NormFloat64()*scale
		v[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

// corpusWords is the vocabulary of chunk texts and queries, most frequent
// first: function words, then domain words, then a long tail. Words are
// drawn by a Zipf law, as in natural text, so a query's common words match
// most chunks and its rarer ones few.
var corpusWords = func() []string {
	words := strings.Fields(`the of and to a in is for on with that by this be are as at from or an
		policy leave invoice payment customer refund onboarding contract renewal security incident
		password laptop travel expense report quarterly revenue forecast support ticket escalation
		holiday benefit salary review goal team project deadline release deploy database backup
		restore access grant audit compliance privacy data retention vendor`)
	for i := len(words); i < 5000; i++ {
		words = append(words, fmt.Sprintf("term%04d", i))
	}
	return words
}()

// corpusText returns n words of the vocabulary drawn by z.
func corpusText(z *rand.Zipf, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(corpusWords[z.Uint64()])
	}
	return b.String()
}

func generateCorpus(p corpusParams) *corpus {
	r := rand.New(rand.NewPCG(p.seed, 0x9e3779b97f4a7c15))
	zero := make([]float32, ChunkDimensions)
	topics := make([][]float32, p.topics)
	for i := range topics {
		topics[i] = near(r, zero, 1)
	}
	words := rand.NewZipf(r, 1.07, 2, uint64(len(corpusWords)-1))
	c := &corpus{}
	for o, size := range zipfSizes(p.orgs, p.chunks, p.zipf) {
		org := corpusOrg{id: fmt.Sprintf("org-%03d", o)}
		for k := range kbsPerOrg {
			org.kbs = append(org.kbs, fmt.Sprintf("kb-%d", k))
		}
		for n := 0; n < size; n++ {
			if n%chunksPerDoc == 0 {
				org.docs = append(org.docs, corpusDoc{
					id: fmt.Sprintf("doc-%05d", len(org.docs)), kb: org.kbs[len(org.docs)%kbsPerOrg],
					center: near(r, topics[r.IntN(len(topics))], docSpread),
				})
			}
			doc := org.docs[len(org.docs)-1]
			org.chunks = append(org.chunks, projections.StoredChunk{
				// Chunk ids are unique across organizations, as the
				// ingestion's (UUIDs of stream, version and ordinal) are.
				ID: fmt.Sprintf("%s/%s/%03d", org.id, doc.id, n%chunksPerDoc), KnowledgeBaseID: doc.kb, DocumentID: doc.id,
				Ordinal: n % chunksPerDoc, Text: corpusText(words, 120), Embedding: near(r, doc.center, chunkSpread),
			})
		}
		for _, ch := range org.chunks {
			var n float64
			for _, x := range ch.Embedding {
				n += float64(x) * float64(x)
			}
			org.norms = append(org.norms, n)
		}
		for range p.queries {
			org.queries = append(org.queries, near(r, org.docs[r.IntN(len(org.docs))].center, chunkSpread))
			org.texts = append(org.texts, corpusText(words, 3))
		}
		c.total += size
		c.orgs = append(c.orgs, org)
	}
	return c
}

// exactTopK returns the ids of the k chunks of org nearest to q by cosine
// distance (ties by id), computed in float64: the ground truth.
func exactTopK(org corpusOrg, q []float32, k int) []string {
	type scored struct {
		id  string
		cos float64
	}
	var nq float64
	for _, x := range q {
		nq += float64(x) * float64(x)
	}
	all := make([]scored, len(org.chunks))
	for i, ch := range org.chunks {
		var dot float64
		for j, x := range ch.Embedding {
			dot += float64(q[j]) * float64(x)
		}
		all[i] = scored{ch.ID, dot / math.Sqrt(nq*org.norms[i])}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if a.cos != b.cos {
			if a.cos > b.cos {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, 0, k)
	for _, s := range all[:min(k, len(all))] {
		out = append(out, s.id)
	}
	return out
}

// recallAt returns |got ∩ want| / |want|.
func recallAt(got []projections.ChunkHit, want []string) float64 {
	if len(want) == 0 {
		return 1
	}
	n := 0
	for _, h := range got {
		if slices.Contains(want, h.ChunkID) {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

// loadCorpus writes the corpus through the adapter (ReplaceChunks, one
// document at a time, in units of about 5,000 chunks), as the ingestion
// projection would: a multi-row INSERT per document, since PostgreSQL
// refuses COPY FROM into a table under row-level security. Inserting into
// an HNSW index row by row is what makes a large load slow, so the load
// drops the index first and then rebuilds it from its own definition, as
// the owner (with room to build in memory), and vacuums and analyzes the
// table, as autovacuum would in production.
func loadCorpus(tb testing.TB, b *bundle, c *corpus) {
	tb.Helper()
	ctx := b.ctx
	start := time.Now()
	var indexDef string
	err := b.owner.QueryRow(ctx, `SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
		JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace
		WHERE n.nspname = $1 AND x.relname = 'knowledge_chunks_embedding'`, b.schema).Scan(&indexDef)
	if err != nil {
		tb.Fatalf("HNSW index definition: %v", err)
	}
	if _, err := b.owner.Exec(ctx, `DROP INDEX knowledge_chunks_embedding`); err != nil {
		tb.Fatal(err)
	}
	for _, org := range c.orgs {
		s := scope(tb, org.id)
		for from := 0; from < len(org.chunks); {
			to := min(from+5000, len(org.chunks))
			err := b.store.Checkpoints().Advance(ctx, "corpus", 0, func(ctx context.Context) error {
				for i := from; i < to; {
					j := i
					for j < to && org.chunks[j].DocumentID == org.chunks[i].DocumentID {
						j++
					}
					if err := b.store.Chunks().ReplaceChunks(ctx, s, org.chunks[i].DocumentID, org.chunks[i:j]); err != nil {
						return err
					}
					i = j
				}
				return nil
			})
			if err != nil {
				tb.Fatalf("load %s: %v", org.id, err)
			}
			from = to
		}
	}
	loaded := time.Now()
	conn, err := b.owner.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	// Room for the whole graph (about 3 kB a vector), so that the build
	// stays in memory.
	buildMem := max(1<<10, c.total*3/1024) // MB
	for _, stmt := range []string{
		fmt.Sprintf(`SET maintenance_work_mem = '%dMB'`, buildMem),
		indexDef,
		`RESET maintenance_work_mem`,
		`VACUUM (ANALYZE) knowledge_chunks`,
		`VACUUM (ANALYZE) knowledge_chunk_terms`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			tb.Fatalf("%s: %v", stmt, err)
		}
	}
	tb.Logf("corpus of %d chunks in %d organizations: inserted in %v, indexed and analyzed in %v",
		c.total, len(c.orgs), loaded.Sub(start).Round(time.Millisecond), time.Since(loaded).Round(time.Millisecond))
}
