package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

const contentFlagHelp = "print content fields (document text and titles, chunk text, search queries, bot instructions) as recorded instead of their sha256 and size"

// replayUsage explains what audit replay shows, and why --content exists
// at all for a command whose operator can read the log file.
func replayUsage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `usage: palisade audit replay --data-dir DIR [--org ID] [--content]

Prints events from the log in global order, one JSON envelope per line.
With --org, only that organization's events, each as the audit API shows
it: numbered by "sequence", the organization's own count (1, 2, 3 … in log
order), in place of the log's global "position", which would show how much
other organizations wrote.

By default the content fields of each event are redacted like the audit API
does for audit:read: each is replaced by {"redacted":true,"sha256":"…","size":N},
the hash keyed under the organization's digest key (as the hashes of content
the log records are), so that the output can be handed to an auditor who
may not read restricted knowledge bases, and confirms no guess of a short
value once the organization's key is destroyed. --content prints them as recorded. The flag protects the
output, not the log: an operator who can run this command can read the raw
log file, and with it every content field, anyway; such reads are not
recorded in the organization's security stream as API reads are.

flags:
`)
	fs.PrintDefaults()
}

// replayRedactor returns what audit replay does to each envelope: nothing
// with --content, the registry's content redaction otherwise, each hash
// keyed under its organization's digest key as the audit API shows it.
func replayRedactor(ctx context.Context, content bool, store *app.AuditStore) func(eventstore.Envelope) (eventstore.Envelope, error) {
	if content {
		return func(env eventstore.Envelope) (eventstore.Envelope, error) { return env, nil }
	}
	registry := events.NewRegistry()
	digests := map[string]func(string) string{}
	return func(env eventstore.Envelope) (eventstore.Envelope, error) {
		digest, ok := digests[env.OrgID]
		if !ok {
			var err error
			if digest, err = store.ContentDigest(ctx, env.OrgID); err != nil {
				return eventstore.Envelope{}, err
			}
			digests[env.OrgID] = digest
		}
		data, _, err := registry.RedactContentWith(env.Type, env.Data, digest)
		if err != nil {
			return eventstore.Envelope{}, fmt.Errorf("redact event at position %d: %w", env.Position, err)
		}
		env.Data = data
		return env, nil
	}
}

// envBool reads a boolean environment variable ("1", "true", …); unset or
// unreadable is false, so content stays off unless clearly switched on.
func envBool(name string) bool {
	b, err := strconv.ParseBool(env(name, "false"))
	return err == nil && b
}
