package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
)

// Chunker cuts a document's text into chunks (ids are set by the process).
type Chunker func(text string) []knowledge.Chunk

// IngestionJob is the kind of the job that ingests one document version.
const IngestionJob = "knowledge.ingestion"

// IngestionProcess turns each added or replaced document version into its
// chunks, recorded as a DocumentChunked event. Each version's ingestion is
// a job (see RunJob): it re-authorizes the actor who added the document at
// execution time, with the scope recorded on the event, and records a
// failure with the reason when that actor may no longer write the base.
// The chunks' vectors are in the embedding store before the outcome is
// recorded (see [ChunkEmbedding]), so the knowledge projection only reads
// them. Redelivery changes nothing: the document aggregate records one outcome
// per version and the job one outcome per job.
//
// This group runs each ingestion inside its handler, one at a time; the
// application runs the same work on a fair pool instead ([IngestionRunner]).
func IngestionProcess(p *Pipeline, actors ActorResolver, chunk Chunker, embedding ChunkEmbedding) *consumer.Group {
	return &consumer.Group{Name: "ingestion", Kind: consumer.Process, Handlers: []consumer.Handler{
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentAdded) error {
			return p.ingest(ctx, env, e.KnowledgeBaseID, e.Version, e.Content, actors, chunk, embedding)
		}),
		consumer.On(func(ctx context.Context, env eventstore.Envelope, e *knowledge.DocumentReplaced) error {
			return p.ingest(ctx, env, "", e.Version, e.Content, actors, chunk, embedding)
		}),
	}}
}

func (p *Pipeline) ingest(ctx context.Context, env eventstore.Envelope, kbID string, version int, content string,
	actors ActorResolver, chunk Chunker, embedding ChunkEmbedding) error {
	spec := JobSpec{
		Kind: IngestionJob, Process: "ingestion", Subject: env.Stream, Key: strconv.Itoa(version),
		Grants:    access.NewPermissionSet(access.KBWrite),
		ActorGone: "the actor who added the document is no longer a member or live service account",
	}
	// base is the knowledge base authorize loaded: work embeds with its model.
	var base *knowledge.KnowledgeBase
	authorize := func(ctx context.Context, invoker, as access.Principal) (access.Decision, string, error) {
		if kbID == "" {
			doc := &knowledge.Document{}
			if _, _, err := p.load(ctx, env.Stream, doc); err != nil {
				return access.Decision{}, "", err
			}
			kbID = doc.KnowledgeBaseID()
		}
		kbName, err := kbStream(env.OrgID, kbID)
		if err != nil {
			return access.Decision{}, "", fmt.Errorf("ingest %s: %w", env.Stream, err)
		}
		kb := &knowledge.KnowledgeBase{}
		if _, _, err := p.load(ctx, kbName, kb); err != nil {
			return access.Decision{}, "", err
		}
		base = kb
		if !kb.Exists() || kb.Archived() {
			return access.Decision{}, "the knowledge base was archived", nil
		}
		// The invoker must still be able to write this base now (its
		// grants included), and the process holds only what it delegated.
		d := access.Decide(invoker, access.KBWrite, knowledge.Resource(env.OrgID, kb.Grants()))
		if !d.Allowed || !as.Permissions.Has(access.KBWrite) {
			return d, "re-authorization at ingestion: " + d.Reason(), nil
		}
		return d, "", nil
	}
	work := func(ctx context.Context, run JobRun) (JobOutcome, error) {
		refusal := run.Refusal
		chunks, err := p.chunkAndEmbed(ctx, env, version, content, base, refusal, chunk, embedding)
		var mismatch *embeddingMismatch
		switch {
		case errors.As(err, &mismatch):
			refusal = mismatch.Error()
		case err != nil:
			// The endpoint is down, say: the process retries; nothing is
			// recorded without its vectors.
			return JobOutcome{}, err
		}
		var outcome JobOutcome
		_, err = p.execute(ctx, run.As, run.Decision, env.Stream, newDocument, func(a aggregate) ([]domain.Event, error) {
			doc := a.(*knowledge.Document)
			outcome = settledOutcome(doc, version)
			if outcome.State != "" {
				return nil, nil // recorded by an earlier attempt, or superseded
			}
			if refusal != "" {
				outcome = JobOutcome{State: jobs.Failed, Reason: refusal}
				return doc.Fail(version, refusal)
			}
			evs, err := doc.RecordChunks(version, chunks)
			if err == nil && len(evs) == 1 {
				switch e := evs[0].(type) {
				case *knowledge.DocumentChunked:
					outcome = JobOutcome{State: jobs.Succeeded, Result: fmt.Sprintf("%d chunks", len(e.Chunks)), Items: len(e.Chunks)}
				case *knowledge.DocumentIngestionFailed:
					outcome = JobOutcome{State: jobs.Failed, Reason: e.Reason}
				}
			}
			return evs, err
		})
		return outcome, err
	}
	return p.RunJob(ctx, env, actors, spec, authorize, work)
}

