package readmodeltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// runConversations runs the cases of the conversation read model: the
// port's own contract, and the projection folding whole turns through it.
func runConversations(t *testing.T, newModels func(t *testing.T) Models) {
	models := func(t *testing.T) Models {
		t.Helper()
		m := newModels(t)
		if m.Conversations == nil {
			t.Skip("no conversation read model in this suite's Models")
		}
		return m
	}

	t.Run("ConversationsZeroScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		var zero access.Scope
		for name, err := range map[string]error{
			"Conversation":  first(m.Conversations.Conversation(ctx, zero, "conv-1")),
			"Conversations": first(m.Conversations.Conversations(ctx, zero, projections.ConversationQuery{})),
			"PutConversation": m.write(ctx, func(ctx context.Context) error {
				return m.Conversations.PutConversation(ctx, zero, projections.Conversation{ID: "conv-1"})
			}),
		} {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}
	})

	t.Run("ConversationsRoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		full := projections.Conversation{
			ID: "conv-1", BotID: "bot-1", Title: "Leave", StartedBy: "alice", StartedByKind: "user", Archived: true,
			CreatedAt: at, UpdatedAt: at.Add(time.Minute), Version: 9,
			Messages: []projections.ConversationMessage{
				{ID: "msg-1", TurnID: "turn-1", Role: projections.RoleUser, Content: "How many days?\n\u0000", CreatedAt: at},
				{ID: "msg-2", TurnID: "turn-1", Role: projections.RoleAssistant, Content: "Twenty [1].", Status: projections.MessageAnswered,
					Citations: []conversations.Citation{{Ref: 1, ChunkID: "chunk-1", DocumentID: "doc-1", KnowledgeBaseID: "kb-1", Title: "Handbook"}},
					ToolCalls: []projections.ToolCallView{
						{ID: "call-1", Tool: "sql", Arguments: `{"q":"\u0000"}`, Status: conversations.StatusDenied, Reason: "not granted", BotID: "bot-1"},
						{ID: "call-2", Tool: "search", Arguments: `{"query":"days"}`, Status: conversations.StatusOK, Reason: "granted",
							Summary: "3 chunks", BotID: "bot-2", Depth: 1},
					},
					Model: "m-1", Usage: &projections.TokenUsage{PromptTokens: 120, CompletionTokens: 7}, CreatedAt: at.Add(time.Second)},
				{TurnID: "turn-2", Role: projections.RoleAssistant, Status: projections.MessageFailed, Reason: "model unavailable",
					Citations: []conversations.Citation{}, ToolCalls: []projections.ToolCallView{}, CreatedAt: at.Add(time.Minute)},
			},
		}
		// A conversation without turns keeps nil messages.
		bare := projections.Conversation{ID: "conv-2", BotID: "bot-1", StartedBy: "alice", StartedByKind: "user", CreatedAt: at, UpdatedAt: at}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return errors.Join(m.Conversations.PutConversation(ctx, a, full), m.Conversations.PutConversation(ctx, a, bare))
		}))
		for _, want := range []projections.Conversation{full, bare} {
			got, err := m.Conversations.Conversation(ctx, a, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Conversation(%s) = %#v, %v\nwant %#v", want.ID, got, err, want)
			}
			if _, err := m.Conversations.Conversation(ctx, b, want.ID); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("org-b reads org-a's conversation %s: %v", want.ID, err)
			}
		}
		// Returned records are copies.
		got, _ := m.Conversations.Conversation(ctx, a, "conv-1")
		got.Messages[1].ToolCalls[0].Status = "ok"
		got.Messages[1].Citations[0].Title = "changed"
		got.Messages[1].Usage.PromptTokens = 0
		if again, _ := m.Conversations.Conversation(ctx, a, "conv-1"); !reflect.DeepEqual(again, full) {
			t.Fatal("a returned conversation aliases the stored one")
		}
		// Lists carry no messages.
		list, err := m.Conversations.Conversations(ctx, a, projections.ConversationQuery{})
		summary := full
		summary.Messages = nil
		if err != nil || !reflect.DeepEqual(list, []projections.Conversation{summary, bare}) {
			t.Fatalf("Conversations = %#v, %v", list, err)
		}
		if list, err := m.Conversations.Conversations(ctx, b, projections.ConversationQuery{}); err != nil || list == nil || len(list) != 0 {
			t.Fatalf("org-b lists %#v, %v; want an empty list", list, err)
		}
		// An update replaces the whole record.
		bare.Title, bare.Version = "renamed", 1
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Conversations.PutConversation(ctx, a, bare) }))
		if got, err := m.Conversations.Conversation(ctx, a, "conv-2"); err != nil || !reflect.DeepEqual(got, bare) {
			t.Fatalf("updated conversation = %#v, %v", got, err)
		}
	})

	t.Run("ConversationsListByOwnerAndBot", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		type owner struct{ sub, kind string }
		owners := []owner{{"alice", "user"}, {"bob", "user"}, {"alice", "service"}}
		must(t, m.write(ctx, func(ctx context.Context) error {
			for i := range 30 {
				o := owners[i%3]
				c := projections.Conversation{ID: fmt.Sprintf("conv-%02d", i), BotID: fmt.Sprintf("bot-%d", i%2),
					StartedBy: o.sub, StartedByKind: o.kind, CreatedAt: at, UpdatedAt: at}
				if err := m.Conversations.PutConversation(ctx, a, c); err != nil {
					return err
				}
				c.StartedBy, c.StartedByKind = "alice", "user"
				if err := m.Conversations.PutConversation(ctx, b, c); err != nil {
					return err
				}
			}
			return nil
		}))
		ids := func(q projections.ConversationQuery) []string {
			t.Helper()
			var out []string
			for {
				page, err := m.Conversations.Conversations(ctx, a, q)
				must(t, err)
				for _, c := range page {
					if c.Messages != nil {
						t.Fatalf("listed %s with messages", c.ID)
					}
					out = append(out, c.ID)
				}
				if len(page) < projections.PageLimit(q.Page.Limit) {
					return out
				}
				q.Page.After = page[len(page)-1].ID
			}
		}
		tests := []struct {
			name string
			q    projections.ConversationQuery
			want []string
		}{
			{"alice the user", projections.ConversationQuery{StartedBy: "alice", StartedByKind: "user", Page: projections.Page{Limit: 3}},
				[]string{"conv-00", "conv-03", "conv-06", "conv-09", "conv-12", "conv-15", "conv-18", "conv-21", "conv-24", "conv-27"}},
			{"alice the user, bot-1", projections.ConversationQuery{StartedBy: "alice", StartedByKind: "user", BotID: "bot-1", Page: projections.Page{Limit: 2}},
				[]string{"conv-03", "conv-09", "conv-15", "conv-21", "conv-27"}},
			{"alice the service", projections.ConversationQuery{StartedBy: "alice", StartedByKind: "service", BotID: "bot-0"},
				[]string{"conv-02", "conv-08", "conv-14", "conv-20", "conv-26"}},
			{"after a cursor", projections.ConversationQuery{StartedBy: "bob", Page: projections.Page{After: "conv-20", Limit: 100}},
				[]string{"conv-22", "conv-25", "conv-28"}},
			{"nobody", projections.ConversationQuery{StartedBy: "carol"}, nil},
		}
		for _, tt := range tests {
			if got := ids(tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}
	})

	t.Run("ConversationProjectionFoldsTurns", func(t *testing.T) {
		t.Parallel()
		m := models(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		log := turnsLog(t)
		fold(t, m, log, 0)
		want := foldedTurns()
		got, err := m.Conversations.Conversation(ctx, a, "conv-1")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("folded conversation = %#v, %v\nwant %#v", got, err, want)
		}
		// The same conversation id in org-b is org-b's own.
		if got, err := m.Conversations.Conversation(ctx, scope(t, "org-b"), "conv-1"); err != nil || got.StartedBy != "mallory" || len(got.Messages) != 2 {
			t.Fatalf("org-b's conversation = %#v, %v", got, err)
		}
		// Redelivered events, from any point of the log, change nothing.
		for _, after := range []uint64{0, 3, 7, uint64(len(log.envs) - 1)} {
			fold(t, m, log, after)
			if got, err := m.Conversations.Conversation(ctx, a, "conv-1"); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("after redelivering the events after %d: %#v, %v", after, got, err)
			}
		}
	})
}

