package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/projections"
)

// conversationRoutes mounts the routes of conversations with bots.
func (s *Server) conversationRoutes(v1 *mux.Router) {
	v1.HandleFunc("/conversations", s.startConversation).Methods(http.MethodPost)
	v1.HandleFunc("/conversations", s.listConversations).Methods(http.MethodGet)
	v1.HandleFunc("/conversations/{id}", s.getConversation).Methods(http.MethodGet)
	v1.HandleFunc("/conversations/{id}", s.archiveConversation).Methods(http.MethodDelete)
	v1.HandleFunc("/conversations/{id}/messages", s.ask).Methods(http.MethodPost)
}

// ConversationCommands start and archive conversations.
type ConversationCommands interface {
	Start(ctx context.Context, who access.Principal, botID, title string) (commands.ConversationStarted, error)
	Archive(ctx context.Context, who access.Principal, id string) (commands.Result, error)
}

// BotRunner runs one turn of a conversation (conversation.Runner).
type BotRunner interface {
	Ask(ctx context.Context, who access.Principal, conversationID, content string, sink conversation.Sink) (conversation.Answer, error)
}

// ConversationQueries read conversations.
type ConversationQueries interface {
	Conversations(ctx context.Context, who access.Principal, botID string, page projections.Page) ([]projections.Conversation, error)
	Conversation(ctx context.Context, who access.Principal, id string) (projections.Conversation, error)
}

// StartConversationRequest is the body of POST /v1/conversations.
type StartConversationRequest struct {
	BotID string `json:"bot_id"`
	Title string `json:"title"`
}

// AskRequest is the body of POST /v1/conversations/{id}/messages.
type AskRequest struct {
	Content string `json:"content"`
}

type conversationStartedBody struct {
	ID          string    `json:"id"`
	BotID       string    `json:"bot_id"`
	Title       string    `json:"title,omitempty"`
	StartedBy   string    `json:"started_by"`
	CreatedAt   time.Time `json:"created_at"`
	Consistency string    `json:"consistency,omitempty"`
}

// AssistantMessage is a bot's answer as the API shows it.
type AssistantMessage struct {
	ID        string                      `json:"id"`
	Role      string                      `json:"role"`
	Content   string                      `json:"content"`
	Citations []conversations.Citation    `json:"citations"`
	ToolCalls []conversation.ToolCallView `json:"tool_calls"`
}

// Usage is the tokens a turn used.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

type answerBody struct {
	Message     AssistantMessage `json:"message"`
	Usage       Usage            `json:"usage"`
	Consistency string           `json:"consistency,omitempty"`
}

type conversationBody struct {
	projections.Conversation
	Consistency string `json:"consistency,omitempty"`
}

func (s *Server) startConversation(w http.ResponseWriter, r *http.Request) {
	var in StartConversationRequest
	if !s.decode(w, r, &in) {
		return
	}
	who := principalFrom(r.Context())
	started, err := s.deps.App.Commands.Conversations.Start(r.Context(), who, in.BotID, in.Title)
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	token := s.afterCommand(w, r, started.Position)
	w.Header().Set("Location", "/v1/conversations/"+started.ID)
	c := started.Conversation
	writeJSON(w, http.StatusCreated, conversationStartedBody{ID: started.ID, BotID: c.BotID, Title: c.Title,
		StartedBy: c.StartedBy, CreatedAt: started.At, Consistency: token})
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	botID := r.URL.Query().Get("bot_id")
	if len(botID) > 64 {
		writeError(w, r, fmt.Errorf("%w: bot_id is at most 64 bytes", errBadRequest), "conversation")
		return
	}
	list, err := s.deps.App.Queries.Conversations.Conversations(r.Context(), principalFrom(r.Context()), botID, page)
	if err != nil {
		writeError(w, r, err, "conversation")
		return
	}
	writeList(w, list, page, func(c projections.Conversation) string { return c.ID })
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	c, err := s.deps.App.Queries.Conversations.Conversation(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "conversation")
		return
	}
	writeJSON(w, http.StatusOK, conversationBody{Conversation: c})
}

