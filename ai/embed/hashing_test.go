package embed_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/ai/embed/embedtest"
)

func TestHashingContract(t *testing.T) {
	t.Parallel()
	embedtest.Run(t, func(*testing.T) embed.Embedder { return embed.NewHashing(0) })
}

func TestHashingDefaults(t *testing.T) {
	t.Parallel()
	h := embed.NewHashing(0)
	if h.Dimensions() != 384 || h.Model() != "palisade-hashing-v1-384" {
		t.Fatalf("NewHashing(0) = %d dims, model %q", h.Dimensions(), h.Model())
	}
	h = embed.NewHashing(64)
	if h.Dimensions() != 64 || h.Model() != "palisade-hashing-v1-64" {
		t.Fatalf("NewHashing(64) = %d dims, model %q", h.Dimensions(), h.Model())
	}
}

// The vectors are stored in read models that are rebuilt by replaying the
// log, possibly on another machine or Go version: they must be identical
// bit for bit, not merely close. A golden checksum catches any change to
// the features; change the model version with it.
func TestHashingStableAcrossProcesses(t *testing.T) {
	t.Parallel()
	h := embed.NewHashing(0)
	texts := []string{"Palisade keeps organization boundaries boring.", "", "東京 résumé 42"}
	a, err := h.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := embed.NewHashing(0).Embed(context.Background(), texts)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("vector %d differs between two embedders", i)
		}
	}
	sum := fnv.New64a()
	for _, v := range a {
		for _, x := range v {
			fmt.Fprintf(sum, "%.6f,", x)
		}
	}
	const golden = "880ed54e95e92eee"
	if got := fmt.Sprintf("%016x", sum.Sum64()); got != golden {
		t.Errorf("vector checksum = %s, want %s: the features changed; bump the model version (palisade-hashing-vN) and the golden value together", got, golden)
	}
}

func TestHashingTextWithoutWordsHasUnitVector(t *testing.T) {
	t.Parallel()
	out, err := embed.NewHashing(0).Embed(context.Background(), []string{"", "   ", "?!…", "\x00\xff"})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("text %d: squared norm %v", i, s)
		}
	}
}

func TestHashingRanksSharedWordsHigher(t *testing.T) {
	t.Parallel()
	h := embed.NewHashing(0)
	docs := []string{
		"To rotate an API key, open Settings, choose Keys and press Rotate.",
		"Our office is closed on public holidays.",
		"Invoices are emailed on the first business day of each month.",
		"Single sign-on supports SAML and OpenID Connect providers.",
	}
	queries := map[string]int{
		"how do I rotate my api keys":   0,
		"when is the office closed":     1,
		"monthly invoice email":         2,
		"saml sso provider":             3,
		"openid connect single sign on": 3,
	}
	vecs, err := h.Embed(context.Background(), docs)
	if err != nil {
		t.Fatal(err)
	}
	for q, want := range queries {
		qv, _ := h.Embed(context.Background(), []string{q})
		best, bestScore := -1, -2.0
		for i, d := range vecs {
			var s float64
			for j := range d {
				s += float64(d[j]) * float64(qv[0][j])
			}
			if s > bestScore {
				best, bestScore = i, s
			}
		}
		if best != want {
			t.Errorf("query %q ranked %q first, want %q", q, docs[best], docs[want])
		}
	}
}

func BenchmarkHashing1KBChunk(b *testing.B) {
	h := embed.NewHashing(0)
	chunk := benchmarkChunk(1024)
	texts := []string{chunk}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Embed(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
}

func BenchmarkHashing1KBChunkParallel(b *testing.B) {
	h := embed.NewHashing(0)
	chunk := benchmarkChunk(1024)
	b.SetBytes(int64(len(chunk)))
	b.RunParallel(func(pb *testing.PB) {
		texts := []string{chunk}
		for pb.Next() {
			if _, err := h.Embed(context.Background(), texts); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
}

func benchmarkChunk(size int) string {
	const prose = "Palisade stores every knowledge base document as events, chunks the text " +
		"during ingestion and embeds each chunk when the projection builds the read model. " +
		"Retrieval combines vector similarity with full-text ranking, restricted to the " +
		"organization and to the knowledge bases the caller may read. "
	return strings.Repeat(prose, size/len(prose)+1)[:size]
}