// turnsLog is the log of conversation conv-1 of org-a: a turn with a
// refused and an allowed tool call (and a nested bot's call that failed)
// that ends with an answer, a failed turn and a cancelled one, then its
// archiving. Events of org-b's conv-1 are interleaved.
func turnsLog(t *testing.T) *sliceLog {
	t.Helper()
	log := &sliceLog{}
	add := func(org string, e domain.Event) {
		log.add(t, eventstore.MustStreamName(conversations.Category, org, "conv-1"), alice, e)
	}
	add("org-a", &conversations.ConversationStarted{ID: "conv-1", BotID: "bot-1", Title: "Leave", StartedBy: "alice", StartedByKind: "user"})
	add("org-b", &conversations.ConversationStarted{ID: "conv-1", BotID: "bot-9", StartedBy: "mallory", StartedByKind: "user"})
	add("org-a", &conversations.TurnStarted{TurnID: "turn-1", MessageID: "msg-1", Content: "How many days?"})
	add("org-a", &conversations.ToolCallDecided{TurnID: "turn-1", CallID: "call-1", BotID: "bot-1", Tool: "sql",
		Arguments: `{"q":"SELECT 1"}`, Allowed: false, Reason: "tool sql not granted"})
	add("org-a", &conversations.ToolCallDecided{TurnID: "turn-1", CallID: "call-2", BotID: "bot-1", Tool: "search",
		Arguments: `{"query":"days"}`, Allowed: true, Permission: "kb:read", Reason: "granted by role viewer"})
	add("org-b", &conversations.TurnStarted{TurnID: "turn-1", MessageID: "msg-b", Content: "Hijack?"})
	add("org-a", &conversations.ToolCallDecided{TurnID: "turn-1", CallID: "call-1", BotID: "bot-2", Depth: 1, Tool: "search",
		Arguments: `{"query":"leave"}`, Allowed: true, Reason: "granted"})
	add("org-a", &conversations.ToolCallCompleted{TurnID: "turn-1", CallID: "call-2", Tool: "search", Status: conversations.StatusOK,
		Summary: "3 chunks of 2 documents"})
	add("org-a", &conversations.ToolCallCompleted{TurnID: "turn-1", CallID: "call-1", Tool: "search", Status: conversations.StatusError,
		Error: "embedder unavailable"})
	add("org-a", &conversations.AnswerRecorded{TurnID: "turn-1", MessageID: "msg-2", Content: "Twenty [1].",
		Citations: []conversations.Citation{{Ref: 1, ChunkID: "chunk-1", DocumentID: "doc-1", KnowledgeBaseID: "kb-1", Title: "Handbook"}},
		Model:     "m-1", PromptTokens: 120, CompletionTokens: 7})
	add("org-a", &conversations.TurnStarted{TurnID: "turn-2", MessageID: "msg-3", Content: "And in 2027?"})
	add("org-a", &conversations.TurnFailed{TurnID: "turn-2", Reason: "model unavailable"})
	add("org-a", &conversations.TurnStarted{TurnID: "turn-3", MessageID: "msg-4", Content: "Never mind"})
	add("org-a", &conversations.ToolCallDecided{TurnID: "turn-3", CallID: "call-1", BotID: "bot-1", Tool: "search",
		Arguments: `{"query":"x"}`, Allowed: true, Reason: "granted"})
	add("org-a", &conversations.TurnCancelled{TurnID: "turn-3", Reason: "client disconnected"})
	add("org-a", &conversations.ConversationArchived{})
	return log
}

