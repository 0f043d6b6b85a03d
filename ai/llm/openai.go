package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/palisadehq/palisade/ai/internal/endpoint"
)

// OpenAIConfig configures an [OpenAI] model. Zero values of the optional
// fields mean the documented defaults.
type OpenAIConfig struct {
	// BaseURL is the endpoint's root, with or without a trailing "/v1":
	// "https://api.openai.com", "http://localhost:11434" (Ollama),
	// "http://vllm:8000/v1". Requests go to {BaseURL}/v1/chat/completions.
	BaseURL string
	// Model is the model name the endpoint serves. Required.
	Model string
	// APIKey is sent as "Authorization: Bearer …" when set. It never
	// appears in an error.
	APIKey string
	// HTTPClient sends the requests. Default: a client that follows no
	// redirects, so the API key is only ever sent to BaseURL's host.
	HTTPClient *http.Client
	// Timeout bounds one Complete, streaming included. Default 2 minutes:
	// a model on a CPU can take that long to answer.
	Timeout time.Duration
	// MaxResponseBytes bounds one response body, streamed or not.
	// Default 8 MiB.
	MaxResponseBytes int64
}

// OpenAI is a chat model behind an OpenAI-compatible chat-completions
// endpoint (OpenAI, vLLM, Ollama, llama.cpp), reached with the openai-go
// client. Tools are offered as function tools; the answer is streamed
// when Complete is given a DeltaFunc and fetched whole otherwise.
//
// It never retries: [StatusError.Retryable] tells the caller whether to.
// Whatever the server sends, it returns an error rather than panicking:
// [StatusError] for a non-2xx answer, [ErrResponseTooLarge] past
// MaxResponseBytes, [ErrMalformedResponse] for a body or stream that is
// not a complete chat completion, and the context's error when ctx ends
// or Timeout passes.
type OpenAI struct {
	cfg  OpenAIConfig
	chat openai.ChatCompletionService
}

// NewOpenAI validates cfg and returns a model. It makes no request, and it
// reads no environment variable: cfg is all there is.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if cfg.Model == "" {
		return nil, errors.New("llm: OpenAI config: Model is required")
	}
	opts, err := endpoint.ClientOptions(cfg.BaseURL, cfg.APIKey, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("llm: OpenAI config: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 8 << 20
	}
	// The options ask for no retries: the caller decides, knowing what
	// the turn has already streamed to the person. The service, unlike
	// openai.NewClient, reads no OPENAI_* variables.
	return &OpenAI{cfg: cfg, chat: openai.NewChatCompletionService(opts...)}, nil
}

// Name is the configured model name.
func (o *OpenAI) Name() string { return o.cfg.Model }

// Complete sends req to the endpoint. With onDelta it streams, asking for
// the usage in the stream's last event; tool-call fragments are assembled
// by their index into whole calls.
func (o *OpenAI) Complete(ctx context.Context, req Request, onDelta DeltaFunc) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	params, err := o.params(req, onDelta != nil)
	if err != nil {
		return Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	ex := &exchange{o: o, streaming: onDelta != nil}
	if onDelta == nil {
		completion, err := o.chat.New(ctx, params, option.WithMiddleware(ex.middleware))
		if err != nil {
			return Response{}, ex.failure(ctx, err)
		}
		return o.fromCompletion(completion)
	}
	stream := o.chat.NewStreaming(ctx, params, option.WithMiddleware(ex.middleware))
	defer stream.Close()
	return o.fromStream(ctx, ex, stream, onDelta)
}

