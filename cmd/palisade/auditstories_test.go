package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// TestAuditNarrativeAndExportOffline: the narrative of a correlation and
// the export of an organization, read from the log with no server, numbered
// by the organization's sequence, content redacted unless --content.
func TestAuditNarrativeAndExportOffline(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	store, err := embedded.Open(ctx, filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	appendAs := func(org, stream, typ, corr, data string) {
		t.Helper()
		_, err := store.Append(ctx, eventstore.MustStreamName(strings.Split(stream, "/")[0], org, strings.Split(stream, "/")[1]), eventstore.Any(),
			[]eventstore.NewEvent{{Type: typ, Data: json.RawMessage(data), Metadata: eventstore.Metadata{
				OrgID: org, CorrelationID: corr, SchemaVersion: 1, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	appendAs("org-a", "bot/b1", "BotCreated", "r0", `{"id":"b1","name":"HR","instructions":"secret instructions","grants":{"tools":["search_knowledge"]}}`)
	appendAs("org-b", "bot/b9", "BotCreated", "r1", `{"id":"b9","name":"Other","instructions":"","grants":{}}`)
	appendAs("org-a", "doc/d1", "DocumentAdded", "r1", `{"id":"d1","knowledge_base_id":"kb1","title":"Leave","content":"25 days","content_hash":"h","content_type":"text/plain","version":1}`)
	appendAs("org-a", "job/j1", "JobSubmitted", "r1", `{"id":"j1","kind":"knowledge.ingestion","subject":"doc-org-a_d1","trigger_id":"x"}`)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	run1 := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"audit"}, append(args, "--data-dir", dataDir)...), &out, io.Discard)
		return out.String(), err
	}

	// r1 is in two organizations: the narrative needs --org.
	if _, err := run1("narrative", "--correlation", "r1"); err == nil || !strings.Contains(err.Error(), "--org") {
		t.Fatalf("a correlation of two orgs: %v", err)
	}
	out, err := run1("narrative", "--correlation", "r1", "--org", "org-a")
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		CorrelationID string `json:"correlation_id"`
		Steps         []struct {
			Sequence uint64 `json:"sequence"`
			Type     string `json:"type"`
			Summary  string `json:"summary"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if n.CorrelationID != "r1" || len(n.Steps) != 2 || n.Steps[0].Sequence != 2 || n.Steps[0].Type != "DocumentAdded" ||
		n.Steps[1].Sequence != 3 || !strings.Contains(n.Steps[1].Summary, "submitted job j1") {
		t.Fatalf("narrative %+v", n)
	}
	if strings.Contains(out, "25 days") {
		t.Error("the narrative shows content without --content")
	}
	if out, _ := run1("narrative", "--correlation", "r1", "--org", "org-a", "--content"); !strings.Contains(out, "25 days") {
		t.Error("--content does not show content")
	}
	if _, err := run1("narrative", "--correlation", "nope"); err == nil {
		t.Error("an unknown correlation id is no error")
	}

	for _, format := range []string{"jsonl", "ocsf"} {
		out, err := run1("export", "--org", "org-a", "--format", format)
		if err != nil {
			t.Fatal(err)
		}
		var lines []map[string]any
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var v map[string]any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, v)
		}
		if len(lines) != 3 || strings.Contains(out, "org-b") || strings.Contains(out, "secret instructions") {
			t.Errorf("%s export: %s", format, out)
		}
		if format == "ocsf" && lines[0]["class_uid"] != float64(6003) {
			t.Errorf("ocsf export: %v", lines[0])
		}
	}
	if out, _ := run1("export", "--org", "org-a", "--since", "2999-01-01T00:00:00Z"); out != "" {
		t.Errorf("export since the future: %s", out)
	}
}
