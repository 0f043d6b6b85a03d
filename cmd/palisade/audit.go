package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// auditReplay prints events from the log in global order, offline: it
// reads the configured log (the file in the data directory, or EventStoreDB
// with --eventstore-url) through the same store serve opens, and needs no
// running server. The whole log is printed as envelopes with their global
// positions; one organization's events (--org) as the audit API shows
// them, numbered by the organization's sequence, since that output is
// meant for the organization's auditors.
func auditReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the event log (PALISADE_DATA_DIR)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "EventStoreDB/KurrentDB connection string (esdb://…); empty reads the log in the data directory (PALISADE_EVENTSTORE_URL)")
	keys := logKeyFlags(fs)
	logLevel, err := logLevelFlag(fs, "debug, info, warn or error, for the log on stderr (PALISADE_LOG_LEVEL)")
	if err != nil {
		return err
	}
	org := fs.String("org", "", "only this organization's events")
	content := fs.Bool("content", false, contentFlagHelp)
	fs.Usage = func() { replayUsage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Content is opened with the deployment's data keys; what a destroyed
	// key sealed prints as null (events.Shredded).
	store, err := app.OpenAuditStore(ctx, keys.apply(app.Config{
		DataDir: *dataDir, EventStoreURL: *eventStoreURL, Logger: newLogger(stderr, logLevel),
	}))
	if err != nil {
		return err
	}
	defer store.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	show := replayRedactor(ctx, *content, store)
	const batch = 1000
	var after, sequence uint64
	for {
		envs, err := store.ReadAll(ctx, after, eventstore.Filter{OrgID: *org}, batch)
		if err != nil {
			return err
		}
		for _, env := range envs {
			after = env.Position
			if env, err = show(env); err != nil {
				return err
			}
			var line any = env
			if *org != "" {
				// The audit read model numbers the organization's events
				// the same way: 1, 2, 3 … in log order.
				sequence++
				line = projections.AuditEvent{Sequence: sequence, Event: env}
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		if len(envs) < batch {
			return out.Flush()
		}
	}
}
