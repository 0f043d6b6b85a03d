// Package conversations owns the conversation aggregate: a member's (or
// service account's) exchange with one bot, one stream per conversation
// ("conversation-{org}_{id}"), and the events that record every turn: the
// question, each tool call the model requested with the decision taken on
// it and its outcome, and the answer, failure or cancellation.
//
// The record never holds more of a tool's result than its summary (ids,
// counts, sizes and a SHA-256); the texts a turn read stay where they live.
package conversations
