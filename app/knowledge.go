package app

import (
	"fmt"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/knowledge/chunk"
	"github.com/palisadehq/palisade/projections"
)

// newEmbedder returns the configured embedder: the built-in hashing
// embedder (offline, deterministic) unless an endpoint is configured.
func newEmbedder(cfg EmbeddingsConfig) (projections.Embedder, error) {
	if cfg.URL == "" {
		return embed.NewHashing(embed.DefaultDimensions), nil
	}
	if cfg.Dimensions == 0 {
		cfg.Dimensions = embed.DefaultDimensions
	}
	if cfg.Dimensions != embed.DefaultDimensions {
		return nil, fmt.Errorf("embeddings: the chunk index holds %d dimensions, not %d", embed.DefaultDimensions, cfg.Dimensions)
	}
	e, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: cfg.URL, APIKey: cfg.APIKey, Model: cfg.Model, Dimensions: cfg.Dimensions})
	if err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	return e, nil
}

// chunkDocument cuts a document's text with the default chunk options.
func chunkDocument(text string) []knowledge.Chunk {
	parts := chunk.Split(text, chunk.DefaultOptions())
	out := make([]knowledge.Chunk, len(parts))
	for i, p := range parts {
		out[i] = knowledge.Chunk{Ordinal: p.Ordinal, Start: p.Start, End: p.End, Heading: p.Heading, Text: p.Text}
	}
	return out
}
