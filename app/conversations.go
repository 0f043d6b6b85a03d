package app

import (
	"fmt"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/conversation"
)

// LLMConfig points at an OpenAI-compatible chat-completions endpoint
// (OpenAI, vLLM, Ollama, llama.cpp). With no URL, bots answer with the
// built-in extractive model, offline.
type LLMConfig struct {
	URL    string
	Model  string
	APIKey string
}

// newModel returns the configured chat model.
func newModel(cfg LLMConfig) (llm.Model, error) {
	if cfg.URL == "" {
		return llm.NewBuiltin(), nil
	}
	m, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: cfg.URL, Model: cfg.Model, APIKey: cfg.APIKey})
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	return m, nil
}

// newRunner builds the bot turn runner: the tools every bot may be
// granted, over the same use cases HTTP calls.
func (a *App) newRunner(model llm.Model) (*conversation.Runner, error) {
	app := a.Application
	tools := append(conversation.KnowledgeTools(app.Queries.Knowledge, app.Commands.Conversations),
		conversation.AskBotTool(app.Commands.Conversations),
		conversation.QueryDataTool(app.Commands.Analytics, app.Queries.Analytics))
	registry, err := conversation.NewRegistry(tools...)
	if err != nil {
		return nil, err
	}
	return conversation.NewRunner(conversation.Config{
		Model: model, Tools: registry, Record: app.Commands.Conversations, Principals: a.principals,
		Quotas: a.Quotas, TurnTimeout: a.cfg.TurnTimeout, Logger: a.cfg.Logger.With("component", "conversation"),
		TracerProvider: a.cfg.TracerProvider,
	}), nil
}
