package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/ai/llm/llmtest"
)

const testAPIKey = "sk-test-4b1d9e7a2c6f8035e1a9c7d3b5f20486"

func newOpenAI(t *testing.T, baseURL string, edit func(*llm.OpenAIConfig)) *llm.OpenAI {
	t.Helper()
	cfg := llm.OpenAIConfig{BaseURL: baseURL, Model: "test-chat", APIKey: testAPIKey, Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	m, err := llm.NewOpenAI(cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return m
}

// both runs f once fetching the answer whole and once streaming it.
func both(t *testing.T, f func(t *testing.T, onDelta llm.DeltaFunc)) {
	t.Run("whole", func(t *testing.T) { t.Parallel(); f(t, nil) })
	t.Run("streamed", func(t *testing.T) { t.Parallel(); f(t, func(string) error { return nil }) })
}

func TestOpenAIContract(t *testing.T) {
	t.Parallel()
	llmtest.Run(t, func(t *testing.T) llm.Model {
		return newOpenAI(t, llmtest.NewServer(t, llmtest.Echo).URL, nil)
	})
}

func TestOpenAIRequestShape(t *testing.T) {
	t.Parallel()
	schema := `{"type":"object","properties":{"query":{"type":"string","maxLength":200}},"required":["query"]}`
	req := llm.Request{
		Messages: []llm.Message{
			sys("You answer from the knowledge base."),
			user("How do I reset my password?"),
			asked(call("call_7", "search_knowledge", `{"query":"reset password"}`)),
			result("call_7", `{"results":[{"ref":1,"text":"Use the account page."}]}`),
			answered("Use the account page. [1]"),
			user("Thanks"),
		},
		Tools:     []llm.Tool{{Name: "search_knowledge", Description: "Search the bot's knowledge.", Parameters: json.RawMessage(schema)}, {Name: "no_args"}},
		MaxTokens: 321,
	}
	for _, tc := range []struct {
		name, suffix string
		stream       bool
	}{
		{"whole, bare base URL", "", false},
		{"streamed, base URL with /v1/", "/v1/", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.NewServer(t, llmtest.Echo)
			m := newOpenAI(t, srv.URL+tc.suffix, nil)
			var onDelta llm.DeltaFunc
			if tc.stream {
				onDelta = func(string) error { return nil }
			}
			if _, err := m.Complete(t.Context(), req, onDelta); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Path != llmtest.ChatPath || r.Authorization != "Bearer "+testAPIKey {
				t.Errorf("path %q, Authorization %q", r.Path, r.Authorization)
			}
			c := r.Chat
			if c.Model != "test-chat" || c.MaxTokens == nil || *c.MaxTokens != 321 {
				t.Errorf("model %q max_tokens %v", c.Model, c.MaxTokens)
			}
			if c.Stream != tc.stream || (c.StreamOptions != nil && c.StreamOptions.IncludeUsage) != tc.stream {
				t.Errorf("stream %v, stream_options %+v", c.Stream, c.StreamOptions)
			}
			var roles []string
			for _, m := range c.Messages {
				roles = append(roles, m.Role)
			}
			if got := strings.Join(roles, ","); got != "system,user,assistant,tool,assistant,user" {
				t.Fatalf("roles %s", got)
			}
			// The system message carries the instructions and nothing
			// else; the tool's output goes as a tool message.
			if c.Messages[0].Text() != "You answer from the knowledge base." {
				t.Errorf("system message %q", c.Messages[0].Text())
			}
			call := c.Messages[2]
			if call.Content != nil || len(call.ToolCalls) != 1 || call.ToolCalls[0].ID != "call_7" || call.ToolCalls[0].Type != "function" ||
				call.ToolCalls[0].Function.Name != "search_knowledge" || call.ToolCalls[0].Function.Arguments != `{"query":"reset password"}` {
				t.Errorf("assistant tool-call message %+v", call)
			}
			if tool := c.Messages[3]; tool.ToolCallID != "call_7" || !strings.Contains(tool.Text(), "Use the account page.") {
				t.Errorf("tool message %+v", tool)
			}
			if a := c.Messages[4]; a.Text() != "Use the account page. [1]" || len(a.ToolCalls) != 0 {
				t.Errorf("assistant answer %+v", a)
			}
			if len(c.Tools) != 2 || c.Tools[0].Type != "function" || c.Tools[0].Function.Name != "search_knowledge" ||
				c.Tools[0].Function.Description != "Search the bot's knowledge." {
				t.Fatalf("tools %+v", c.Tools)
			}
			var got, want any
			_ = json.Unmarshal(c.Tools[0].Function.Parameters, &got)
			_ = json.Unmarshal([]byte(schema), &want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("parameters %s, want %s", c.Tools[0].Function.Parameters, schema)
			}
			if p := string(c.Tools[1].Function.Parameters); !strings.Contains(p, `"object"`) {
				t.Errorf("a tool without a schema went with parameters %s", p)
			}
		})
	}
}

func TestOpenAINoKeyNoAuthorization(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	m := newOpenAI(t, srv.URL, func(c *llm.OpenAIConfig) { c.APIKey = "" })
	if _, err := m.Complete(t.Context(), llm.Request{Messages: []llm.Message{user("hi")}}, nil); err != nil {
		t.Fatal(err)
	}
	if a := srv.Requests()[0].Authorization; a != "" {
		t.Fatalf("Authorization %q without a key", a)
	}
}

func TestOpenAIRejectsBadRequests(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Echo)
	m := newOpenAI(t, srv.URL, nil)
	for name, req := range map[string]llm.Request{
		"unknown role":      {Messages: []llm.Message{{Role: "developer", Content: "x"}}},
		"schema not object": {Messages: []llm.Message{user("x")}, Tools: []llm.Tool{{Name: "t", Parameters: json.RawMessage(`[1]`)}}},
		"schema not JSON":   {Messages: []llm.Message{user("x")}, Tools: []llm.Tool{{Name: "t", Parameters: json.RawMessage(`{`)}}},
	} {
		if _, err := m.Complete(t.Context(), req, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests sent for invalid input", n)
	}
}

func TestOpenAIToolCalls(t *testing.T) {
	t.Parallel()
	calls := []llm.ToolCall{
		{ID: "call_a", Name: "search_knowledge", Arguments: json.RawMessage(`{"query":"reset my password please","limit":5}`)},
		{ID: "call_b", Name: "send_email", Arguments: json.RawMessage(`{"to":"ops@example.com","body":"ünïcode ✓"}`)},
	}
	both(t, func(t *testing.T, onDelta llm.DeltaFunc) {
		srv := llmtest.NewServer(t, llmtest.Script(llmtest.Reply{ToolCalls: calls}))
		resp, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{
			Messages: []llm.Message{user("reset")},
			Tools:    []llm.Tool{searchTool, emailTool},
		}, onDelta)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ToolCalls) != 2 {
			t.Fatalf("%d tool calls: %+v", len(resp.ToolCalls), resp.ToolCalls)
		}
		for i, want := range calls {
			got := resp.ToolCalls[i]
			if got.ID != want.ID || got.Name != want.Name || string(got.Arguments) != string(want.Arguments) {
				t.Errorf("call %d = %s %s %s, want %s %s %s", i, got.ID, got.Name, got.Arguments, want.ID, want.Name, want.Arguments)
			}
		}
		if resp.Content != "" {
			t.Errorf("content %q with tool calls", resp.Content)
		}
	})
}

