package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// auditReplay prints events from the log in global order, offline: it
// reads the log file directly and needs no running server.
func auditReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the event log")
	org := fs.String("org", "", "only this organization's events")
	content := fs.Bool("content", false, contentFlagHelp)
	fs.Usage = func() { replayUsage(fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := embedded.Open(ctx, filepath.Join(*dataDir, "events.db"))
	if err != nil {
		return fmt.Errorf("open event log: %w", err)
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
			return nil
		}
	}
}
