package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/conversation"
)

// scriptedModel is a model fully under the test's control, as a model
// compromised by prompt injection is under an attacker's: script answers
// each request (step counts the model calls of the whole harness).
type scriptedModel struct {
	mu     sync.Mutex
	step   int
	script func(step int, req llm.Request) llm.Response
}

func (m *scriptedModel) Name() string { return "scripted" }

func (m *scriptedModel) Complete(_ context.Context, req llm.Request, onDelta llm.DeltaFunc) (llm.Response, error) {
	m.mu.Lock()
	script, step := m.script, m.step
	m.step++
	m.mu.Unlock()
	resp := script(step, req)
	if onDelta != nil && resp.Content != "" {
		if err := onDelta(resp.Content); err != nil {
			return llm.Response{}, err
		}
	}
	return resp, nil
}

// play sets the script of the next turns and starts its steps again.
func (m *scriptedModel) play(script func(step int, req llm.Request) llm.Response) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.script, m.step = script, 0
}

// callsThenAnswer asks for calls on the first step and answers on the
// next.
func callsThenAnswer(calls ...llm.ToolCall) func(int, llm.Request) llm.Response {
	return func(step int, _ llm.Request) llm.Response {
		if step == 0 {
			return llm.Response{ToolCalls: calls}
		}
		return llm.Response{Content: "done"}
	}
}

func searchCall(id, kb string) llm.ToolCall {
	args, _ := json.Marshal(map[string]any{"query": "salary bands", "knowledge_base_ids": []string{kb}})
	return llm.ToolCall{ID: id, Name: "search_knowledge", Arguments: args}
}

// turnEvents returns the conversation stream's events as token may read
// them (the raw page, and the types in order).
func turnEvents(h *harness, token, org, conv string) (string, []string) {
	h.t.Helper()
	var page struct {
		Items []struct {
			Type string `json:"type"`
		} `json:"items"`
	}
	r := h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?stream=conversation-"+org+"_"+conv+"&limit=500", token, nil)
	r.json(h.t, &page)
	var types []string
	for _, it := range page.Items {
		types = append(types, it.Type)
	}
	return string(r.body), types
}