func TestOpenAIToolCallWithoutIDOrArguments(t *testing.T) {
	t.Parallel()
	// Some local servers send neither; the caller needs an id to answer
	// the call and arguments to validate.
	for _, tc := range []struct {
		name  string
		reply llmtest.Reply
	}{
		{"whole", llmtest.Reply{Body: `{"choices":[{"index":0,"message":{"role":"assistant","content":null,` +
			`"tool_calls":[{"type":"function","function":{"name":"no_args","arguments":""}}]},"finish_reason":"tool_calls"}]}`}},
		{"streamed", llmtest.Reply{ContentType: "text/event-stream", Body: "" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"no_args\"}}]}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
			"data: [DONE]\n\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.NewServer(t, llmtest.Script(tc.reply))
			var onDelta llm.DeltaFunc
			if tc.name == "streamed" {
				onDelta = func(string) error { return nil }
			}
			resp, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}, Tools: []llm.Tool{searchTool}}, onDelta)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].ID != "call_1" || resp.ToolCalls[0].Name != "no_args" || string(resp.ToolCalls[0].Arguments) != "{}" {
				t.Fatalf("calls %+v", resp.ToolCalls)
			}
		})
	}
}

// TestOpenAIToolCallLoop plays the turn runner: it runs what the model
// asks for, sends the result back and gets the answer.
func TestOpenAIToolCallLoop(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "search_knowledge", Arguments: json.RawMessage(`{"query":"password"}`)}}},
		llmtest.Reply{Content: "Reset it from the account page. [1]"},
	))
	m := newOpenAI(t, srv.URL, nil)
	msgs := []llm.Message{sys("Answer from the knowledge base."), user("How do I reset my password?")}
	var answer string
	for step := 0; step < 4 && answer == ""; step++ {
		var streamed strings.Builder
		resp, err := m.Complete(t.Context(), llm.Request{Messages: msgs, Tools: []llm.Tool{searchTool}}, func(s string) error {
			streamed.WriteString(s)
			return nil
		})
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if len(resp.ToolCalls) == 0 {
			answer = resp.Content
			if streamed.String() != answer {
				t.Fatalf("streamed %q, answer %q", streamed.String(), answer)
			}
			break
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: resp.Content, ToolCalls: resp.ToolCalls})
		for _, c := range resp.ToolCalls {
			msgs = append(msgs, result(c.ID, `{"results":[{"ref":1,"text":"Reset it from the account page."}]}`))
		}
	}
	if answer != "Reset it from the account page. [1]" {
		t.Fatalf("answer %q", answer)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	second := reqs[1].Chat.Messages
	if len(second) != 4 || second[0].Role != "system" || second[0].Text() != "Answer from the knowledge base." ||
		second[2].Role != "assistant" || len(second[2].ToolCalls) != 1 || second[2].ToolCalls[0].ID != "call_1" ||
		second[3].Role != "tool" || second[3].ToolCallID != "call_1" {
		t.Fatalf("second request's messages %+v", second)
	}
	for _, msg := range second {
		if msg.Role != "tool" && strings.Contains(msg.Text(), "account page") {
			t.Fatalf("tool output travelled as a %s message", msg.Role)
		}
	}
}

