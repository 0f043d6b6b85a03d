// Package embedtest is the contract suite of the embed.Embedder port. Every
// adapter's tests call [Run], so the offline default and the production
// endpoints cannot drift apart in what callers may rely on.
//
// It must never depend on an adapter: it sees only the interface, and its
// examples are plain English that any reasonable embedding model ranks the
// same way.
package embedtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/palisadehq/palisade/ai/embed"
)

// Run checks the Embedder contract. newEmbedder is called once per subtest
// and may register cleanups on the t it is given.
func Run(t *testing.T, newEmbedder func(t *testing.T) embed.Embedder) {
	t.Helper()

	t.Run("DescribesItself", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		if e.Model() == "" {
			t.Error("Model() is empty")
		}
		if e.Dimensions() <= 0 {
			t.Errorf("Dimensions() = %d, want > 0", e.Dimensions())
		}
	})

	t.Run("EmptyInputGivesEmptyOutput", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		for _, in := range [][]string{nil, {}} {
			out, err := e.Embed(t.Context(), in)
			if err != nil {
				t.Fatalf("Embed(%#v): %v", in, err)
			}
			if len(out) != 0 {
				t.Fatalf("Embed(%#v) returned %d vectors", in, len(out))
			}
		}
	})

	t.Run("DimensionsAndUnitLength", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		texts := []string{
			"short",
			"A longer sentence about configuring single sign-on for an organization.",
			"Ünïcödé: grüße, 東京の天気, Привет мир, 🚀🚀",
			"1234 5678",
			strings.Repeat("retrieval augmented generation ", 60),
		}
		out := mustEmbed(t, e, texts)
		for i, v := range out {
			if len(v) != e.Dimensions() {
				t.Errorf("vector %d has %d dimensions, want %d", i, len(v), e.Dimensions())
			}
			if n := norm(v); math.Abs(n-1) > 1e-3 {
				t.Errorf("vector %d has L2 norm %v, want 1", i, n)
			}
			for j, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					t.Fatalf("vector %d component %d is %v", i, j, x)
				}
			}
		}
	})

	t.Run("Deterministic", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		texts := []string{"How do I rotate an API key?", "Invoices are sent monthly."}
		first := mustEmbed(t, e, texts)
		second := mustEmbed(t, e, texts)
		// Alone rather than in a batch: a vector must not depend on its neighbours.
		alone := mustEmbed(t, e, texts[1:])
		assertClose(t, "second call", first, second)
		assertClose(t, "embedded alone", first[1:], alone)
	})

	t.Run("OrderPreserved", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		// More texts than a typical batch, so batching must keep order too.
		texts := make([]string, 150)
		for i := range texts {
			texts[i] = fmt.Sprintf("document number %d about topic %s", i, topics[i%len(topics)])
		}
		forward := mustEmbed(t, e, texts)
		reversed := make([]string, len(texts))
		for i, s := range texts {
			reversed[len(texts)-1-i] = s
		}
		backward := mustEmbed(t, e, reversed)
		for i := range texts {
			assertClose(t, fmt.Sprintf("text %d", i), forward[i:i+1], backward[len(texts)-1-i:len(texts)-i])
		}
	})

	t.Run("SimilarTextsCloser", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		for _, c := range similarityCases {
			out := mustEmbed(t, e, []string{c.anchor, c.similar, c.unrelated})
			near, far := dot(out[0], out[1]), dot(out[0], out[2])
			if near <= far {
				t.Errorf("anchor %q: similar %q scored %.3f, not above unrelated %q at %.3f",
					c.anchor, c.similar, near, c.unrelated, far)
			}
		}
	})

	t.Run("ConcurrentUse", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		texts := []string{"alpha beta gamma", "delta epsilon", "zeta eta theta iota"}
		want := mustEmbed(t, e, texts)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				for range 5 {
					got, err := e.Embed(context.Background(), texts)
					if err != nil {
						errs <- err
						return
					}
					for i := range got {
						if !vectorsClose(got[i], want[i]) {
							errs <- fmt.Errorf("concurrent result for %q differs", texts[i])
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		e := newEmbedder(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		out, err := e.Embed(ctx, []string{"anything"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Embed with a cancelled context: err = %v, want context.Canceled", err)
		}
		if out != nil {
			t.Fatalf("Embed with a cancelled context returned %d vectors", len(out))
		}
	})
}

var topics = []string{"billing", "security", "onboarding", "analytics", "deployment"}

var similarityCases = []struct{ anchor, similar, unrelated string }{
	{
		"How do I reset my password?",
		"Steps to reset a forgotten password",
		"Quarterly revenue grew by ten percent",
	},
	{
		"Kubernetes deployment of the API server",
		"Deploying the API server on Kubernetes",
		"Banana bread recipe with walnuts",
	},
	{
		"The invoice for March is overdue",
		"March invoice payment overdue reminder",
		"The cat slept on the warm windowsill",
	},
	{
		"Configure single sign-on with SAML",
		"SAML single sign-on configuration guide",
		"Tides are caused by the moon's gravity",
	},
}

func mustEmbed(t *testing.T, e embed.Embedder, texts []string) [][]float32 {
	t.Helper()
	out, err := e.Embed(t.Context(), texts)
	if err != nil {
		t.Fatalf("Embed(%d texts): %v", len(texts), err)
	}
	if len(out) != len(texts) {
		t.Fatalf("Embed(%d texts) returned %d vectors", len(texts), len(out))
	}
	return out
}

func assertClose(t *testing.T, what string, a, b [][]float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vectors vs %d", what, len(a), len(b))
	}
	for i := range a {
		if !vectorsClose(a[i], b[i]) {
			t.Fatalf("%s: vector %d differs", what, i)
		}
	}
}

// vectorsClose allows for float noise of endpoints that batch on a GPU.
func vectorsClose(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	return dot(a, b) > 1-1e-4
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func norm(v []float32) float64 { return math.Sqrt(dot(v, v)) }