// embeddingMismatch refuses a document whose base is embedded with another
// model than this server's: a base's chunks are all of its one model.
type embeddingMismatch struct{ base, server string }

func (e *embeddingMismatch) Error() string {
	return fmt.Sprintf("the knowledge base is embedded with %q and this server embeds with %q", e.base, e.server)
}

// chunkAndEmbed cuts version's content into chunks and puts their vectors
// in the embedding store, unless the version is refused or already has an
// outcome (then it returns no chunks).
func (p *Pipeline) chunkAndEmbed(ctx context.Context, env eventstore.Envelope, version int, content string,
	base *knowledge.KnowledgeBase, refusal string, chunk Chunker, embedding ChunkEmbedding) ([]knowledge.Chunk, error) {
	if refusal != "" || base == nil {
		return nil, nil
	}
	doc := &knowledge.Document{}
	if _, _, err := p.load(ctx, env.Stream, doc); err != nil {
		return nil, err
	}
	if !doc.Awaits(version) {
		return nil, nil
	}
	// A chunk's hash is recorded in clear and keys its vector in the
	// embedding store: the digest under the organization's key, never a
	// plain hash of its text.
	digest, err := p.contentDigest(ctx, env.OrgID)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", env.Stream, err)
	}
	chunks := chunk(content)
	for i := range chunks {
		chunks[i].Ordinal = i
		chunks[i].ID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%s/%d/%d", env.Stream, version, i))).String()
		chunks[i].Hash = digest(chunks[i].Text)
	}
	if model, _ := base.Embedding(); model != embedding.Model() {
		return nil, &embeddingMismatch{base: model, server: embedding.Model()}
	}
	if len(chunks) > knowledge.MaxChunks {
		return chunks, nil // RecordChunks refuses the version with its reason
	}
	scope, err := access.EventScope(env.OrgID)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", env.Stream, err)
	}
	if _, err := embedding.Embed(ctx, scope, chunks); err != nil {
		return nil, fmt.Errorf("ingest %s: %w", env.Stream, err)
	}
	return chunks, nil
}

// settledOutcome is the job outcome a document already records for
// version: its chunks or failure, or a cancellation when the version is no
// longer current. Zero when the version still waits for ingestion.
func settledOutcome(doc *knowledge.Document, version int) JobOutcome {
	switch settled, chunks, failure := doc.Settled(); {
	case !doc.Exists():
		return JobOutcome{State: jobs.Cancelled, Reason: "the document was deleted"}
	case doc.Version() != version:
		return JobOutcome{State: jobs.Cancelled, Reason: fmt.Sprintf("superseded by version %d", doc.Version())}
	case settled && failure != "":
		return JobOutcome{State: jobs.Failed, Reason: failure}
	case settled:
		return JobOutcome{State: jobs.Succeeded, Result: fmt.Sprintf("%d chunks", chunks), Items: chunks}
	}
	return JobOutcome{}
}