func (s *Server) archiveConversation(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.Conversations.Archive(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "conversation")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

// ask runs one turn. With Accept: text/event-stream it streams the turn as
// Server-Sent Events; otherwise it answers the finished turn as JSON.
func (s *Server) ask(w http.ResponseWriter, r *http.Request) {
	var in AskRequest
	if !s.decode(w, r, &in) {
		return
	}
	who := principalFrom(r.Context())
	id := mux.Vars(r)["id"]
	if !acceptsEventStream(r) {
		answer, err := s.deps.App.Runner.Ask(r.Context(), who, id, in.Content, nil)
		if err != nil {
			writeError(w, r, err, "conversation")
			return
		}
		token := s.afterCommand(w, r, answer.Result.Position)
		writeJSON(w, http.StatusOK, answerBody{Message: assistantMessage(answer), Usage: usageOf(answer), Consistency: token})
		return
	}
	stream := &eventStream{w: w, rc: http.NewResponseController(w)}
	// A streamed turn may outlive the server's write timeout.
	_ = stream.rc.SetWriteDeadline(time.Now().Add(s.deps.TurnTimeout + 30*time.Second))
	answer, err := s.deps.App.Runner.Ask(r.Context(), who, id, in.Content, stream)
	if err != nil {
		if !stream.started() {
			writeError(w, r, err, "conversation")
			return
		}
		if errors.Is(err, conversation.ErrTurnCancelled) {
			return
		}
		p, _ := problemFor(r, err, "conversation")
		p.CorrelationID = w.Header().Get(headerCorrelationID)
		_ = stream.send("error", map[string]any{"problem": p})
		return
	}
	token := s.issueConsistency(w, r, answer.Result.Position)
	_ = stream.send("message.completed", answerBody{Message: assistantMessage(answer), Usage: usageOf(answer), Consistency: token})
}

func acceptsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		media, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(media), "text/event-stream") {
			return true
		}
	}
	return false
}

func assistantMessage(a conversation.Answer) AssistantMessage {
	calls := a.ToolCalls
	if calls == nil {
		calls = []conversation.ToolCallView{}
	}
	cites := a.Citations
	if cites == nil {
		cites = []conversations.Citation{}
	}
	return AssistantMessage{ID: a.MessageID, Role: "assistant", Content: a.Content, Citations: cites, ToolCalls: calls}
}

func usageOf(a conversation.Answer) Usage {
	return Usage{PromptTokens: a.Usage.PromptTokens, CompletionTokens: a.Usage.CompletionTokens}
}

// eventStream writes a turn as Server-Sent Events. Headers go out with the
// first event, so that a turn refused before it starts (not found, 429)
// still answers with its status and a problem body.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu      sync.Mutex
	began   bool
	failed  error
	nextSeq int
}

func (e *eventStream) started() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.began
}

func (e *eventStream) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed != nil {
		return e.failed
	}
	if !e.began {
		h := e.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		e.w.WriteHeader(http.StatusOK)
		e.began = true
	}
	e.nextSeq++
	if _, err := fmt.Fprintf(e.w, "id: %d\nevent: %s\ndata: %s\n\n", e.nextSeq, event, data); err != nil {
		e.failed = err
		return err
	}
	if err := e.rc.Flush(); err != nil {
		e.failed = err
		return err
	}
	return nil
}

func (e *eventStream) Delta(text string) error {
	return e.send("message.delta", map[string]string{"text": text})
}

func (e *eventStream) ToolCall(id, tool string, arguments json.RawMessage) error {
	args := any(arguments)
	if !json.Valid(arguments) {
		args = string(arguments)
	}
	return e.send("tool.call", map[string]any{"id": id, "tool": tool, "arguments": args})
}

func (e *eventStream) ToolResult(id, status, summary string) error {
	return e.send("tool.result", map[string]string{"id": id, "status": status, "summary": summary})
}
