package kafka_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
)

// lines is an io.Writer that Tail writes to while the test reads.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.buf.String(), "\n"), "\n")
}

func (l *lines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.buf.Bytes(), []byte("\n"))
}

// tail runs Tail until it has written n lines, then stops it.
func tail(t *testing.T, b *bundle, topics []string, group string, n int) []string {
	t.Helper()
	out := &lines{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kafka.Tail(ctx, b.brokers, topics, group, out, fastRejoin) }()
	deadline := time.After(60 * time.Second)
	for out.count() < n {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("tail stopped after %d lines: %v", out.count(), err)
		case <-deadline:
			cancel()
			t.Fatalf("tail wrote %d lines, want %d", out.count(), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	return out.lines()
}

// TestTailPrintsEnvelopes: Tail prints every event of the topics as the
// envelope's JSON, byte for byte what the log itself holds, each org's
// events of a category in log order; with a group, a second run resumes.
func TestTailPrintsEnvelopes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	head := b.appendMix(t, 0, 5)
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cp := eventstore.NewMemoryCheckpoint(0)
	b.runRelay(t, pub, kafka.TopicFunc(true), cp)
	waitCheckpoint(t, cp, head)

	topics, err := kafka.ConsumerTopics(orgA, "bot", "org")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	all, err := b.store.ReadAll(ctx, 0, eventstore.Filter{OrgID: orgA}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range all {
		line, _ := json.Marshal(env)
		want[string(line)] = true
	}
	got := tail(t, b, topics, "tail", len(want))
	last := map[string]uint64{}
	for _, line := range got {
		if !want[line] {
			t.Fatalf("tail printed %s\nwhich is not an event of org A as the log has it", line)
		}
		var env eventstore.Envelope
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatal(err)
		}
		if env.Position <= last[env.Stream.Category] {
			t.Fatalf("%s: position %d after %d", env.Stream.Category, env.Position, last[env.Stream.Category])
		}
		last[env.Stream.Category] = env.Position
		delete(want, line)
	}

	// The same group resumes after what it printed.
	more := b.appendMix(t, 5, 1)
	waitCheckpoint(t, cp, more)
	again := tail(t, b, topics, "tail", 2)
	for _, line := range again {
		var env eventstore.Envelope
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatal(err)
		}
		if env.Position <= 2 {
			t.Fatalf("the second run started over: %s", line)
		}
	}
}

// TestTailStopsOnMalformedMessage: a message that is not an event as the
// relay writes it stops Tail with ErrMalformed.
func TestTailStopsOnMalformedMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pub, err := kafka.NewPublisher(b.brokers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	msg := message.NewMessage("not-a-uuid", []byte(`{}`))
	msg.Metadata.Set(eventstore.MetaOrgID, orgA)
	if err := pub.Publish("palisade.bot", msg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = kafka.Tail(ctx, b.brokers, []string{"palisade.bot"}, "", &lines{})
	if !errors.Is(err, kafka.ErrMalformed) || !strings.Contains(err.Error(), "palisade.bot partition") {
		t.Fatalf("tail returned %v, want ErrMalformed naming the message", err)
	}
	t.Log(err)
}

// TestTailDoesNotCreateTopics: a mistyped topic is an error, even where
// the brokers create topics on first use.
func TestTailDoesNotCreateTopics(t *testing.T) {
	t.Parallel()
	b := setup(t) // allows auto-creation
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.Tail(ctx, b.brokers, []string{"palisade.bots"}, "", &lines{}); err == nil {
		t.Fatal("tail of a topic that does not exist returned nil")
	}
	if err := kafka.Tail(ctx, b.brokers, nil, "", &lines{}); err == nil {
		t.Fatal("tail of no topic returned nil")
	}
}
