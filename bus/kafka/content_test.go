package kafka_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/eventstore"
)

// TestRedactedFormsMatchSchemas: what the downstream topics carry when
// content is off — every event type's payload with its content redacted —
// validates against the type's schema, for the zero and the filled value.
func TestRedactedFormsMatchSchemas(t *testing.T) {
	t.Parallel()
	registry := events.NewRegistry()
	for _, typ := range registry.Types() {
		sch := compileSchema(t, typ)
		zero, _ := registry.New(typ)
		for name, v := range map[string]any{"zero": zero, "filled": filled(t, reflect.TypeOf(zero).Elem())} {
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			redacted, _, err := registry.RedactContent(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(sch, redacted); err != nil {
				t.Errorf("%s %s redacted %s does not validate: %v", name, typ, redacted, err)
			}
		}
	}
}

const (
	canaryBody  = "CANARY-7f3a-document-body"
	canaryTitle = "CANARY-7f3a-document-title"
	canaryQuery = "CANARY-7f3a-search-query"
)

// appendCanaries appends a restricted knowledge base's document, its
// chunks and a search, with canary strings in every content field, and a
// bot; it returns the last position.
func appendCanaries(t *testing.T, b *bundle) uint64 {
	t.Helper()
	ctx := context.Background()
	appends := []struct {
		stream eventstore.StreamName
		event  interface{ EventType() string }
	}{
		{eventstore.MustStreamName(knowledge.DocumentCategory, orgA, "doc-1"), knowledge.DocumentAdded{
			ID: "doc-1", KnowledgeBaseID: "kb-1", Title: canaryTitle, ContentType: "text/plain", Content: canaryBody, ContentHash: "h", Version: 1}},
		{eventstore.MustStreamName(knowledge.DocumentCategory, orgA, "doc-1"), knowledge.DocumentChunked{
			KnowledgeBaseID: "kb-1", Version: 1, Chunks: []knowledge.Chunk{{ID: "c-1", Heading: canaryTitle, Text: canaryBody, Hash: "h"}}}},
		{eventstore.MustStreamName(knowledge.SearchCategory, orgA, "search-1"), knowledge.KnowledgeSearched{
			Query: canaryQuery, KnowledgeBaseIDs: []string{"kb-1"}, K: 3, Hits: []knowledge.SearchHit{{ChunkID: "c-1", DocumentID: "doc-1", KnowledgeBaseID: "kb-1"}}}},
		{eventstore.MustStreamName(bots.Category, orgA, "bot-1"), bots.BotCreated{ID: "bot-1", Name: "Helpdesk", Instructions: canaryBody}},
	}
	var last uint64
	for _, a := range appends {
		res, err := b.store.Append(ctx, a.stream, eventstore.Any(), []eventstore.NewEvent{newEvent(t, orgA, a.event)})
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastPosition
	}
	return last
}

// readRecords reads n records from topics from the start, raw.
func readRecords(t *testing.T, b *bundle, n int, topics ...string) []*kgo.Record {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %v", len(out), n, topics)
		}
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// recordBytes is everything a downstream consumer receives of a record.
func recordBytes(r *kgo.Record) []byte {
	var all bytes.Buffer
	all.WriteString(r.Topic)
	all.Write(r.Key)
	all.Write(r.Value)
	for _, h := range r.Headers {
		all.WriteString(h.Key)
		all.Write(h.Value)
	}
	return all.Bytes()
}

func redactor() kafka.RedactContent {
	registry := events.NewRegistry()
	return func(eventType string, data []byte) ([]byte, error) {
		out, _, err := registry.RedactContent(eventType, data)
		return out, err
	}
}

// TestCategoryTopicsCarryNoContent: with WithoutContent on the category
// relay (the default wiring), no byte of a canary placed in document
// text, titles, chunks, a search query or bot instructions reaches a
// downstream topic, in value, key or headers, while the content's hash and
// size do and the log topic keeps the content for the projections.
func TestCategoryTopicsCarryNoContent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	last := appendCanaries(t, b)
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	categories, logCP := eventstore.NewMemoryCheckpoint(0), eventstore.NewMemoryCheckpoint(0)
	b.runRelay(t, kafka.WithoutContent(pub, redactor()), kafka.TopicFunc(true), categories)
	b.runRelay(t, pub, kafka.LogTopicFunc(), logCP)
	waitCheckpoint(t, categories, last)
	waitCheckpoint(t, logCP, last)

	topics := []string{"palisade." + orgA + ".doc", "palisade." + orgA + ".search", "palisade." + orgA + ".bot"}
	downstream := readRecords(t, b, 4, topics...)
	redactedSeen := 0
	for _, r := range downstream {
		if bytes.Contains(recordBytes(r), []byte("CANARY")) {
			t.Errorf("content on downstream topic %s: %s", r.Topic, r.Value)
		}
		redactedSeen += bytes.Count(r.Value, []byte(`"redacted":true`))
		var h string
		for _, hd := range r.Headers {
			if hd.Key == eventstore.MetaType {
				h = string(hd.Value)
			}
		}
		if err := validate(compileSchema(t, h), r.Value); err != nil {
			t.Errorf("%s on %s does not validate: %v", h, r.Topic, err)
		}
	}
	// title+content, heading+text, query, instructions
	if redactedSeen != 6 {
		t.Errorf("%d redacted values downstream, want 6", redactedSeen)
	}
	logged := readRecords(t, b, 4, kafka.LogTopic)
	var all []byte
	for _, r := range logged {
		all = append(all, r.Value...)
	}
	for _, c := range []string{canaryBody, canaryTitle, canaryQuery} {
		if !bytes.Contains(all, []byte(c)) {
			t.Errorf("log topic lost content %q", c)
		}
	}
}
