// Package bots owns the bot aggregate: a bot's name, its instructions and
// the grants it may use when it runs (knowledge bases, data sources, tools,
// permissions). Each bot is recorded in the stream "bot-{orgID}_{botID}".
//
// It must never do I/O. Grants are only stored here; what a running bot may
// do is always grants ∩ the invoking principal's permissions (access.Delegate).
package bots
