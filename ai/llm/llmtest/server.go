package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
)

// ChatPath is where [Server] serves the chat-completions API.
const ChatPath = "/v1/chat/completions"

// Server is an in-test chat-completions endpoint. It answers each request
// with the [Reply] its [Handler] returns, as one JSON body or, when the
// request asks to stream, as server-sent events ending with "data: [DONE]",
// and it records every request for the test to inspect.
type Server struct {
	// URL is the server's root; pass it as the adapter's base URL.
	URL string

	handler Handler
	mu      sync.Mutex
	reqs    []Recorded
}

// Handler chooses the reply to one request. It may be called concurrently.
type Handler func(r Recorded) Reply

// Reply scripts the server's answer to one request. The zero Reply is an
// empty answer that finishes normally.
type Reply struct {
	// Content is the answer text; a streamed answer sends it word by word.
	Content string
	// ToolCalls are requested calls; an empty ID becomes "call_N". In a
	// stream each call's arguments arrive in several fragments, and the
	// fragments of several calls are interleaved.
	ToolCalls []llm.ToolCall
	// Model is the model the server says answered; default the request's.
	Model string
	// Usage is the reported usage; default: words of the request's message
	// contents and of Content.
	Usage *llm.Usage

	// Status, when neither 0 nor 200, answers with that status and an
	// OpenAI-shaped error body carrying ErrorMessage.
	Status       int
	ErrorMessage string
	// Header is added to the response.
	Header map[string]string

	// Delay waits before answering, or until the client gives up.
	Delay time.Duration
	// ChunkDelay waits between streamed events, or until the client gives
	// up.
	ChunkDelay time.Duration
	// Malformed answers with JSON that does not parse: the whole body, or
	// in a stream the first event.
	Malformed bool
	// Truncate ends the answer early: a stream after about half its events
	// and part of the next, without a finish reason or "[DONE]"; a JSON
	// body after half its bytes. The HTTP response itself ends cleanly.
	Truncate bool
	// Body, when set, is sent verbatim with ContentType (default
	// application/json) instead of anything above but Status and Delay.
	Body        string
	ContentType string
}

// Recorded is one request the server received.
type Recorded struct {
	Method        string
	Path          string
	Authorization string
	// Body is the raw request body.
	Body []byte
	// Chat is Body decoded; ParseError says why it could not be.
	Chat       ChatRequest
	ParseError error
}

// ChatRequest is the part of a chat-completions request the tests look at.
type ChatRequest struct {
	Model         string         `json:"model"`
	Messages      []ChatMessage  `json:"messages"`
	Tools         []ChatTool     `json:"tools"`
	Stream        bool           `json:"stream"`
	StreamOptions *StreamOptions `json:"stream_options"`
	MaxTokens     *int           `json:"max_tokens"`
}