// TestUnknownToolNamesAreContentNotRecord: a tool name that names no tool
// is free text the model chose, and may carry what the turn read. It is
// recorded as "unknown", with the name it gave kept only as content (cut
// to 256 bytes): an auditor, who may not read content, never sees it, in
// the conversation's stream or in the security stream's refusal.
func TestUnknownToolNamesAreContentNotRecord(t *testing.T) {
	t.Parallel()
	model := &scriptedModel{}
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.Model = model })
	org, owner := h.createOrg("Acme", "olivia")
	alice := h.addMember(org, owner, "alice", "member")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	bot := h.createBotWith(owner, "HR", "", map[string]any{"tools": []string{"search_knowledge"}, "permissions": []string{"kb:read"}})
	conv := h.startConversation(alice, bot)

	const canary = "CANARYTOOLNAME5511"
	name := "leak:" + canary + strings.Repeat("x", 4000)
	model.play(callsThenAnswer(llm.ToolCall{ID: "c1", Name: name, Arguments: json.RawMessage(`{}`)}))
	answer, _ := h.ask(alice, conv, "hello")
	if len(answer.Message.ToolCalls) != 1 {
		t.Fatalf("tool calls of the answer: %+v", answer.Message.ToolCalls)
	}
	if c := answer.Message.ToolCalls[0]; c.Tool != "unknown" || c.Status != "denied" {
		t.Fatalf("the call naming no tool: %+v, want tool unknown, denied", c)
	}

	page, _ := turnEvents(h, auditor, org, conv)
	if strings.Contains(page, canary) {
		t.Errorf("an auditor reads the model's tool name in the conversation's stream: %s", page)
	}
	if !strings.Contains(page, `"tool":"unknown"`) {
		t.Errorf("the conversation's stream does not record the call as unknown: %s", page)
	}
	denials := h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?type=AccessDenied&limit=500", auditor, nil)
	if strings.Contains(string(denials.body), canary) {
		t.Errorf("an auditor reads the model's tool name in the security stream: %s", denials.body)
	}

	// Whoever may read content sees what the model asked for, cut.
	var full struct {
		Items []struct {
			Type string `json:"type"`
			Data struct {
				RequestedTool string `json:"requested_tool"`
			} `json:"data"`
		} `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?stream=conversation-"+org+"_"+conv+"&type=ToolCallDecided", owner, nil).json(t, &full)
	if len(full.Items) != 1 {
		t.Fatalf("%d ToolCallDecided events, want 1", len(full.Items))
	}
	got := full.Items[0].Data.RequestedTool
	if !strings.HasPrefix(got, "leak:"+canary) || len(got) != 256 {
		t.Errorf("requested_tool as content is %d bytes (%.40q…), want the name cut to 256", len(got), got)
	}
}

// TestOneResponseCannotFloodTheRecord: each call of a response is decided
// and recorded, so a response may ask for at most
// MaxToolCallsPerResponse; one that asks for more fails the turn with the
// reason on record, and none of its calls is recorded or run.
func TestOneResponseCannotFloodTheRecord(t *testing.T) {
	t.Parallel()
	model := &scriptedModel{}
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.Model = model })
	org, owner := h.createOrg("Acme", "olivia")
	alice := h.addMember(org, owner, "alice", "member")
	kb := h.createKB(owner, "Handbook")
	bot := h.createBotWith(owner, "HR", "", map[string]any{
		"knowledge_bases": []string{kb}, "tools": []string{"search_knowledge"}, "permissions": []string{"kb:read"},
	})
	calls := func(n int) []llm.ToolCall {
		out := make([]llm.ToolCall, n)
		for i := range out {
			out[i] = searchCall(fmt.Sprint("c", i), kb)
		}
		return out
	}

	for _, tc := range []struct {
		calls                int
		wantStatus           int
		wantDecided, wantRan int
	}{
		{conversation.MaxToolCallsPerResponse, http.StatusOK, conversation.MaxToolCallsPerResponse, conversation.MaxToolCalls},
		{conversation.MaxToolCallsPerResponse + 1, http.StatusBadGateway, 0, 0},
		{3000, http.StatusBadGateway, 0, 0},
	} {
		t.Run(fmt.Sprint(tc.calls, " calls"), func(t *testing.T) {
			conv := h.startConversation(alice, bot)
			model.play(callsThenAnswer(calls(tc.calls)...))
			r := h.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", alice, map[string]any{"content": "go"})
			if r.status != tc.wantStatus {
				t.Fatalf("turn = %d %s, want %d", r.status, r.body, tc.wantStatus)
			}
			page, types := turnEvents(h, owner, org, conv)
			// A failed turn answers without waiting for the read models:
			// its record shows up shortly.
			for deadline := time.Now().Add(10 * time.Second); tc.wantStatus != http.StatusOK &&
				!slices.Contains(types, "TurnFailed") && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
				page, types = turnEvents(h, owner, org, conv)
			}
			decided, ran := 0, 0
			for _, typ := range types {
				switch typ {
				case "ToolCallDecided":
					decided++
				case "ToolCallCompleted":
					ran++
				}
			}
			if decided != tc.wantDecided || ran != tc.wantRan {
				t.Errorf("%d calls decided and %d run, want %d and %d", decided, ran, tc.wantDecided, tc.wantRan)
			}
			if tc.wantStatus != http.StatusOK && !strings.Contains(page, fmt.Sprintf("the model asked for %d tool calls in one response", tc.calls)) {
				t.Errorf("the failed turn's reason is not on record: %s", page)
			}
		})
	}
}

// TestBotGrantsAreReadAgainForEveryCall: a bot's grants are what its
// stream says when each call is decided, not when the turn began, so a
// grant withdrawn, or the bot archived, while a turn runs holds from the
// next call on.
func TestBotGrantsAreReadAgainForEveryCall(t *testing.T) {
	t.Parallel()
	model := &scriptedModel{}
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.Model = model })
	org, owner := h.createOrg("Acme", "olivia")
	alice := h.addMember(org, owner, "alice", "member")
	kb := h.createKB(owner, "Salaries")
	h.addDoc(owner, kb, "Bands", "text/plain", "Salary bands are reviewed every April.")

	for _, tc := range []struct {
		name   string
		revoke func(bot string)
		reason string
	}{
		{"grants withdrawn", func(bot string) {
			h.must(http.StatusOK, http.MethodPatch, "/v1/bots/"+bot, owner, map[string]any{
				"grants": map[string]any{"knowledge_bases": []string{}, "tools": []string{"search_knowledge"}, "permissions": []string{"kb:read"}},
			})
		}, ""},
		{"tool withdrawn", func(bot string) {
			h.must(http.StatusOK, http.MethodPatch, "/v1/bots/"+bot, owner, map[string]any{
				"grants": map[string]any{"knowledge_bases": []string{kb}, "tools": []string{}, "permissions": []string{"kb:read"}},
			})
		}, "do not list this tool"},
		{"bot archived", func(bot string) {
			h.must(http.StatusNoContent, http.MethodDelete, "/v1/bots/"+bot, owner, nil)
		}, "do not list this tool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bot := h.createBotWith(owner, "Pay "+tc.name, "", map[string]any{
				"knowledge_bases": []string{kb}, "tools": []string{"search_knowledge"}, "permissions": []string{"kb:read"},
			})
			conv := h.startConversation(alice, bot)
			// The first turn's call runs: the bot holds what it needs.
			model.play(callsThenAnswer(searchCall("c1", kb)))
			first, _ := h.ask(alice, conv, "When are salary bands reviewed?")
			if len(first.Message.ToolCalls) != 1 || first.Message.ToolCalls[0].Status != "ok" {
				t.Fatalf("before the change: %+v", first.Message.ToolCalls)
			}
			// The second turn's model changes the bot before it calls.
			model.play(func(step int, req llm.Request) llm.Response {
				if step == 0 {
					tc.revoke(bot)
					return llm.Response{ToolCalls: []llm.ToolCall{searchCall("c1", kb)}}
				}
				for _, m := range req.Messages {
					if m.Role == llm.RoleTool && strings.Contains(m.Content, "April") {
						return llm.Response{Content: "it said April"}
					}
				}
				return llm.Response{Content: "nothing found"}
			})
			second, _ := h.ask(alice, conv, "When are salary bands reviewed?")
			if len(second.Message.ToolCalls) != 1 {
				t.Fatalf("after the change: %+v", second.Message.ToolCalls)
			}
			c := second.Message.ToolCalls[0]
			if c.Status != "denied" || !strings.Contains(c.Reason, tc.reason) {
				t.Errorf("the call after the change: %+v, want denied (%q)", c, tc.reason)
			}
			if strings.Contains(second.Message.Content, "April") {
				t.Errorf("the model read the passage after the change: %q", second.Message.Content)
			}
		})
	}
}