func TestOpenAIUsageAndModel(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, onDelta llm.DeltaFunc) {
		srv := llmtest.NewServer(t, llmtest.Script(
			llmtest.Reply{Content: "hello there", Model: "served-model-2025", Usage: &llm.Usage{PromptTokens: 17, CompletionTokens: 2}},
			llmtest.Reply{Content: "hi", Usage: &llm.Usage{PromptTokens: -5, CompletionTokens: -1}},
		))
		m := newOpenAI(t, srv.URL, nil)
		resp, err := m.Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Model != "served-model-2025" || resp.Usage != (llm.Usage{PromptTokens: 17, CompletionTokens: 2}) || resp.Content != "hello there" {
			t.Fatalf("response %+v", resp)
		}
		resp, err = m.Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Usage.PromptTokens < 0 || resp.Usage.CompletionTokens < 0 {
			t.Fatalf("negative usage passed through: %+v", resp.Usage)
		}
	})
}

func TestOpenAIStatusErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		retryable bool
	}{
		{http.StatusInternalServerError, true},
		{http.StatusTooManyRequests, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			both(t, func(t *testing.T, onDelta llm.DeltaFunc) {
				srv := llmtest.NewServer(t, llmtest.Script(llmtest.Reply{Status: tc.status, ErrorMessage: "the model is busy",
					Header: map[string]string{"Retry-After": "0"}}))
				_, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
				var serr *llm.StatusError
				if !errors.As(err, &serr) {
					t.Fatalf("err = %v, want a StatusError", err)
				}
				if serr.StatusCode != tc.status || serr.Retryable() != tc.retryable || serr.Message != "the model is busy" {
					t.Fatalf("StatusError %+v, retryable %v", serr, serr.Retryable())
				}
				if n := len(srv.Requests()); n != 1 {
					t.Fatalf("%d requests: the adapter must not retry", n)
				}
			})
		})
	}
}

