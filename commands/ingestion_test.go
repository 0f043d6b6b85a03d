package commands_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
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
	store, err := embedded.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	registry := events.NewRegistry()
	p := commands.NewPipeline(store, registry, logger)

	platform := access.NewPlatform("ops")
	org, err := p.CreateOrg(ctx, platform, "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil)
	if _, err := p.AddMember(ctx, owner, tenancy.BuiltIn("bella"), []access.Role{access.RoleBuilder}); err != nil {
		t.Fatal(err)
	}
	bella := access.NewUser(org.ID, "bella", []access.Role{access.RoleBuilder}, nil)
	kb, err := p.CreateKnowledgeBase(ctx, owner, "Handbook", "", commands.Embedding{Model: "m", Dimensions: 3})
	if err != nil {
		t.Fatal(err)
	}
	byBella, err := p.AddDocument(ctx, bella, kb.ID, commands.DocumentInput{Title: "B", ContentType: "text/plain", Content: "one\n\ntwo"})
	if err != nil {
		t.Fatal(err)
	}
	byAlice, err := p.AddDocument(ctx, owner, kb.ID, commands.DocumentInput{Title: "A", ContentType: "text/plain", Content: "three\n\nfour\n\nfive"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.RemoveMember(ctx, owner, tenancy.BuiltIn("bella")); err != nil {
		t.Fatal(err)
	}

	tenancy := memory.NewTenancy()
	ingestion := commands.IngestionProcess(p, projections.NewPrincipals(tenancy), splitParagraphs)
	for run := 0; run < 2; run++ { // the second run is a full redelivery
		engine := projections.NewEngine(logger, memory.NewCheckpoints(), projections.TenancyProjection(tenancy), ingestion)
		if _, err := engine.Rebuild(ctx, store); err != nil {
			t.Fatal(err)
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
}