func (o *OpenAI) params(req Request, streaming bool) (openai.ChatCompletionNewParams, error) {
	p := openai.ChatCompletionNewParams{Model: shared.ChatModel(o.cfg.Model)}
	for i, m := range req.Messages {
		switch m.Role {
		case RoleSystem:
			p.Messages = append(p.Messages, openai.SystemMessage(m.Content))
		case RoleUser:
			p.Messages = append(p.Messages, openai.UserMessage(m.Content))
		case RoleTool:
			p.Messages = append(p.Messages, openai.ToolMessage(m.Content, m.ToolCallID))
		case RoleAssistant:
			a := openai.ChatCompletionAssistantMessageParam{}
			// The API wants content or tool_calls; an empty content next
			// to tool calls is left out rather than sent as "".
			if m.Content != "" || len(m.ToolCalls) == 0 {
				a.Content.OfString = openai.String(m.Content)
			}
			for _, c := range m.ToolCalls {
				a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
						ID: c.ID,
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
							Name: c.Name, Arguments: string(c.Arguments),
						},
					},
				})
			}
			p.Messages = append(p.Messages, openai.ChatCompletionMessageParamUnion{OfAssistant: &a})
		default:
			return p, fmt.Errorf("llm: message %d has unknown role %q", i, m.Role)
		}
	}
	for _, t := range req.Tools {
		schema, err := toolSchema(t.Parameters)
		if err != nil {
			return p, fmt.Errorf("llm: tool %q: %w", t.Name, err)
		}
		def := shared.FunctionDefinitionParam{Name: t.Name, Parameters: schema}
		if t.Description != "" {
			def.Description = openai.String(t.Description)
		}
		p.Tools = append(p.Tools, openai.ChatCompletionFunctionTool(def))
	}
	if req.MaxTokens > 0 {
		// max_tokens rather than max_completion_tokens: every
		// OpenAI-compatible server accepts it.
		p.MaxTokens = openai.Int(int64(req.MaxTokens))
	}
	if streaming {
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	return p, nil
}

// toolSchema turns a tool's JSON Schema into the client's parameter map,
// keeping every member's JSON as written. No schema means no arguments.
func toolSchema(raw json.RawMessage) (shared.FunctionParameters, error) {
	if len(raw) == 0 {
		return shared.FunctionParameters{"type": "object", "properties": map[string]any{}}, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, errors.New("parameters are not a JSON Schema object")
	}
	schema := make(shared.FunctionParameters, len(members))
	for k, v := range members {
		schema[k] = v
	}
	return schema, nil
}

func (o *OpenAI) fromCompletion(c *openai.ChatCompletion) (Response, error) {
	if c == nil || !c.JSON.Choices.Valid() || len(c.Choices) == 0 {
		return Response{}, fmt.Errorf("%w: no choices", ErrMalformedResponse)
	}
	choice := c.Choices[0]
	msg := choice.Message
	if !choice.JSON.Message.Valid() || invalidField(msg.JSON.Content.Valid(), msg.JSON.Content.Raw()) ||
		invalidField(msg.JSON.ToolCalls.Valid(), msg.JSON.ToolCalls.Raw()) {
		return Response{}, fmt.Errorf("%w: the choice's message is not a chat message", ErrMalformedResponse)
	}
	resp := Response{Content: msg.Content, Model: o.reportedModel(c.Model)}
	if resp.Content == "" {
		resp.Content = msg.Refusal
	}
	for i, tc := range msg.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			return Response{}, fmt.Errorf("%w: tool call %d has type %q", ErrMalformedResponse, i, o.excerpt([]byte(tc.Type)))
		}
		call, err := toolCall(i, tc.ID, tc.Function.Name, tc.Function.Arguments)
		if err != nil {
			return Response{}, err
		}
		resp.ToolCalls = append(resp.ToolCalls, call)
	}
	if c.JSON.Usage.Valid() {
		resp.Usage = usage(c.Usage)
	}
	return resp, nil
}

// invalidField reports a field that is present and not null but of the
// wrong type, which the client's lenient decoder otherwise ignores.
func invalidField(valid bool, raw string) bool {
	return !valid && raw != "" && raw != "null"
}

func toolCall(i int, id, name, args string) (ToolCall, error) {
	if name == "" {
		return ToolCall{}, fmt.Errorf("%w: tool call %d has no name", ErrMalformedResponse, i)
	}
	if id == "" {
		// Some local servers leave ids out; the caller needs one to
		// answer the call.
		id = "call_" + strconv.Itoa(i+1)
	}
	if args == "" {
		args = "{}"
	}
	return ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)}, nil
}

func usage(u openai.CompletionUsage) Usage {
	clamp := func(n int64) int {
		return int(min(max(n, 0), 1<<31-1))
	}
	return Usage{PromptTokens: clamp(u.PromptTokens), CompletionTokens: clamp(u.CompletionTokens)}
}

func (o *OpenAI) reportedModel(m string) string {
	if m == "" {
		return o.cfg.Model
	}
	return m
}

// partialCall is a streamed tool call being assembled.
type partialCall struct {
	id, name string
	args     strings.Builder
}

