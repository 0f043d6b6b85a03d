package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// ActorResolver returns the principal an event's actor is now: its current
// roles, or an error when it is no longer a member or live service account.
type ActorResolver interface {
	Current(ctx context.Context, orgID string, actor eventstore.Actor) (access.Principal, error)
}

// Chunker cuts a document's text into chunks (ids are set by the process).
type Chunker func(text string) []knowledge.Chunk

// IngestionProcess turns each added or replaced document version into its
// chunks, embedded, recorded as a DocumentChunked event. It re-authorizes
// the actor who added the document at execution time, and records a
// failure with the reason when that actor may no longer write the base.
// The chunks' vectors are in the embedding store before the event is
// recorded (see [ChunkEmbedding]), so the knowledge projection only reads
// them. Redelivery changes nothing: the document aggregate records one
// outcome per version, and the store already holds the vectors.
func IngestionProcess(p *Pipeline, actors ActorResolver, chunk Chunker, embedding ChunkEmbedding) *projections.Projection {
	return &projections.Projection{Name: "ingestion", Handlers: []projections.Handler{
		projections.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentAdded) error {
			return p.ingest(ctx, env, e.KnowledgeBaseID, e.Version, e.Content, actors, chunk, embedding)
		}),
		projections.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentReplaced) error {
			return p.ingest(ctx, env, "", e.Version, e.Content, actors, chunk, embedding)
		}),
	}}
}

func (p *Pipeline) ingest(ctx context.Context, env eventstore.Envelope, kbID string, version int, content string,
	actors ActorResolver, chunk Chunker, embedding ChunkEmbedding) error {
	ctx = WithOrigin(ctx, Origin{CorrelationID: env.CorrelationID, CausationID: env.ID.String(), TraceID: env.TraceID})
	self := access.Principal{
		Subject: "ingestion", Kind: access.KindProcess, OrgID: env.OrgID,
		OnBehalfOf: append(append([]string(nil), env.Actor.OnBehalfOf...), env.Actor.Subject),
	}
	doc := &knowledge.Document{}
	if _, _, err := p.load(ctx, env.Stream, doc); err != nil {
		return err
	}
	if kbID == "" {
		kbID = doc.KnowledgeBaseID()
	}
	kbName, err := kbStream(env.OrgID, kbID)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", env.Stream, err)
	}
	kb := &knowledge.KnowledgeBase{}
	if _, _, err := p.load(ctx, kbName, kb); err != nil {
		return err
	}

	// Re-authorize: the actor must still be able to write this base now.
	var decision access.Decision
	var refusal string
	who, err := actors.Current(ctx, env.OrgID, env.Actor)
	switch {
	case err != nil:
		refusal = "the actor who added the document is no longer a member or live service account"
	case !kb.Exists() || kb.Archived():
		refusal = "the knowledge base was archived"
	default:
		decision = access.Decide(who, access.KBWrite, knowledge.Resource(env.OrgID, kb.Grants()))
		if !decision.Allowed {
			refusal = "re-authorization at ingestion: " + decision.Reason()
		}
	}

	var chunks []knowledge.Chunk
	if refusal == "" && doc.Awaits(version) {
		chunks = chunk(content)
		for i := range chunks {
			chunks[i].Ordinal = i
			chunks[i].ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%s/%d/%d", env.Stream, version, i))).String()
			chunks[i].Hash = knowledge.ContentHash(chunks[i].Text)
		}
		if model, _ := kb.Embedding(); model != embedding.Model() {
			// Never mixed: the base's chunks are all of its one model.
			refusal = fmt.Sprintf("the knowledge base is embedded with %q and this server embeds with %q", model, embedding.Model())
		} else if len(chunks) <= knowledge.MaxChunks {
			scope, err := access.EventScope(env.OrgID)
			if err != nil {
				return fmt.Errorf("ingest %s: %w", env.Stream, err)
			}
			// A failure here (the endpoint is down) is returned, so the
			// process retries; nothing is recorded without its vectors.
			if _, err := embedding.Embed(ctx, scope, chunks); err != nil {
				return fmt.Errorf("ingest %s: %w", env.Stream, err)
			}
		}
	}

	_, err = p.execute(ctx, self, decision, env.Stream, newDocument, func(a aggregate) ([]domain.Event, error) {
		doc := a.(*knowledge.Document)
		if refusal != "" {
			return doc.Fail(version, refusal)
		}
		return doc.RecordChunks(version, chunks)
	})
	return err
}
