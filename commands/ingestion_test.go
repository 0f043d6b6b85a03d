package commands_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/knowledge/embeddings"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

func splitParagraphs(text string) []knowledge.Chunk {
	var out []knowledge.Chunk
	for _, p := range strings.Split(text, "\n\n") {
		out = append(out, knowledge.Chunk{Text: p})
	}
	return out
}

// TestIngestionReauthorizes replays a log in which a builder adds a
// document and is removed before the ingestion process runs: the process
// re-authorizes with the builder's membership as it is then, and records
// the refusal instead of chunks. A document added by someone still allowed
// is chunked, once, however often the process sees it.
func TestIngestionReauthorizes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := openStore(t)
	registry := events.NewRegistry()
	p := commands.NewPipeline(store, registry, logger)
	tenancyCommands := commands.NewTenancy(p, nil)
	embedder := &countingEmbedder{Embedder: embed.NewHashing(3)}
	knowledgeCommands := commands.NewKnowledge(p, commands.Embedding{Model: embedder.Model(), Dimensions: 3})

	platform := access.NewPlatform("ops")
	org, err := tenancyCommands.CreateOrg(ctx, platform, "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil)
	if _, err := tenancyCommands.AddMember(ctx, owner, tenancy.BuiltIn("bella"), []access.Role{access.RoleBuilder}); err != nil {
		t.Fatal(err)
	}
	bella := access.NewUser(org.ID, "bella", []access.Role{access.RoleBuilder}, nil)
	kb, err := knowledgeCommands.CreateKnowledgeBase(ctx, owner, "Handbook", "")
	if err != nil {
		t.Fatal(err)
	}
	byBella, err := knowledgeCommands.AddDocument(ctx, bella, kb.ID, commands.DocumentInput{Title: "B", ContentType: "text/plain", Content: "one\n\ntwo"})
	if err != nil {
		t.Fatal(err)
	}
	byAlice, err := knowledgeCommands.AddDocument(ctx, owner, kb.ID, commands.DocumentInput{Title: "A", ContentType: "text/plain", Content: "three\n\nfour\n\nfive"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenancyCommands.RemoveMember(ctx, owner, tenancy.BuiltIn("bella")); err != nil {
		t.Fatal(err)
	}

	tenancy := memory.NewTenancy()
	vectors := embeddings.NewMemory()
	ingestion := commands.IngestionProcess(p, projections.NewPrincipals(tenancy), splitParagraphs,
		commands.ChunkEmbedding{Embedder: embedder, Store: vectors, BatchSize: 2})
	for run := 0; run < 2; run++ { // the second run is a full redelivery
		engine := consumer.NewEngine(logger, memory.NewCheckpoints(), projections.TenancyProjection(tenancy), ingestion)
		if _, err := engine.Rebuild(ctx, store); err != nil {
			t.Fatal(err)
		}
		// Alice's three chunks were embedded once, in batches of two;
		// bella's refused document was not embedded at all.
		if calls, texts := embedder.counts(); calls != 2 || texts != 3 {
			t.Fatalf("after run %d: %d embedding calls for %d texts, want 2 calls for 3", run, calls, texts)
		}
	}

	outcome := func(docID string) []eventstore.Envelope {
		envs, err := store.ReadStream(ctx, eventstore.MustStreamName(knowledge.DocumentCategory, org.ID, docID), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return envs[1:]
	}
	bellas := outcome(byBella.ID)
	if len(bellas) != 1 || bellas[0].Type != "DocumentIngestionFailed" {
		t.Fatalf("bella's document: %d outcomes %v, want one DocumentIngestionFailed", len(bellas), bellas)
	}
	var failed knowledge.DocumentIngestionFailed
	_ = json.Unmarshal(bellas[0].Data, &failed)
	if !strings.Contains(failed.Reason, "no longer a member") || bellas[0].Actor.Kind != "process" ||
		bellas[0].Actor.OnBehalfOf[0] != "bella" || bellas[0].CausationID == "" {
		t.Fatalf("failure = %+v by %+v", failed, bellas[0].Actor)
	}
	alices := outcome(byAlice.ID)
	if len(alices) != 1 || alices[0].Type != "DocumentChunked" {
		t.Fatalf("alice's document: %d outcomes, want one DocumentChunked", len(alices))
	}
	var chunked knowledge.DocumentChunked
	_ = json.Unmarshal(alices[0].Data, &chunked)
	if len(chunked.Chunks) != 3 || chunked.KnowledgeBaseID != kb.ID || chunked.Chunks[2].Text != "five" || chunked.Chunks[0].ID == "" {
		t.Fatalf("chunks = %+v", chunked)
	}
	// The vectors were in the store before the chunks were recorded.
	scope, _ := access.EventScope(org.ID)
	var hashes []string
	for _, c := range chunked.Chunks {
		hashes = append(hashes, c.Hash)
	}
	have, err := vectors.Get(ctx, scope, embedder.Model(), hashes)
	if err != nil || len(have) != 3 {
		t.Fatalf("embedding store holds %d of the 3 chunks' vectors (%v)", len(have), err)
	}
}

// countingEmbedder counts the calls and texts that reach an embedder.
type countingEmbedder struct {
	embed.Embedder
	mu           sync.Mutex
	calls, texts int
}

func (c *countingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.mu.Lock()
	c.calls++
	c.texts += len(texts)
	c.mu.Unlock()
	return c.Embedder.Embed(ctx, texts)
}

func (c *countingEmbedder) counts() (calls, texts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.texts
}

// job returns the job of a document version, folded from its stream, and
// the events of that stream.
func job(t *testing.T, ctx context.Context, store eventstore.Store, registry *events.Registry, orgID, docID string, version int) (*jobs.Job, []eventstore.Envelope) {
	t.Helper()
	doc := eventstore.MustStreamName(knowledge.DocumentCategory, orgID, docID)
	envs, err := store.ReadStream(ctx, eventstore.MustStreamName(jobs.Category, orgID, commands.JobID(doc, strconv.Itoa(version))), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	j := &jobs.Job{}
	for _, env := range envs {
		e, err := registry.Decode(env.Type, env.Data)
		if err != nil {
			t.Fatal(err)
		}
		j.Apply(e)
	}
	return j, envs
}

// TestIngestionIsAJob: each document version's ingestion is a job in its
// own stream that ends succeeded with the chunk count or failed with the
// reason, once however often the process runs; a job found running (an
// attempt interrupted by a crash) is finished by the next delivery, and one
// interrupted too often is failed with a reason, never left running.
func TestIngestionIsAJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := openStore(t)
	registry := events.NewRegistry()
	p := commands.NewPipeline(store, registry, logger)
	tenancyCommands := commands.NewTenancy(p, nil)
	knowledgeCommands := commands.NewKnowledge(p, commands.Embedding{Model: embed.NewHashing(3).Model(), Dimensions: 3})
	org, err := tenancyCommands.CreateOrg(ctx, access.NewPlatform("ops"), "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	scope := access.NewPermissionSet(access.KBWrite, access.KBRead)
	owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, &scope)
	kb, err := knowledgeCommands.CreateKnowledgeBase(ctx, access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil), "Handbook", "")
	if err != nil {
		t.Fatal(err)
	}
	add := func(content string) string {
		res, err := knowledgeCommands.AddDocument(ctx, owner, kb.ID, commands.DocumentInput{Title: content[:3], ContentType: "text/plain", Content: content})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	plain, interrupted, exhausted := add("one\n\ntwo"), add("three\n\nfour\n\nfive"), add("six")

	// A crash left interrupted's job running after one attempt, and
	// exhausted's after the last one.
	crash := func(docID string, attempts int) {
		doc := eventstore.MustStreamName(knowledge.DocumentCategory, org.ID, docID)
		id := commands.JobID(doc, "1")
		evs := []eventstore.NewEvent{{Type: "JobSubmitted", Metadata: eventstore.Metadata{OrgID: org.ID, SchemaVersion: 1, OccurredAt: eventstore.Now(), Actor: eventstore.Actor{Subject: "ingestion", Kind: "process"}},
			Data: []byte(`{"id":"` + id + `","kind":"knowledge.ingestion","subject":"` + doc.String() + `","trigger_id":""}`)}}
		for i := 1; i <= attempts; i++ {
			evs = append(evs, eventstore.NewEvent{Type: "JobStarted", Metadata: evs[0].Metadata, Data: []byte(`{"attempt":` + strconv.Itoa(i) + `}`)})
		}
		if _, err := store.Append(ctx, eventstore.MustStreamName(jobs.Category, org.ID, id), eventstore.NoStream(), evs); err != nil {
			t.Fatal(err)
		}
	}
	crash(interrupted, 1)
	crash(exhausted, jobs.MaxAttempts)

	tenancy := memory.NewTenancy()
	ingestion := commands.IngestionProcess(p, projections.NewPrincipals(tenancy), splitParagraphs,
		commands.ChunkEmbedding{Embedder: embed.NewHashing(3), Store: embeddings.NewMemory()})
	for run := 0; run < 2; run++ { // the second run is a full redelivery
		engine := consumer.NewEngine(logger, memory.NewCheckpoints(), projections.TenancyProjection(tenancy), ingestion)
		if _, err := engine.Rebuild(ctx, store); err != nil {
			t.Fatal(err)
		}
	}

	j, envs := job(t, ctx, store, registry, org.ID, plain, 1)
	if result, items := j.Result(); j.State() != jobs.Succeeded || items != 2 || result != "2 chunks" || len(envs) != 3 {
		t.Fatalf("plain job: %s with %d items after %d events", j.State(), items, len(envs))
	}
	// The job's events carry the process principal delegated by alice,
	// with her token scope.
	actor := envs[2].Actor
	if actor.Kind != "process" || actor.Subject != "ingestion" || len(actor.OnBehalfOf) != 1 || actor.OnBehalfOf[0] != "alice" ||
		strings.Join(actor.Scope, ",") != "kb:read,kb:write" || envs[2].CausationID == "" {
		t.Fatalf("job outcome recorded by %+v", actor)
	}
	j, envs = job(t, ctx, store, registry, org.ID, interrupted, 1)
	if _, items := j.Result(); j.State() != jobs.Succeeded || items != 3 || j.Attempts() != 2 || len(envs) != 4 {
		t.Fatalf("interrupted job: %s with %d items after %d attempts, %d events", j.State(), items, j.Attempts(), len(envs))
	}
	j, _ = job(t, ctx, store, registry, org.ID, exhausted, 1)
	if j.State() != jobs.Failed || !strings.Contains(j.Reason(), "interrupted 3 times") {
		t.Fatalf("exhausted job: %s (%s)", j.State(), j.Reason())
	}
	docEnvs, err := store.ReadStream(ctx, eventstore.MustStreamName(knowledge.DocumentCategory, org.ID, exhausted), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(docEnvs) != 2 || docEnvs[1].Type != "DocumentIngestionFailed" {
		t.Fatalf("exhausted document: %d events, last %s", len(docEnvs), docEnvs[len(docEnvs)-1].Type)
	}
}
