package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/ocsf"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// auditStory runs "audit narrative" and "audit export": offline, from the
// configured log (as audit replay reads it), with each organization's
// events numbered by its sequence as the audit API numbers them, and
// content redacted unless --content.
func auditStory(ctx context.Context, command string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the event log (PALISADE_DATA_DIR)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "EventStoreDB/KurrentDB connection string (esdb://…); empty reads the log in the data directory (PALISADE_EVENTSTORE_URL)")
	keys := logKeyFlags(fs)
	logLevel, err := logLevelFlag(fs, "debug, info, warn or error, for the log on stderr (PALISADE_LOG_LEVEL)")
	if err != nil {
		return err
	}
	org := fs.String("org", "", "the organization")
	content := fs.Bool("content", false, contentFlagHelp)
	correlation, since, format := new(string), new(string), new(string)
	switch command {
	case "narrative":
		fs.StringVar(correlation, "correlation", "", "the correlation id of the request (its X-Correlation-Id)")
	case "export":
		fs.StringVar(since, "since", "", "only events that occurred at or after this time (RFC 3339)")
		fs.StringVar(format, "format", "jsonl", "jsonl (the audit API's events) or ocsf (OCSF 1.1.0 events)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var from time.Time
	switch {
	case command == "narrative" && *correlation == "":
		return errors.New("audit narrative: --correlation is required")
	case command == "export" && *org == "":
		return errors.New("audit export: --org is required")
	case command == "export" && *format != "jsonl" && *format != "ocsf":
		return fmt.Errorf("audit export: --format must be jsonl or ocsf, not %q", *format)
	case *since != "":
		var err error
		if from, err = time.Parse(time.RFC3339Nano, *since); err != nil {
			return fmt.Errorf("audit export: --since: %w", err)
		}
	}
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
	narrator := projections.NewNarrator(events.NewRegistry())

	if command == "export" {
		line := func(e projections.AuditEvent) any { return e }
		if *format == "ocsf" {
			mapper := ocsf.NewMapper(narrator)
			line = func(e projections.AuditEvent) any { return mapper.Map(e) }
		}
		err := orgEvents(ctx, store, *org, func(e projections.AuditEvent) error {
			if e.Event.OccurredAt.Before(from) {
				return nil
			}
			if e.Event, err = show(e.Event); err != nil {
				return err
			}
			return enc.Encode(line(e))
		})
		if err != nil {
			return err
		}
		return out.Flush()
	}

	// A narrative: the events of the correlation, by organization.
	byOrg := map[string][]projections.AuditEvent{}
	err = orgEvents(ctx, store, *org, func(e projections.AuditEvent) error {
		if e.Event.CorrelationID != *correlation {
			return nil
		}
		if e.Event, err = show(e.Event); err != nil {
			return err
		}
		byOrg[e.Event.OrgID] = append(byOrg[e.Event.OrgID], e)
		return nil
	})
	if err != nil {
		return err
	}
	switch len(byOrg) {
	case 0:
		return fmt.Errorf("audit narrative: no event with correlation id %q", *correlation)
	case 1:
	default:
		orgs := make([]string, 0, len(byOrg))
		for o := range byOrg {
			orgs = append(orgs, o)
		}
		slices.Sort(orgs)
		return fmt.Errorf("audit narrative: correlation id %q is in several organizations %v: name one with --org", *correlation, orgs)
	}
	for _, evs := range byOrg {
		enc.SetIndent("", "  ")
		if err := enc.Encode(narrator.Narrative(*correlation, evs)); err != nil {
			return err
		}
	}
	return out.Flush()
}

// orgEvents reads the log in order (one organization's when org is set)
// and hands each event to each numbered with its organization's sequence.
func orgEvents(ctx context.Context, store eventstore.Store, org string, each func(projections.AuditEvent) error) error {
	const batch = 1000
	sequences := map[string]uint64{}
	var after uint64
	for {
		envs, err := store.ReadAll(ctx, after, eventstore.Filter{OrgID: org}, batch)
		if err != nil {
			return err
		}
		for _, env := range envs {
			after = env.Position
			sequences[env.OrgID]++
			if err := each(projections.AuditEvent{Sequence: sequences[env.OrgID], Event: env}); err != nil {
				return err
			}
		}
		if len(envs) < batch {
			return nil
		}
	}
}
