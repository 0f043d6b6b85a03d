package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/sealing"
)

// keysRotate adds a new version of an organization's data key. New
// content and secrets are sealed under it; everything sealed before stays
// under the version that sealed it and still opens, so the log is not
// rewritten. A server running on the same data directory keeps sealing
// under the version it loaded until it restarts. On the replicated stack
// (PALISADE_EVENTSTORE_URL and PALISADE_POSTGRES_URL set, as for serve) it
// rotates the key the replicas share in PostgreSQL; they seal under the new
// version within 30 seconds.
func keysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding keys/ (PALISADE_DATA_DIR)")
	org := fs.String("org", "", "the organization whose data key to rotate")
	pgURL := fs.String("postgres-url", env("PALISADE_POSTGRES_URL", ""), "with --eventstore-url: the replicated stack, whose data keys are in PostgreSQL (PALISADE_POSTGRES_URL)")
	pgSchema := fs.String("postgres-schema", env("PALISADE_POSTGRES_SCHEMA", ""), "PostgreSQL schema of the read models and data keys (PALISADE_POSTGRES_SCHEMA)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "with --postgres-url: the replicated stack (PALISADE_EVENTSTORE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *org == "" {
		return errors.New("keys rotate: --org is required")
	}
	keys, err := app.OpenKeyring(ctx, app.Config{DataDir: *dataDir, MasterKey: sealing.NewSecret(env("PALISADE_MASTER_KEY", "")),
		EventStoreURL: *eventStoreURL, PostgresURL: *pgURL, PostgresSchema: *pgSchema})
	if err != nil {
		return err
	}
	defer keys.Close()
	key, err := keys.Rotate(ctx, *org)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "organization %s: data key version %d (%s)\n", *org, key.Version(), key.ID())
	return err
}
