package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/palisadehq/palisade/projections/postgres"
)

// migrate brings the PostgreSQL read-model schema up to date, as the owner
// role. It is also run at start by serve when an owner URL is configured.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ownerURL := fs.String("owner-url", env("PALISADE_POSTGRES_OWNER_URL", ""), "PostgreSQL URL of the owner role (PALISADE_POSTGRES_OWNER_URL)")
	schema := fs.String("schema", env("PALISADE_POSTGRES_SCHEMA", ""), "schema of the read models; empty is public (PALISADE_POSTGRES_SCHEMA)")
	appRole := fs.String("app-role", postgres.DefaultAppRole, "role the server connects as; it is granted what it needs and owns nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ownerURL == "" {
		return errors.New("migrate: --owner-url (or PALISADE_POSTGRES_OWNER_URL) is required")
	}
	if err := postgres.Migrate(ctx, *ownerURL, *schema, postgres.WithAppRole(*appRole)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "read-model schema is up to date")
	return nil
}