// foldedTurns is what folding turnsLog makes of org-a's conv-1.
func foldedTurns() projections.Conversation {
	sec := func(n int) time.Time { return at.Add(time.Duration(n) * time.Second) }
	return projections.Conversation{
		ID: "conv-1", BotID: "bot-1", Title: "Leave", StartedBy: "alice", StartedByKind: "user", Archived: true,
		CreatedAt: sec(1), UpdatedAt: sec(16), Version: 13,
		Messages: []projections.ConversationMessage{
			{ID: "msg-1", TurnID: "turn-1", Role: projections.RoleUser, Content: "How many days?", CreatedAt: sec(3)},
			{ID: "msg-2", TurnID: "turn-1", Role: projections.RoleAssistant, Content: "Twenty [1].", Status: projections.MessageAnswered,
				Citations: []conversations.Citation{{Ref: 1, ChunkID: "chunk-1", DocumentID: "doc-1", KnowledgeBaseID: "kb-1", Title: "Handbook"}},
				ToolCalls: []projections.ToolCallView{
					{ID: "call-1", Tool: "sql", Arguments: `{"q":"SELECT 1"}`, Status: conversations.StatusDenied,
						Reason: "tool sql not granted", BotID: "bot-1"},
					{ID: "call-2", Tool: "search", Arguments: `{"query":"days"}`, Status: conversations.StatusOK,
						Reason: "granted by role viewer", Summary: "3 chunks of 2 documents", BotID: "bot-1"},
					{ID: "call-1", Tool: "search", Arguments: `{"query":"leave"}`, Status: conversations.StatusError,
						Reason: "embedder unavailable", BotID: "bot-2", Depth: 1},
				},
				Model: "m-1", Usage: &projections.TokenUsage{PromptTokens: 120, CompletionTokens: 7}, CreatedAt: sec(10)},
			{ID: "msg-3", TurnID: "turn-2", Role: projections.RoleUser, Content: "And in 2027?", CreatedAt: sec(11)},
			{TurnID: "turn-2", Role: projections.RoleAssistant, Status: projections.MessageFailed, Reason: "model unavailable",
				Citations: []conversations.Citation{}, ToolCalls: []projections.ToolCallView{}, CreatedAt: sec(11)},
			{ID: "msg-4", TurnID: "turn-3", Role: projections.RoleUser, Content: "Never mind", CreatedAt: sec(13)},
			{TurnID: "turn-3", Role: projections.RoleAssistant, Status: projections.MessageCancelled, Reason: "client disconnected",
				Citations: []conversations.Citation{}, CreatedAt: sec(13), ToolCalls: []projections.ToolCallView{
					// Cancelled under the call: no outcome, and not running.
					{ID: "call-1", Tool: "search", Arguments: `{"query":"x"}`, Status: conversations.StatusError,
						Reason: "the turn ended before the call completed", BotID: "bot-1"},
				}},
		},
	}
}

