package projections_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// BenchmarkNarrator measures the in-process part of a narrative: telling
// 50 events of a bot turn (decode the record fields, summary, resources,
// details), without the read model.
func BenchmarkNarrator(b *testing.B) {
	n := projections.NewNarrator(events.NewRegistry())
	chunks := make([]map[string]any, 8)
	for i := range chunks {
		chunks[i] = map[string]any{"id": fmt.Sprintf("chunk-%d", i), "ordinal": i, "text": "Every employee gets twenty-five days of paid leave a year, and more.", "hash": "h"}
	}
	chunked, _ := json.Marshal(map[string]any{"knowledge_base_id": "kb-1", "version": 1, "chunks": chunks})
	datas := map[string]string{
		"ToolCallDecided":   `{"turn_id":"t1","call_id":"c","tool":"search_knowledge","bot_id":"bot-1","arguments":"{\"query\":\"leave\"}","arguments_sha256":"a","allowed":true,"permission":"kb:read","effective_permissions":["kb:read"],"reason":"allowed"}`,
		"KnowledgeSearched": `{"query":"leave","knowledge_base_ids":["kb-1"],"k":5,"hits":[{"chunk_id":"chunk-1","document_id":"doc-1","knowledge_base_id":"kb-1","score":0.9}]}`,
		"DocumentChunked":   string(chunked),
		"ToolCallCompleted": `{"turn_id":"t1","call_id":"c","tool":"search_knowledge","status":"ok","summary":"2 chunks","chunk_ids":["chunk-1","chunk-2"],"result_size":512,"result_sha256":"r"}`,
	}
	var evs []projections.AuditEvent
	types := []string{"ToolCallDecided", "KnowledgeSearched", "DocumentChunked", "ToolCallCompleted"}
	for i := range 50 {
		typ := types[i%len(types)]
		evs = append(evs, projections.AuditEvent{Sequence: uint64(i + 1), Event: eventstore.Envelope{
			ID: eventstore.NewEventID(), Type: typ, Stream: eventstore.MustStreamName("conversation", "org-a", "c1"),
			Data:     json.RawMessage(datas[typ]),
			Metadata: eventstore.Metadata{OrgID: "org-a", CorrelationID: "r", Actor: eventstore.Actor{Subject: "bot-1", Kind: "bot", OnBehalfOf: []string{"alice"}}},
		}})
	}
	for b.Loop() {
		if got := n.Narrative("r", evs); len(got.Steps) != 50 {
			b.Fatal(len(got.Steps))
		}
	}
}