func (o *OpenAI) fromStream(ctx context.Context, ex *exchange, stream *ssestream.Stream[openai.ChatCompletionChunk], onDelta DeltaFunc) (Response, error) {
	var (
		content  strings.Builder
		calls    = map[int64]*partialCall{}
		finished bool
		resp     = Response{Model: o.cfg.Model}
	)
	for stream.Next() {
		chunk := stream.Current()
		if chunk.Model != "" {
			resp.Model = chunk.Model
		}
		if chunk.JSON.Usage.Valid() {
			resp.Usage = usage(chunk.Usage)
		}
		for _, choice := range chunk.Choices {
			if choice.Index != 0 {
				continue
			}
			if choice.FinishReason != "" {
				finished = true
			}
			for _, tc := range choice.Delta.ToolCalls {
				p := calls[tc.Index]
				if p == nil {
					if len(calls) >= maxStreamedCalls {
						return Response{}, fmt.Errorf("%w: more than %d tool calls", ErrMalformedResponse, maxStreamedCalls)
					}
					p = &partialCall{}
					calls[tc.Index] = p
				}
				if tc.ID != "" {
					p.id = tc.ID
				}
				if tc.Function.Name != "" {
					p.name = tc.Function.Name
				}
				p.args.WriteString(tc.Function.Arguments)
			}
			for _, text := range []string{choice.Delta.Content, choice.Delta.Refusal} {
				if text == "" {
					continue
				}
				content.WriteString(text)
				if err := onDelta(text); err != nil {
					return Response{}, err
				}
				if err := ctx.Err(); err != nil {
					return Response{}, err
				}
			}
		}
	}
	if err := stream.Err(); err != nil {
		return Response{}, ex.failure(ctx, err)
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	if !finished {
		return Response{}, fmt.Errorf("%w: the stream ended before the model finished", ErrMalformedResponse)
	}
	resp.Content = content.String()
	indexes := make([]int64, 0, len(calls))
	for i := range calls {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for n, i := range indexes {
		p := calls[i]
		call, err := toolCall(n, p.id, p.name, p.args.String())
		if err != nil {
			return Response{}, err
		}
		resp.ToolCalls = append(resp.ToolCalls, call)
	}
	return resp, nil
}

// maxStreamedCalls bounds the tool calls assembled from one stream, so a
// server cannot make us hold one builder per index it invents.
const maxStreamedCalls = 128

// exchange watches one request's HTTP exchange, below the client: it turns
// a non-2xx answer into a [StatusError] and bounds the body, and it
// remembers whether a 2xx answer arrived, which is what tells a broken
// response from a failed request.
type exchange struct {
	o         *OpenAI
	streaming bool
	responded bool
	body      *endpoint.LimitedBody
}

func (e *exchange) middleware(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	resp, err := next(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{StatusCode: resp.StatusCode, Message: endpoint.ErrorMessage(resp.Body, e.o.cfg.APIKey)}
	}
	e.responded = true
	if !e.streaming {
		// A whole answer is JSON however the server labels it; the
		// client decodes only what is labelled so.
		resp.Header.Set("Content-Type", "application/json")
	}
	e.body = endpoint.NewLimitedBody(resp.Body, e.o.cfg.MaxResponseBytes, ErrResponseTooLarge)
	resp.Body = e.body
	return resp, nil
}

// failure turns an error of the client into one of ours.
func (e *exchange) failure(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var serr *StatusError
	if errors.As(err, &serr) {
		return serr
	}
	if errors.Is(err, ErrResponseTooLarge) {
		return fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, e.o.cfg.MaxResponseBytes)
	}
	var streamErr *ssestream.StreamError
	if errors.As(err, &streamErr) {
		return fmt.Errorf("llm: endpoint reported an error while streaming: %s", e.o.excerpt(streamErr.Event.Data))
	}
	if e.body != nil && e.body.ReadErr() != nil {
		return fmt.Errorf("llm: reading response: %s", e.o.excerpt([]byte(e.body.ReadErr().Error())))
	}
	if e.responded {
		return fmt.Errorf("%w: %s", ErrMalformedResponse, e.o.excerpt([]byte(err.Error())))
	}
	// A transport error names the URL, which holds no credentials.
	return fmt.Errorf("llm: chat request failed: %s", e.o.excerpt([]byte(err.Error())))
}

// excerpt is the endpoint's message, short, printable and without the API
// key.
func (o *OpenAI) excerpt(raw []byte) string { return endpoint.Excerpt(raw, o.cfg.APIKey) }
