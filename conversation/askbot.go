package conversation

import (
	"context"
	"fmt"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
)

// AskBotTool returns ask_bot: a bot consults another bot of its
// organization. The callee acts with grants(callee) ∩ the caller's
// effective permissions, at most MaxDepth deep and never in a cycle; its
// tool calls count against the same turn.
func AskBotTool(bots BotSource) Tool {
	return Tool{
		Name:        "ask_bot",
		Description: "Ask another bot of your organization a question and get its answer.",
		Permission:  access.BotsRun,
		Schema: `{"type":"object","additionalProperties":false,"required":["bot_id","question"],"properties":{
			"bot_id":{"type":"string","minLength":1,"maxLength":64},
			"question":{"type":"string","minLength":1,"maxLength":4000}}}`,
		Run: func(ctx context.Context, call Call) (Output, error) { return askBot(ctx, bots, call) },
	}
}

// BotSource reads a bot's configuration as its stream says now
// (commands.Conversations).
type BotSource interface {
	Bot(ctx context.Context, orgID, id string) (commands.BotConfig, error)
}

func askBot(ctx context.Context, bots BotSource, call Call) (Output, error) {
	var args struct {
		BotID    string `json:"bot_id"`
		Question string `json:"question"`
	}
	if err := decodeArguments(call.Arguments, &args); err != nil {
		return Output{}, err
	}
	t := call.turn
	chain := call.chain
	if len(chain) > MaxDepth {
		return Output{}, &DeniedError{Decision: access.Decision{Code: access.ReasonDelegationLimit, Permission: access.BotsRun}, Resource: "bots/" + args.BotID}
	}
	for _, b := range chain {
		if b.ID == args.BotID {
			return Output{}, &DeniedError{Decision: access.Decision{Code: access.ReasonDelegationLimit, Permission: access.BotsRun}, Resource: "bots/" + args.BotID}
		}
	}
	cfg, err := bots.Bot(ctx, call.As.OrgID, args.BotID)
	if err != nil {
		return Output{}, err
	}
	callee := botOf(cfg)
	f := frame{bot: callee, chain: append(append([]Bot{}, chain...), callee)}
	var msgs []llm.Message
	if callee.Instructions != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: callee.Instructions})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: args.Question})
	answer, err := t.run(ctx, f, msgs)
	if err != nil {
		return Output{}, err
	}
	return Output{Result: map[string]any{"bot_id": callee.ID, "answer": answer}, BotIDs: []string{callee.ID},
		Summary: fmt.Sprintf("answer of %d bytes from bot %s", len(answer), callee.ID)}, nil
}