// fold applies the events of log after position after to m through a
// fresh ConversationProjection, as the consumer engine does, one unit of
// work per batch.
func fold(t *testing.T, m Models, log *sliceLog, after uint64) {
	t.Helper()
	checkpoints := &unitCheckpoints{m: m, position: after}
	engine := consumer.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), checkpoints,
		projections.ConversationProjection(m.Conversations))
	reached, err := engine.Rebuild(context.Background(), log)
	if err != nil {
		t.Fatalf("fold after %d: %v", after, err)
	}
	if want := log.envs[len(log.envs)-1].Position; reached != want {
		t.Fatalf("fold after %d reached %d, want %d", after, reached, want)
	}
}

// sliceLog is a log held in a slice; only ReadAll, which a rebuild uses,
// is implemented.
type sliceLog struct {
	eventstore.Store
	envs []eventstore.Envelope
}

// add appends e to stream as actor's, at the next position and the
// stream's next version, a second after the event before it.
func (l *sliceLog) add(t *testing.T, stream eventstore.StreamName, actor eventstore.Actor, e domain.Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var version uint64
	for _, env := range l.envs {
		if env.Stream == stream {
			version++
		}
	}
	position := uint64(len(l.envs) + 1)
	l.envs = append(l.envs, eventstore.Envelope{
		ID: eventstore.NewEventID(), Type: e.EventType(), Stream: stream, StreamVersion: version, Position: position, Data: data,
		Metadata: eventstore.Metadata{OrgID: stream.OrgID, Actor: actor, SchemaVersion: 1,
			OccurredAt: at.Add(time.Duration(position) * time.Second)},
	})
}

// alice is the member most test logs are written by.
var alice = eventstore.Actor{Subject: "alice", Kind: "user"}

func (l *sliceLog) ReadAll(_ context.Context, after uint64, _ eventstore.Filter, limit int) ([]eventstore.Envelope, error) {
	var out []eventstore.Envelope
	for _, env := range l.envs {
		if env.Position > after && len(out) < limit {
			out = append(out, env)
		}
	}
	return out, nil
}

// unitCheckpoints keeps one group's position in memory and runs each
// advance as a unit of work of the models.
type unitCheckpoints struct {
	m        Models
	position uint64
}

func (c *unitCheckpoints) Position(context.Context, string) (uint64, error) { return c.position, nil }

func (c *unitCheckpoints) Advance(ctx context.Context, _ string, position uint64, apply func(context.Context) error) error {
	if err := c.m.write(ctx, apply); err != nil {
		return err
	}
	c.position = position
	return nil
}