func TestOpenAITimeouts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reply llmtest.Reply
	}{
		{"server never answers", llmtest.Reply{Content: "late", Delay: time.Minute}},
		// Only a streamed answer can stall halfway.
		{"stream stalls", llmtest.Reply{Content: "one two three four", ChunkDelay: time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			both(t, func(t *testing.T, onDelta llm.DeltaFunc) {
				if onDelta == nil && tc.reply.ChunkDelay > 0 {
					return
				}
				t.Run("config timeout", func(t *testing.T) {
					srv := llmtest.NewServer(t, llmtest.Script(tc.reply))
					m := newOpenAI(t, srv.URL, func(c *llm.OpenAIConfig) { c.Timeout = 150 * time.Millisecond })
					start := time.Now()
					_, err := m.Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("err = %v, want context.DeadlineExceeded", err)
					}
					if d := time.Since(start); d > 3*time.Second {
						t.Fatalf("gave up after %v", d)
					}
				})
				t.Run("ctx deadline", func(t *testing.T) {
					srv := llmtest.NewServer(t, llmtest.Script(tc.reply))
					ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
					defer cancel()
					start := time.Now()
					_, err := newOpenAI(t, srv.URL, nil).Complete(ctx, llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("err = %v, want context.DeadlineExceeded", err)
					}
					if d := time.Since(start); d > 3*time.Second {
						t.Fatalf("gave up after %v", d)
					}
				})
				t.Run("ctx cancelled", func(t *testing.T) {
					srv := llmtest.NewServer(t, llmtest.Script(tc.reply))
					ctx, cancel := context.WithCancel(t.Context())
					time.AfterFunc(100*time.Millisecond, cancel)
					_, err := newOpenAI(t, srv.URL, nil).Complete(ctx, llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("err = %v, want context.Canceled", err)
					}
				})
			})
		})
	}
}

func TestOpenAIRefusesBrokenResponses(t *testing.T) {
	t.Parallel()
	sse := func(events ...string) llmtest.Reply {
		var b strings.Builder
		for _, e := range events {
			b.WriteString("data: " + e + "\n\n")
		}
		return llmtest.Reply{Body: b.String(), ContentType: "text/event-stream"}
	}
	const stop = `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	for _, tc := range []struct {
		name   string
		stream bool
		reply  llmtest.Reply
	}{
		{"malformed JSON", false, llmtest.Reply{Content: "hello", Malformed: true}},
		{"truncated JSON", false, llmtest.Reply{Content: "hello there", Truncate: true}},
		{"not JSON", false, llmtest.Reply{Body: "<html>bad gateway</html>", ContentType: "text/html"}},
		{"HTML said to be JSON", false, llmtest.Reply{Body: "<html>bad gateway</html>"}},
		{"no choices", false, llmtest.Reply{Body: `{"choices":[]}`}},
		{"choices not a list", false, llmtest.Reply{Body: `{"choices":"many"}`}},
		{"empty object", false, llmtest.Reply{Body: `{}`}},
		{"message not an object", false, llmtest.Reply{Body: `{"choices":[{"index":0,"message":"hi"}]}`}},
		{"content not a string", false, llmtest.Reply{Body: `{"choices":[{"index":0,"message":{"role":"assistant","content":{"x":1}}}]}`}},
		{"tool call without a name", false, llmtest.Reply{Body: `{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}}]}`}},
		{"tool calls not a list", false, llmtest.Reply{Body: `{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":{"id":"c"}}}]}`}},
		{"malformed event", true, llmtest.Reply{Content: "hello", Malformed: true}},
		{"truncated stream", true, llmtest.Reply{Content: "one two three four five six", Truncate: true}},
		{"truncated stream of tool calls", true, llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "a", Arguments: json.RawMessage(`{"x":"yyyyyyyy"}`)}}, Truncate: true}},
		{"stream without [DONE] or finish", true, sse(`{"choices":[{"index":0,"delta":{"content":"hi"}}]}`)},
		{"JSON answer to a stream request", true, llmtest.Reply{Body: `{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`}},
		{"event not JSON", true, sse(`hello`, stop, `[DONE]`)},
		{"streamed tool call without a name", true, sse(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"arguments":"{}"}}]}}]}`, stop, `[DONE]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.NewServer(t, llmtest.Script(tc.reply))
			var onDelta llm.DeltaFunc
			if tc.stream {
				onDelta = func(string) error { return nil }
			}
			resp, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}, Tools: []llm.Tool{searchTool}}, onDelta)
			if !errors.Is(err, llm.ErrMalformedResponse) {
				t.Fatalf("err = %v (response %+v), want ErrMalformedResponse", err, resp)
			}
		})
	}
}

