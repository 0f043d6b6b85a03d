// Package llmtest is the contract suite of the llm.Model port and an
// in-test chat-completions server. Every adapter's tests call [Run], so the
// offline default and the endpoint clients cannot drift apart in what
// callers may rely on; [Server] lets the endpoint clients be tested,
// failures and all, without a network or a model.
//
// The suite must never depend on an adapter: it sees only the interface
// and asserts nothing about what a model says, only how it says it.
package llmtest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
)

// Run checks the Model contract. newModel is called once per subtest and
// may register cleanups on the t it is given. The model must answer a
// request that offers no tools, as any model does.
func Run(t *testing.T, newModel func(t *testing.T) llm.Model) {
	t.Helper()

	question := llm.Request{Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "You answer questions about the product."},
		{Role: llm.RoleUser, Content: "How do I reset my password?"},
	}}

	t.Run("DescribesItself", func(t *testing.T) {
		t.Parallel()
		if newModel(t).Name() == "" {
			t.Error("Name() is empty")
		}
	})

	t.Run("AnswersWithoutToolsWhenNoneOffered", func(t *testing.T) {
		t.Parallel()
		resp, err := newModel(t).Complete(t.Context(), question, nil)
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
		checkAnswer(t, resp)
	})

	t.Run("DeltasConcatenateToContent", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var got strings.Builder
		n := 0
		resp, err := newModel(t).Complete(t.Context(), question, func(s string) error {
			mu.Lock()
			defer mu.Unlock()
			got.WriteString(s)
			n++
			return nil
		})
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
		checkAnswer(t, resp)
		if got.String() != resp.Content {
			t.Fatalf("deltas %q, content %q", got.String(), resp.Content)
		}
		if n == 0 {
			t.Fatal("no delta")
		}
	})

	t.Run("DeltaErrorStopsTheCompletion", func(t *testing.T) {
		t.Parallel()
		stop := errors.New("llmtest: listener went away")
		n := 0
		_, err := newModel(t).Complete(t.Context(), question, func(string) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) {
			t.Fatalf("err = %v, want the delta's error", err)
		}
		if n != 1 {
			t.Fatalf("%d deltas after the first failed", n-1)
		}
	})

	t.Run("CancelledContextFailsFast", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		resp, err := newModel(t).Complete(ctx, question, func(string) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v (content %q), want context.Canceled", err, resp.Content)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})

	t.Run("CancellationBetweenDeltasStopsPromptly", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		start := time.Now()
		_, err := newModel(t).Complete(ctx, question, func(string) error {
			n++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n != 1 {
			t.Fatalf("%d deltas after cancellation", n-1)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})

	t.Run("ToolResultRoundTrip", func(t *testing.T) {
		t.Parallel()
		req := llm.Request{Messages: []llm.Message{
			question.Messages[0], question.Messages[1],
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{
				ID: "call_1", Name: "search_knowledge", Arguments: json.RawMessage(`{"query":"reset password"}`),
			}}},
			{Role: llm.RoleTool, ToolCallID: "call_1", Content: `{"results":[{"ref":1,"title":"Passwords",` +
				`"text":"Reset your password from the account page."}]}`},
		}}
		var got strings.Builder
		resp, err := newModel(t).Complete(t.Context(), req, func(s string) error {
			got.WriteString(s)
			return nil
		})
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
		checkAnswer(t, resp)
		if got.String() != resp.Content {
			t.Fatalf("deltas %q, content %q", got.String(), resp.Content)
		}
	})

	t.Run("HistoryWithInvalidToolArgumentsIsAccepted", func(t *testing.T) {
		t.Parallel()
		// A model's earlier output is carried back as it was, however
		// broken; the caller denied it and the model must go on.
		req := llm.Request{Messages: []llm.Message{
			question.Messages[0], question.Messages[1],
			{Role: llm.RoleAssistant, Content: "Let me look.", ToolCalls: []llm.ToolCall{
				{ID: "call_1", Name: "search_knowledge", Arguments: json.RawMessage(`{"query": "unterminated`)},
				{ID: "call_2", Name: "no such tool", Arguments: nil},
			}},
			{Role: llm.RoleTool, ToolCallID: "call_1", Content: `{"status":"error","error":"arguments are not valid JSON"}`},
			{Role: llm.RoleTool, ToolCallID: "call_2", Content: `{"status":"denied","reason":"tool not available"}`},
		}}
		resp, err := newModel(t).Complete(t.Context(), req, nil)
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
		checkAnswer(t, resp)
	})

	t.Run("StreamedAndUnstreamedAnswersAreBothComplete", func(t *testing.T) {
		t.Parallel()
		m := newModel(t)
		plain, err := m.Complete(t.Context(), question, nil)
		if err != nil {
			t.Fatalf("Complete without deltas: %v", err)
		}
		streamed, err := m.Complete(t.Context(), question, func(string) error { return nil })
		if err != nil {
			t.Fatalf("Complete with deltas: %v", err)
		}
		checkAnswer(t, plain)
		checkAnswer(t, streamed)
	})

	t.Run("ConcurrentUse", func(t *testing.T) {
		t.Parallel()
		m := newModel(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				resp, err := m.Complete(t.Context(), question, func(string) error { return nil })
				if err == nil && resp.Content == "" {
					err = errors.New("empty answer")
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Complete: %v", err)
			}
		}
	})
}

// checkAnswer asserts what every answer to a request without tools has.
func checkAnswer(t *testing.T, resp llm.Response) {
	t.Helper()
	if resp.Content == "" {
		t.Error("empty Content")
	}
	if len(resp.ToolCalls) != 0 {
		t.Errorf("requested %d tool calls though none were offered", len(resp.ToolCalls))
	}
	if resp.Usage.PromptTokens < 0 || resp.Usage.CompletionTokens < 0 {
		t.Errorf("negative usage %+v", resp.Usage)
	}
	if resp.Model == "" {
		t.Error("empty Model")
	}
}