// StreamOptions is the request's "stream_options".
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatMessage is one message as it went over the wire.
type ChatMessage struct {
	Role string `json:"role"`
	// Content is nil when the field was absent or null.
	Content    *string        `json:"content"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
	ToolCalls  []ChatToolCall `json:"tool_calls,omitempty"`
}

// Text is the message's content, "" when absent.
func (m ChatMessage) Text() string {
	if m.Content == nil {
		return ""
	}
	return *m.Content
}

// ChatToolCall is a tool call as it went over the wire.
type ChatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// ChatTool is an offered tool as it went over the wire.
type ChatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// NewServer starts a server that answers with h and closes it when the
// test ends.
func NewServer(t testing.TB, h Handler) *Server {
	t.Helper()
	s := &Server{handler: h}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Requests returns the requests received so far, in arrival order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.reqs...)
}

// Script answers the n-th request (from 0) with replies[n], and any
// request past the end with HTTP 500.
func Script(replies ...Reply) Handler {
	var mu sync.Mutex
	n := 0
	return func(Recorded) Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n > len(replies) {
			return Reply{Status: http.StatusInternalServerError, ErrorMessage: "llmtest: script exhausted"}
		}
		return replies[n-1]
	}
}

// Echo is a simple model: it answers "echo: " followed by the content of
// the last message, and never requests a tool.
func Echo(r Recorded) Reply {
	msgs := r.Chat.Messages
	if len(msgs) == 0 {
		return Reply{Content: "echo: nothing"}
	}
	last := msgs[len(msgs)-1]
	return Reply{Content: "echo: " + last.Role + " said " + last.Text()}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body}
	rec.ParseError = json.Unmarshal(body, &rec.Chat)
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()

	if r.Method != http.MethodPost || r.URL.Path != ChatPath {
		writeError(w, http.StatusNotFound, "llmtest: no such endpoint")
		return
	}
	if rec.ParseError != nil {
		writeError(w, http.StatusBadRequest, "llmtest: request body: "+rec.ParseError.Error())
		return
	}
	reply := s.handler(rec)
	for k, v := range reply.Header {
		w.Header().Set(k, v)
	}
	if !wait(r, reply.Delay) {
		return
	}
	switch {
	case reply.Status != 0 && reply.Status != http.StatusOK:
		writeError(w, reply.Status, reply.ErrorMessage)
	case reply.Body != "":
		ct := reply.ContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		_, _ = io.WriteString(w, reply.Body)
	case rec.Chat.Stream:
		streamReply(w, r, rec, reply)
	default:
		jsonReply(w, rec, reply)
	}
}

// wait sleeps for d unless the client goes away first, which it reports
// as false.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "llmtest_error"}})
	_, _ = w.Write(body)
}

type wireCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (reply Reply) model(rec Recorded) string {
	if reply.Model != "" {
		return reply.Model
	}
	return rec.Chat.Model
}

func (reply Reply) usage(rec Recorded) wireUsage {
	if reply.Usage != nil {
		u := *reply.Usage
		return wireUsage{u.PromptTokens, u.CompletionTokens, u.PromptTokens + u.CompletionTokens}
	}
	prompt := 0
	for _, m := range rec.Chat.Messages {
		prompt += len(strings.Fields(m.Text()))
	}
	completion := len(strings.Fields(reply.Content))
	return wireUsage{prompt, completion, prompt + completion}
}

func (reply Reply) finishReason() string {
	if len(reply.ToolCalls) > 0 {
		return "tool_calls"
	}
	return "stop"
}

func callID(c llm.ToolCall, i int) string {
	if c.ID != "" {
		return c.ID
	}
	return "call_" + strconv.Itoa(i+1)
}

func jsonReply(w http.ResponseWriter, rec Recorded, reply Reply) {
	w.Header().Set("Content-Type", "application/json")
	if reply.Malformed {
		_, _ = io.WriteString(w, `{"id":"chatcmpl-llmtest","choices":[{"index":0,"message":{"role":"assistant","content":"hel`)
		return
	}
	msg := map[string]any{"role": "assistant", "content": reply.Content}
	if len(reply.ToolCalls) > 0 {
		var calls []wireCall
		for i, c := range reply.ToolCalls {
			wc := wireCall{ID: callID(c, i), Type: "function"}
			wc.Function.Name, wc.Function.Arguments = c.Name, string(c.Arguments)
			calls = append(calls, wc)
		}
		msg["tool_calls"] = calls
		if reply.Content == "" {
			msg["content"] = nil
		}
	}
	body, _ := json.Marshal(map[string]any{
		"id":      "chatcmpl-llmtest",
		"object":  "chat.completion",
		"created": 0,
		"model":   reply.model(rec),
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": reply.finishReason()}},
		"usage":   reply.usage(rec),
	})
	if reply.Truncate {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
}

// streamEvents returns the data of every event of a streamed reply, without
// the final "[DONE]".
func streamEvents(rec Recorded, reply Reply) []string {
	model := reply.model(rec)
	chunk := func(delta map[string]any, finish any) string {
		b, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-llmtest", "object": "chat.completion.chunk", "created": 0, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		return string(b)
	}
	events := []string{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	for _, piece := range strings.SplitAfter(reply.Content, " ") {
		if piece != "" {
			events = append(events, chunk(map[string]any{"content": piece}, nil))
		}
	}
	// Each call opens with its id and name, then its arguments follow in
	// three fragments; the calls' fragments are interleaved.
	const fragments = 3
	for i, c := range reply.ToolCalls {
		wc := wireCall{Index: &i, ID: callID(c, i), Type: "function"}
		wc.Function.Name = c.Name
		events = append(events, chunk(map[string]any{"tool_calls": []wireCall{wc}}, nil))
	}
	for f := range fragments {
		for i, c := range reply.ToolCalls {
			args := string(c.Arguments)
			from, to := len(args)*f/fragments, len(args)*(f+1)/fragments
			wc := wireCall{Index: &i}
			wc.Function.Arguments = args[from:to]
			events = append(events, chunk(map[string]any{"tool_calls": []wireCall{wc}}, nil))
		}
	}
	events = append(events, chunk(map[string]any{}, reply.finishReason()))
	if rec.Chat.StreamOptions != nil && rec.Chat.StreamOptions.IncludeUsage {
		b, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-llmtest", "object": "chat.completion.chunk", "created": 0, "model": model,
			"choices": []any{}, "usage": reply.usage(rec),
		})
		events = append(events, string(b))
	}
	if reply.Malformed {
		events[0] = `{"id":"chatcmpl-llmtest","choices":[{"index":0,"delta":{"content":"hel`
	}
	return events
}

func streamReply(w http.ResponseWriter, r *http.Request, rec Recorded, reply Reply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(s string) {
		_, _ = io.WriteString(w, s)
		if flusher != nil {
			flusher.Flush()
		}
	}
	events := streamEvents(rec, reply)
	if reply.Truncate {
		half := max(len(events)/2, 1)
		for _, e := range events[:half] {
			send(fmt.Sprintf("data: %s\n\n", e))
		}
		if half < len(events) {
			next := events[half]
			send("data: " + next[:len(next)/2])
		}
		return
	}
	for i, e := range events {
		if i > 0 && !wait(r, reply.ChunkDelay) {
			return
		}
		send(fmt.Sprintf("data: %s\n\n", e))
	}
	send("data: [DONE]\n\n")
}