func TestOpenAIAcceptsJSONLabelledOtherwise(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Script(llmtest.Reply{ContentType: "text/plain; charset=utf-8",
		Body: `{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`}))
	resp, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, nil)
	if err != nil || resp.Content != "hi" {
		t.Fatalf("response %+v, err %v", resp, err)
	}
}

// A connection that breaks while the body arrives is a transport failure,
// not a malformed response.
func TestOpenAIBrokenConnectionIsNotMalformed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, `{"choices":[`)
	}))
	t.Cleanup(srv.Close)
	_, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, nil)
	if err == nil || errors.Is(err, llm.ErrMalformedResponse) {
		t.Fatalf("err = %v, want a transport error", err)
	}
}

func TestOpenAIStreamErrorEvent(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(t, llmtest.Script(llmtest.Reply{ContentType: "text/event-stream",
		Body: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
			"data: {\"error\":{\"message\":\"the model crashed\",\"code\":500}}\n\n"}))
	_, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "the model crashed") {
		t.Fatalf("err = %v, want the stream's error", err)
	}
}

func TestOpenAIResponseTooLarge(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, onDelta llm.DeltaFunc) {
		srv := llmtest.NewServer(t, llmtest.Script(llmtest.Reply{Content: strings.Repeat("word ", 2000)}))
		m := newOpenAI(t, srv.URL, func(c *llm.OpenAIConfig) { c.MaxResponseBytes = 4096 })
		_, err := m.Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
		if !errors.Is(err, llm.ErrResponseTooLarge) {
			t.Fatalf("err = %v, want ErrResponseTooLarge", err)
		}
	})
}

// Servers echo credentials back (OpenAI's 401 quotes the key it was given);
// whatever happens, the key must not reach an error.
func TestOpenAIErrorsNeverContainTheKey(t *testing.T) {
	t.Parallel()
	echo := func(status int, body, contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, strings.ReplaceAll(body, "KEY", key))
		}
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"401 quoting the key", echo(401, `{"error":{"message":"Incorrect API key provided: KEY."}}`, "application/json")},
		{"401 quoting most of the key", echo(401, `{"error":{"message":"Incorrect API key provided: `+testAPIKey[:30]+`…"}}`, "application/json")},
		{"500 with the key in plain text", echo(500, "upstream said KEY", "text/plain")},
		{"malformed body with the key", echo(200, `{"choices": KEY}`, "application/json")},
		{"stream error with the key", echo(200, "data: {\"error\":{\"message\":\"bad key KEY\"}}\n\n", "text/event-stream")},
		{"malformed event with the key", echo(200, "data: {KEY\n\n", "text/event-stream")},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/steal?k="+testAPIKey, http.StatusFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			both(t, func(t *testing.T, onDelta llm.DeltaFunc) {
				_, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, onDelta)
				if err == nil {
					t.Fatal("no error")
				}
				for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
					if strings.Contains(s, testAPIKey[:12]) {
						t.Fatalf("error leaks the API key: %s", s)
					}
				}
			})
		})
	}
	t.Run("transport error", func(t *testing.T) {
		t.Parallel()
		_, err := newOpenAI(t, "http://127.0.0.1:1", nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, nil)
		if err == nil || strings.Contains(err.Error(), testAPIKey[:12]) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestOpenAIDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	stolen := ""
	thief := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		stolen = r.Header.Get("Authorization")
	}))
	t.Cleanup(thief.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.URL+llmtest.ChatPath, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	_, err := newOpenAI(t, srv.URL, nil).Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}}, nil)
	var serr *llm.StatusError
	if !errors.As(err, &serr) || serr.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want a 307 StatusError", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if stolen != "" {
		t.Fatal("the request followed the redirect with the key")
	}
}

