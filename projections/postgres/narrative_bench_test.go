package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// noRecorder records nothing: the benchmark's auditor is refused nothing
// and reads no content.
type noRecorder struct{}

func (noRecorder) RecordDenial(context.Context, access.Principal, access.Decision, string) {}
func (noRecorder) RecordAuditContentRead(context.Context, access.Principal, access.Decision, *events.AuditContentRead) error {
	return nil
}

// BenchmarkNarrative measures GET /v1/audit/narratives/{id} below HTTP on
// PostgreSQL: the query service (authorize, read the correlation's events
// through the audit adapter, redact content for an auditor, tell each
// step) for a request of 50 events — a bot turn that searched, read
// documents and ran an analytics job — in an organization whose record
// holds 20,000 other events of 2,000 other requests (and another
// organization's as many). It reports p50 and p99 per narrative.
func BenchmarkNarrative(b *testing.B) {
	bb := setup(b)
	ctx := bb.ctx
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	chunks := make([]map[string]any, 8)
	for i := range chunks {
		chunks[i] = map[string]any{"id": fmt.Sprintf("chunk-%d", i), "ordinal": i, "text": "Every employee gets twenty-five days of paid leave a year, and more.", "hash": "h"}
	}
	chunked, _ := json.Marshal(map[string]any{"knowledge_base_id": "kb-1", "version": 1, "chunks": chunks})
	// The 50 steps of the request: the turn's question, then 12 rounds of
	// a tool call's decision, its search or job, and its completion, and
	// the answer.
	story := []struct{ typ, stream, data string }{{"TurnStarted", "conversation/c1", `{"turn_id":"t1","message_id":"m1","content":"How much leave do I get, and what did sales do?","content_sha256":"x","content_size":47}`}}
	for i := range 12 {
		call := fmt.Sprintf(`"turn_id":"t1","call_id":"call-%d","tool":"search_knowledge"`, i)
		story = append(story,
			struct{ typ, stream, data string }{"ToolCallDecided", "conversation/c1", `{` + call + `,"bot_id":"bot-1","arguments":"{\"query\":\"leave\"}","arguments_sha256":"a","allowed":true,"permission":"kb:read","effective_permissions":["kb:read"],"reason":"allowed: role member grants kb:read"}`},
			struct{ typ, stream, data string }{"KnowledgeSearched", fmt.Sprintf("search/s%d", i), `{"query":"leave","knowledge_base_ids":["kb-1"],"k":5,"hits":[{"chunk_id":"chunk-1","document_id":"doc-1","knowledge_base_id":"kb-1","score":0.9},{"chunk_id":"chunk-2","document_id":"doc-1","knowledge_base_id":"kb-1","score":0.8}]}`},
			struct{ typ, stream, data string }{"DocumentChunked", "doc/doc-1", string(chunked)},
			struct{ typ, stream, data string }{"ToolCallCompleted", "conversation/c1", `{` + call + `,"status":"ok","summary":"2 chunks","knowledge_base_ids":["kb-1"],"document_ids":["doc-1"],"chunk_ids":["chunk-1","chunk-2"],"row_count":0,"result_size":512,"result_sha256":"r"}`},
		)
	}
	story = append(story, struct{ typ, stream, data string }{"AnswerRecorded", "conversation/c1", `{"turn_id":"t1","message_id":"m2","content":"25 days [1]","content_sha256":"y","citations":[{"ref":1,"chunk_id":"chunk-1","document_id":"doc-1","knowledge_base_id":"kb-1","title":"Leave"}],"model":"builtin","prompt_tokens":100,"completion_tokens":10}`})
	if len(story) != 50 {
		b.Fatalf("the story has %d steps", len(story))
	}

	var position uint64
	add := func(ctx context.Context, org, corr, typ, stream, data string) error {
		position++
		cat, entity, _ := cutStream(stream)
		return bb.store.Audit().Add(ctx, scope(b, org), eventstore.Envelope{
			ID: eventstore.NewEventID(), Type: typ, Stream: eventstore.MustStreamName(cat, org, entity), Position: position,
			Data: json.RawMessage(data), Metadata: eventstore.Metadata{OrgID: org, CorrelationID: corr, CausationID: corr, SchemaVersion: 1,
				Actor:      eventstore.Actor{Subject: "bot-1", Kind: "bot", Roles: []string{"member"}, OnBehalfOf: []string{"alice"}},
				OccurredAt: at.Add(time.Duration(position) * time.Millisecond), Authorization: "allowed: role member grants bots:run"},
		})
	}
	// Other requests before and after the one measured, in both orgs.
	others := func(from, to int) {
		for r := from; r < to; r += 100 {
			err := bb.store.Checkpoints().Advance(ctx, "audit", position+1, func(ctx context.Context) error {
				for req := r; req < r+100; req++ {
					for _, org := range []string{"org-a", "org-b"} {
						for i := range 10 {
							s := story[i%len(story)]
							if err := add(ctx, org, fmt.Sprintf("req-%05d", req), s.typ, s.stream, s.data); err != nil {
								return err
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	others(0, 1000)
	err := bb.store.Checkpoints().Advance(ctx, "audit", position+1, func(ctx context.Context) error {
		for _, s := range story {
			if err := add(ctx, "org-a", "the-request", s.typ, s.stream, s.data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	others(1000, 2000)
	if _, err := bb.owner.Exec(ctx, `ANALYZE audit_events; ANALYZE audit_narratives`); err != nil {
		b.Fatal(err)
	}

	registry := events.NewRegistry()
	q := projections.NewQueries(bb.store.Tenancy(), bb.store.Bots(), bb.store.Audit(), noRecorder{}, registry)
	stories := projections.NewAuditStories(q, projections.NewNarrator(registry))
	auditor := access.NewUser("org-a", "audrey", []access.Role{access.RoleAuditor}, nil)
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		n, err := stories.Narrative(ctx, auditor, "the-request")
		took = append(took, time.Since(start))
		if err != nil || len(n.Steps) != 50 {
			b.Fatalf("%d steps, %v", len(n.Steps), err)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}

func cutStream(s string) (category, entity string, ok bool) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
