// Package conversation runs a bot's turn: it asks the model, runs the tool
// calls the model requests, and records every step in the conversation's
// stream through the write side (commands.Conversations).
//
// The model is treated as fully compromised by prompt injection. Nothing it
// says widens what a turn may do:
//
//   - each tool call is decided when it runs, on the effective principal
//     grants(bot) ∩ the invoker's permissions now (the invoker re-resolved
//     from the read models and every bot of the chain re-read from its
//     stream for every call, narrowed by the token scope and, for
//     ask_bot, by every caller in the chain), and on the bots' granted
//     tools and knowledge bases as they are then;
//   - arguments are validated against the tool's JSON Schema before it
//     runs; invalid arguments are a recorded denial;
//   - retrieved text and tool results reach the model only as tool
//     results, never in the system prompt, which holds only the bot's
//     instructions;
//   - a turn makes at most MaxToolCalls calls, one model response may ask
//     for at most MaxToolCallsPerResponse (each is recorded), ask_bot
//     nests at most MaxDepth bots and never in a cycle, and a turn has a
//     wall time;
//   - a tool name that names no registered tool is recorded as
//     conversations.UnknownTool: the name a model gave is free text and is
//     kept only as content;
//   - citations are kept only when they name passages a tool returned to
//     this turn.
//
// Tools are registered in a [Registry]: the knowledge tools, [AskBotTool]
// and [QueryDataTool] (a question to a data source, run as an analytics
// job); later capabilities (workflows, inbox replies) add theirs the same
// way.
package conversation