func TestNewOpenAIValidatesConfig(t *testing.T) {
	t.Parallel()
	valid := llm.OpenAIConfig{BaseURL: "https://api.openai.com", Model: "gpt-test", APIKey: testAPIKey}
	for _, tc := range []struct {
		name string
		edit func(*llm.OpenAIConfig)
	}{
		{"no model", func(c *llm.OpenAIConfig) { c.Model = "" }},
		{"no URL", func(c *llm.OpenAIConfig) { c.BaseURL = "" }},
		{"relative URL", func(c *llm.OpenAIConfig) { c.BaseURL = "api.openai.com" }},
		{"ftp URL", func(c *llm.OpenAIConfig) { c.BaseURL = "ftp://example.com" }},
		{"credentials in URL", func(c *llm.OpenAIConfig) { c.BaseURL = "https://user:" + testAPIKey + "@example.com" }},
		{"query in URL", func(c *llm.OpenAIConfig) { c.BaseURL = "https://example.com/?key=1" }},
		{"key with newline", func(c *llm.OpenAIConfig) { c.APIKey = "abc\r\nX-Evil: 1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tc.edit(&cfg)
			_, err := llm.NewOpenAI(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), testAPIKey[:12]) {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
	m, err := llm.NewOpenAI(valid)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "gpt-test" {
		t.Fatalf("Name %q", m.Name())
	}
}

// roundTripFunc serves responses without a network, for fuzzing.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzOpenAIResponse feeds arbitrary bodies to the adapter, as JSON and as
// an event stream: whatever a server sends, Complete returns a response or
// an error, and never panics.
func FuzzOpenAIResponse(f *testing.F) {
	for _, seed := range []string{
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`,
		`{"choices":[{"index":0,"message":{"tool_calls":[{"id":"a","type":"function","function":{"name":"x","arguments":"{"}}]}}]}`,
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"index\":-9223372036854775808,\"delta\":{\"tool_calls\":[{\"index\":9223372036854775807,\"function\":{\"arguments\":\"x\"}}]}}]}\n\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1,\"function\":{\"name\":\"x\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
		`{"choices":[{"message":null}],"usage":{"prompt_tokens":-1e300}}`,
		"data: {\"error\":\"x\"}\n\n",
		"event: x\ndata: [\n\n",
		"",
		"null",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, body string, stream bool) {
		contentType := "application/json"
		if stream {
			contentType = "text/event-stream"
		}
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {contentType}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})}
		m := newOpenAI(t, "http://model.invalid", func(c *llm.OpenAIConfig) {
			c.HTTPClient = client
			c.MaxResponseBytes = 1 << 16
		})
		var onDelta llm.DeltaFunc
		var streamed strings.Builder
		if stream {
			onDelta = func(s string) error { streamed.WriteString(s); return nil }
		}
		resp, err := m.Complete(t.Context(), llm.Request{Messages: []llm.Message{user("x")}, Tools: []llm.Tool{searchTool}}, onDelta)
		if err != nil {
			return
		}
		if stream && streamed.String() != resp.Content {
			t.Fatalf("streamed %q, content %q", streamed.String(), resp.Content)
		}
		if resp.Usage.PromptTokens < 0 || resp.Usage.CompletionTokens < 0 {
			t.Fatalf("negative usage %+v", resp.Usage)
		}
		for _, c := range resp.ToolCalls {
			if c.ID == "" || c.Name == "" {
				t.Fatalf("incomplete call %+v", c)
			}
		}
	})
}
