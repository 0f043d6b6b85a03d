package app

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/conversation"
	httpapi "github.com/palisadehq/palisade/http"
	"github.com/palisadehq/palisade/projections"
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

// conversationsContext is conversations with bots: the turns bots take
// with the configured chat model and the tools every context registered,
// and the open turns a stop cut short.
type conversationsContext struct{}

func (conversationsContext) projections(asm *assembly) []*consumer.Group {
	return []*consumer.Group{projections.ConversationProjection(asm.models.Conversations)}
}

func (conversationsContext) assemble(_ context.Context, asm *assembly) error {
	p := asm.Pipeline
	cmds := commands.NewConversations(p)
	queries := projections.NewConversationQueries(asm.models.Conversations, p)
	asm.Application.Commands.Conversations = cmds
	asm.Application.Queries.Conversations = queries
	asm.web.Commands.Conversations = cmds
	asm.web.Queries.Conversations = queries
	asm.routes = append(asm.routes, httpapi.ConversationRoutes())
	asm.tools = append(asm.tools, conversation.AskBotTool(cmds))

	open := conversation.NewOpenTurns()
	asm.side.turns = open
	asm.keptInMemory(open.Projection())
	// The runner takes every context's tools: built once all are assembled.
	asm.assembled = append(asm.assembled, func() error {
		runner, err := asm.newRunner(asm.model, asm.tools)
		if err != nil {
			return err
		}
		asm.Application.Runner = runner
		asm.web.Runner = runner
		return nil
	})
	// Turns run in their requests: one still open now was cut short by a
	// stop, and nothing else will end it. With replicas, an open turn may
	// be running on another one: the elected replica fails those open past
	// the turn timeout instead (startTurnRecovery).
	if asm.replicated() {
		asm.started = append(asm.started, func(_, runCtx context.Context) error {
			asm.startTurnRecovery(runCtx, open)
			return nil
		})
	} else {
		asm.rebuilt = append(asm.rebuilt, func(ctx, _ context.Context) error {
			if n, err := open.FailInterrupted(ctx, cmds); err != nil {
				asm.cfg.Logger.Error("recording interrupted bot turns", "failed", n, "err", err)
			} else if n > 0 {
				asm.cfg.Logger.Warn("bot turns interrupted by the last stop recorded as failed", "turns", n)
			}
			return nil
		})
	}
	return nil
}

// newRunner builds the bot turn runner: the tools every bot may be
// granted, over the same use cases HTTP calls.
func (a *App) newRunner(model llm.Model, tools []conversation.Tool) (*conversation.Runner, error) {
	registry, err := conversation.NewRegistry(tools...)
	if err != nil {
		return nil, err
	}
	return conversation.NewRunner(conversation.Config{
		Model: model, Tools: registry, Record: a.Application.Commands.Conversations, Principals: a.principals,
		Quotas: a.Quotas, TurnTimeout: a.cfg.TurnTimeout, Logger: a.cfg.Logger.With("component", "conversation"),
		TracerProvider: a.cfg.TracerProvider,
	}), nil
}
