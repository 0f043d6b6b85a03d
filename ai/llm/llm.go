// Package llm owns the Model port, a chat model that answers and requests
// tool calls, and its adapters: [Builtin], the deterministic offline
// default, and [OpenAI], a client for any OpenAI-compatible
// chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp). Every
// adapter passes the contract suite in llmtest.
//
// A model is untrusted: it may be fully compromised by prompt injection.
// This package only carries messages and tool requests; it never runs a
// tool, never decides whether a call is allowed and never sees whose data
// it reads. Those guarantees belong to the code that calls it.
//
// This package must never know about organizations, bots or storage, and
// it must never log or return a message text or an API key in an error.
//
// # Pointing Palisade at a model
//
// Without PALISADE_LLM_URL, Palisade answers with [Builtin], which needs
// no network and no weights. To use a real model, start any server that
// speaks the OpenAI chat-completions API (vLLM, Ollama, llama.cpp's
// server, or OpenAI itself) and set, for the Palisade process:
//
//   - PALISADE_LLM_URL: the server's root, with or without "/v1", for
//     example http://localhost:11434 for Ollama or http://vllm:8000/v1;
//   - PALISADE_LLM_MODEL: the model name the server serves;
//   - PALISADE_LLM_API_KEY: the bearer key, when the server wants one.
//
// The program's wiring turns them into an [OpenAIConfig] for [NewOpenAI];
// this package itself reads no environment. The model must support
// function tools (the "tools" request field), since retrieval is a tool
// call.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Role says who wrote a message.
type Role string

// The roles of a chat.
const (
	// RoleSystem carries the bot's configured instructions, and nothing
	// else: retrieved or tool-produced text never goes here.
	RoleSystem Role = "system"
	// RoleUser is what the person (or calling bot) asked.
	RoleUser Role = "user"
	// RoleAssistant is what the model said or requested before.
	RoleAssistant Role = "assistant"
	// RoleTool is the result of one tool call; untrusted text lives here.
	RoleTool Role = "tool"
)

// Message is one entry of the conversation sent to a model.
type Message struct {
	Role    Role
	Content string
	// ToolCalls are the calls an assistant message requested.
	ToolCalls []ToolCall
	// ToolCallID names the call a tool message answers.
	ToolCallID string
}

// ToolCall is a model's request to run one tool. Arguments are what the
// model produced, which may be anything, including invalid JSON: the caller
// validates them before anything runs.
type ToolCall struct {
	ID        string
	Name      string
	Arguments json.RawMessage
}

// Tool describes a tool the model may request.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments.
	Parameters json.RawMessage
}

// Request is one completion request.
type Request struct {
	Messages []Message
	// Tools the model may request; none means it must answer.
	Tools []Tool
	// MaxTokens bounds the completion; zero leaves the adapter's default.
	MaxTokens int
}

// Usage counts the tokens of one completion.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Response is a model's answer to one request: text, tool calls, or both.
type Response struct {
	Content   string
	ToolCalls []ToolCall
	Usage     Usage
	// Model names the model that answered, as the endpoint reported it.
	Model string
}

// DeltaFunc receives answer text as it is produced. The concatenation of
// every delta of one Complete equals the Response's Content. An error
// stops the completion and is returned by Complete.
type DeltaFunc func(text string) error

// Model is a chat model. Implementations are safe for concurrent use.
type Model interface {
	// Name names the model and its configuration, for the record.
	Name() string
	// Complete answers req. onDelta, when not nil, receives the answer's
	// text as it is produced. It returns ctx's error when ctx ends first.
	Complete(ctx context.Context, req Request, onDelta DeltaFunc) (Response, error)
}

var (
	// ErrMalformedResponse means an endpoint answered with a body that is
	// not a valid chat-completions response.
	ErrMalformedResponse = errors.New("llm: malformed chat response")
	// ErrResponseTooLarge means an endpoint's response exceeded the size
	// limit and was not read further.
	ErrResponseTooLarge = errors.New("llm: chat response too large")
)

// StatusError is a non-success HTTP answer from a chat endpoint. Message is
// a short excerpt of the endpoint's error, with the API key removed.
type StatusError struct {
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("llm: endpoint answered HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("llm: endpoint answered HTTP %d: %s", e.StatusCode, e.Message)
}

// Retryable reports whether the same request may succeed later.
func (e *StatusError) Retryable() bool {
	return e.StatusCode == 429 || e.StatusCode == 408 || e.StatusCode >= 500
}
