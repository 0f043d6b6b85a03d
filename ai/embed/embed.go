// Package embed owns the Embedder port, which turns texts into fixed-size
// vectors for retrieval, and its adapters: [Hashing], a deterministic
// offline embedder that is the embedded default, and [OpenAI], a client for
// any OpenAI-compatible embeddings endpoint (OpenAI, Ollama, vLLM,
// llama.cpp). Every adapter passes the contract suite in [embedtest].
//
// Every adapter returns unit-length (L2-normalised) vectors of exactly
// [Embedder.Dimensions] components, in the order of its input, so cosine
// similarity is a dot product and vectors from one adapter can be compared
// with each other, never with another adapter's.
//
// This package must never know about organizations, documents or storage:
// it sees texts, never whose they are, and it must never log or return a
// text or an API key in an error. Only the OpenAI adapter performs I/O.
package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Embedder turns texts into vectors. Implementations are safe for
// concurrent use.
type Embedder interface {
	// Model names the model and its configuration, so that vectors from
	// different models are never mixed in one index.
	Model() string
	// Dimensions is the length of every vector Embed returns.
	Dimensions() int
	// Embed returns one unit-length vector per text, in the order of texts.
	// An empty input gives an empty output and no error.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// DefaultDimensions is the vector size of Palisade's chunk index
// (vector(384) in the PostgreSQL read model).
const DefaultDimensions = 384

var (
	// ErrMalformedResponse means an embeddings endpoint answered with a
	// body that is not a valid embeddings response for the request.
	ErrMalformedResponse = errors.New("embed: malformed embeddings response")
	// ErrDimensions means an endpoint returned vectors of a size other
	// than the configured one.
	ErrDimensions = errors.New("embed: embedding has the wrong number of dimensions")
	// ErrResponseTooLarge means an endpoint's response exceeded the
	// configured size limit and was not read.
	ErrResponseTooLarge = errors.New("embed: embeddings response too large")
)

// StatusError is a non-success HTTP answer from an embeddings endpoint.
// Message is a short excerpt of the endpoint's error, with the API key
// removed.
type StatusError struct {
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("embed: endpoint answered HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("embed: endpoint answered HTTP %d: %s", e.StatusCode, e.Message)
}

// Retryable reports whether the same request may succeed later: rate
// limiting and server-side failures.
func (e *StatusError) Retryable() bool {
	return e.StatusCode == 429 || e.StatusCode == 408 || e.StatusCode >= 500
}

// normalize scales v to unit length in place. It reports false for a zero
// or non-finite vector, which cannot be normalised.
func normalize(v []float32) bool {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsInf(sum, 0) || math.IsNaN(sum) {
		return false
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return true
}
