package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain/events"
)

// auditAccess answers an access review offline, from the log: the same
// fold and the same answer as GET /v1/audit/access, for an operator who
// can read the log (so it asks for no token and records nothing).
func auditAccess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit access", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the event log (PALISADE_DATA_DIR)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "EventStoreDB/KurrentDB connection string (esdb://…); empty reads the log in the data directory (PALISADE_EVENTSTORE_URL)")
	keys := logKeyFlags(fs)
	logLevel, err := logLevelFlag(fs, "debug, info, warn or error, for the log on stderr (PALISADE_LOG_LEVEL)")
	if err != nil {
		return err
	}
	org := fs.String("org", "", "the organization (required)")
	subject := fs.String("subject", "", "user:SUB, user:ISSUER|SUB or service:ID")
	issuer := fs.String("issuer", "", "external issuer of a user:SUB subject")
	resource := fs.String("resource", "", "kb:ID, datasource:ID or bot:ID")
	at := fs.String("at", "", "RFC 3339 time; now when empty")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: palisade audit access --data-dir DIR --org ID (--subject S [--issuer URL] | --resource R) [--at RFC3339]

Prints, as one JSON object, what a subject could do in the organization at
a moment, or who could read a resource then, from the log folded up to that
moment: the answer of GET /v1/audit/access.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *org == "" {
		return fmt.Errorf("audit access: --org is required")
	}
	q, err := accessreview.ParseQuery(*subject, *issuer, *resource, *at, time.Now())
	if err != nil {
		return fmt.Errorf("audit access: %w", err)
	}
	store, err := app.OpenStore(ctx, keys.apply(app.Config{DataDir: *dataDir, EventStoreURL: *eventStoreURL, Logger: newLogger(stderr, logLevel)}))
	if err != nil {
		return err
	}
	defer store.Close()
	snap, err := accessreview.Fold(ctx, store, events.NewRegistry(), *org, q.At)
	if err != nil {
		return err
	}
	var answer any
	if q.Subject != nil {
		answer = snap.Subject(*q.Subject)
	} else {
		answer = snap.Resource(*q.Resource)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(answer)
}
