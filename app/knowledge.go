package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain/knowledge"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/knowledge/chunk"
	"github.com/palisadehq/palisade/projections"
)

// knowledgeContext is knowledge bases, their documents and search, with
// the ingestion process that chunks and embeds documents on a fair pool.
type knowledgeContext struct{}

func (knowledgeContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.KnowledgeProjection(asm.models.Knowledge, asm.models.Chunks, asm.vectors)}
}

func (knowledgeContext) assemble(_ context.Context, asm *assembly) error {
	p := asm.Pipeline
	cmds := commands.NewKnowledge(p, commands.Embedding{Model: asm.embedder.Model(), Dimensions: asm.embedder.Dimensions()})
	queries := projections.NewKnowledgeQueries(asm.models.Knowledge, asm.models.Chunks, asm.embedder, p, cmds)
	asm.Application.Commands.Knowledge = cmds
	asm.Application.Queries.Knowledge = queries
	asm.web.Commands.Knowledge = cmds
	asm.web.Queries.Knowledge = queries
	asm.routes = append(asm.routes, httpapi.KnowledgeRoutes())
	// Bots search and read through the same use cases, recorded as the
	// conversation's.
	asm.tools = append(asm.tools, conversation.KnowledgeTools(queries, asm.Application.Commands.Conversations)...)

	asm.keptInMemory(asm.embeddingPurge())
	ingestion := asm.newIngestion()
	asm.side.ingestion = ingestion
	asm.process(ingestion, ingestion.Process(), ingestion.OpenIngestions(), commands.IngestionJob)
	return nil
}

// newIngestion returns the ingestion process (stopped). It resolves the
// principals of document events as they are now, and embeds chunks into
// the durable embedding store before recording them.
func (a *App) newIngestion() *commands.IngestionRunner {
	chunker := a.cfg.Chunker
	if chunker == nil {
		chunker = chunkDocument
	}
	return a.Pipeline.NewIngestionRunner(a.principals, chunker, commands.ChunkEmbedding{Embedder: a.embedder, Store: a.vectors},
		a.cfg.Ingestion.Workers, a.cfg.Ingestion.PerOrg, a.cfg.Logger)
}

// ErrEmbeddingMismatch: a knowledge base was built with another embedding
// model or size than the configured embedder; Open refuses to start.
var ErrEmbeddingMismatch = errors.New("embedding model mismatch")

// newEmbedder returns the configured embedder: the built-in hashing
// embedder (offline, deterministic) unless an endpoint is configured.
func newEmbedder(cfg EmbeddingsConfig) (commands.Embedder, error) {
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

// maxListedBases bounds the bases a refusal to start names.
const maxListedBases = 10

// checkEmbeddings refuses to start when a live knowledge base of the log
// was built with another embedding model or size than the configured
// embedder: its chunks' vectors and the new queries' would not be
// comparable, and new documents would mix two models in one base.
func (a *App) checkEmbeddings(ctx context.Context) error {
	want := commands.Embedding{Model: a.embedder.Model(), Dimensions: a.embedder.Dimensions()}
	others, err := commands.BasesEmbeddedOtherwise(ctx, a.Store, want)
	if err != nil {
		return fmt.Errorf("check knowledge-base embeddings: %w", err)
	}
	if len(others) == 0 {
		return nil
	}
	var names []string
	for _, b := range others[:min(len(others), maxListedBases)] {
		names = append(names, fmt.Sprintf("%s in organization %s (%s, %d dimensions)", b.ID, b.OrgID, b.Model, b.Dimensions))
	}
	if len(others) > maxListedBases {
		names = append(names, fmt.Sprintf("and %d more", len(others)-maxListedBases))
	}
	return fmt.Errorf("%w: this server embeds with %s (%d dimensions), but %d knowledge base(s) were built with another model: %s; "+
		"start with the embeddings endpoint and model they were built with (PALISADE_EMBEDDINGS_URL, PALISADE_EMBEDDINGS_MODEL)",
		ErrEmbeddingMismatch, want.Model, want.Dimensions, len(others), strings.Join(names, "; "))
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
