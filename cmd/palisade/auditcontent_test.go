package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// writeCanaryLog writes a log whose organization holds a document of a
// restricted base, its chunks, a member's search and a bot, with canary
// strings in every content field.
func writeCanaryLog(t *testing.T, dir, org string) {
	t.Helper()
	ctx := context.Background()
	store, err := embedded.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appends := []struct {
		stream eventstore.StreamName
		event  interface{ EventType() string }
	}{
		{eventstore.MustStreamName(knowledge.DocumentCategory, org, "doc-1"), knowledge.DocumentAdded{
			ID: "doc-1", KnowledgeBaseID: "kb-1", Title: "CANARY-title", ContentType: "text/plain", Content: "CANARY-body", ContentHash: "h", Version: 1}},
		{eventstore.MustStreamName(knowledge.DocumentCategory, org, "doc-1"), knowledge.DocumentChunked{
			KnowledgeBaseID: "kb-1", Version: 1, Chunks: []knowledge.Chunk{{ID: "c-1", Heading: "CANARY-heading", Text: "CANARY-chunk", Hash: "h"}}}},
		{eventstore.MustStreamName(knowledge.SearchCategory, org, "s-1"), knowledge.KnowledgeSearched{Query: "CANARY-query", KnowledgeBaseIDs: []string{"kb-1"}}},
		{eventstore.MustStreamName(bots.Category, org, "bot-1"), bots.BotCreated{ID: "bot-1", Name: "Helpdesk", Instructions: "CANARY-instructions"}},
	}
	for _, a := range appends {
		data, err := json.Marshal(a.event)
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.Append(ctx, a.stream, eventstore.Any(), []eventstore.NewEvent{{Type: a.event.EventType(), Data: data,
			Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, SchemaVersion: 1, OccurredAt: eventstore.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditReplayRedactsContent: audit replay prints the record with no
// byte of content by default, for one organization or all; --content
// prints the content as recorded; the help says why the flag protects the
// output and not the log.
func TestAuditReplayRedactsContent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const org = "0198c0de-0000-7000-8000-00000000000a"
	writeCanaryLog(t, dir, org)
	replay := func(args ...string) string {
		t.Helper()
		var out, errs bytes.Buffer
		if err := run(context.Background(), append([]string{"audit", "replay", "--data-dir", dir}, args...), &out, &errs); err != nil {
			t.Fatalf("audit replay %v: %v (%s)", args, err, errs.String())
		}
		return out.String()
	}
	for _, args := range [][]string{{"--org", org}, nil} {
		out := replay(args...)
		if strings.Contains(out, "CANARY") {
			t.Errorf("audit replay %v printed content:\n%s", args, out)
		}
		if n := strings.Count(out, `"redacted":true`); n != 6 {
			t.Errorf("audit replay %v: %d redacted values, want 6:\n%s", args, n, out)
		}
		if lines := strings.Count(out, "\n"); lines != 4 {
			t.Errorf("audit replay %v: %d events, want 4", args, lines)
		}
	}
	out := replay("--org", org, "--content")
	for _, c := range []string{"CANARY-title", "CANARY-body", "CANARY-heading", "CANARY-chunk", "CANARY-query", "CANARY-instructions"} {
		if !strings.Contains(out, c) {
			t.Errorf("audit replay --content lost %q", c)
		}
	}

	var help bytes.Buffer
	err := run(context.Background(), []string{"audit", "replay", "-h"}, &bytes.Buffer{}, &help)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("audit replay -h: %v", err)
	}
	for _, want := range []string{"--content", "raw", "sha256"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help does not mention %q:\n%s", want, help.String())
		}
	}
}
