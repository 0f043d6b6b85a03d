package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore"
)

// auditReplay prints events from the log in global order, offline: it
// reads the configured log (the file in the data directory, or EventStoreDB
// with --eventstore-url) through the same store serve opens, and needs no
// running server.
func auditReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the event log (PALISADE_DATA_DIR)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "EventStoreDB/KurrentDB connection string (esdb://…); empty reads the log in the data directory (PALISADE_EVENTSTORE_URL)")
	logLevel := fs.String("log-level", env("PALISADE_LOG_LEVEL", "info"), "debug, info, warn or error, for the log on stderr (PALISADE_LOG_LEVEL)")
	org := fs.String("org", "", "only this organization's events")
	content := fs.Bool("content", false, contentFlagHelp)
	fs.Usage = func() { replayUsage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := app.OpenStore(ctx, app.Config{
		DataDir: *dataDir, EventStoreURL: *eventStoreURL, Logger: newLogger(stderr, *logLevel),
	})
	if err != nil {
		return err
	}
	defer store.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	show := replayRedactor(*content)
	const batch = 1000
	var after uint64
	for {
		envs, err := store.ReadAll(ctx, after, eventstore.Filter{OrgID: *org}, batch)
		if err != nil {
			return err
		}
		for _, env := range envs {
			if env, err = show(env); err != nil {
				return err
			}
			if err := enc.Encode(env); err != nil {
				return err
			}
			after = env.Position
		}
		if len(envs) < batch {
			return out.Flush()
		}
	}
}
