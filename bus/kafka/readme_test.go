package kafka_test

import (
	"os"
	"strings"
	"testing"

	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// TestReadmeDocumentsTheFormat: README.md, the downstream reference, names
// every header a message carries, every event type and the topics.
func TestReadmeDocumentsTheFormat(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	msg, err := eventstore.ToMessage(eventstore.Envelope{ID: eventstore.NewEventID()})
	if err != nil {
		t.Fatal(err)
	}
	headers := []string{wkafka.UUIDHeaderKey}
	for k := range msg.Metadata {
		headers = append(headers, k)
	}
	for _, h := range headers {
		if !strings.Contains(readme, "| `"+h+"` |") {
			t.Errorf("README.md does not document the header %q", h)
		}
	}
	for _, typ := range events.NewRegistry().Types() {
		if !strings.Contains(readme, typ) {
			t.Errorf("README.md does not mention the event type %s", typ)
		}
	}
	for _, topic := range []string{"`org`", "`bot`", "`security`", "palisade.bot", kafka.LogTopic, kafka.ProjectionGroupPrefix} {
		if !strings.Contains(readme, topic) {
			t.Errorf("README.md does not mention %s", topic)
		}
	}
}
