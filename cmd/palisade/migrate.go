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
// With --rebuild it then empties the read models and forgets which event
// log they were built from, so that the next serve rebuilds them from its
// own log (what a server refusing read models of another log, or ahead of
// its log, asks for).
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ownerURL := fs.String("owner-url", env("PALISADE_POSTGRES_OWNER_URL", ""), "PostgreSQL URL of the owner role (PALISADE_POSTGRES_OWNER_URL)")
	schema := fs.String("schema", env("PALISADE_POSTGRES_SCHEMA", ""), "schema of the read models; empty is public (PALISADE_POSTGRES_SCHEMA)")
	appRole := fs.String("app-role", postgres.DefaultAppRole, "role the server connects as; it is granted what it needs and owns nothing")
	rebuild := fs.Bool("rebuild", false, "also empty every read model (and its record of the event log it was built from), so that the next serve rebuilds them from its log; stop every server using the schema first. The embedding store is kept")
	indexOrgs := fs.Bool("index-organizations", false, "also give every organization of at least --org-index-min chunks indexes of its own now (an HNSW graph and a keyword index), and drop those of organizations below half of it (what serve does every --org-index-interval); large organizations take minutes")
	orgIndexMin := fs.Int("org-index-min", envInt("PALISADE_ORG_INDEX_MIN", postgres.DefaultOrganizationIndexMin), "with --index-organizations: fewest chunks that earn an organization its index, at least 2 (PALISADE_ORG_INDEX_MIN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *indexOrgs && *orgIndexMin < 2 {
		return fmt.Errorf("migrate: --org-index-min: want at least 2 chunks, got %d", *orgIndexMin)
	}
	if *ownerURL == "" {
		return errors.New("migrate: --owner-url (or PALISADE_POSTGRES_OWNER_URL) is required")
	}
	if err := postgres.Migrate(ctx, *ownerURL, *schema, postgres.WithAppRole(*appRole)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "read-model schema is up to date")
	if *rebuild {
		if err := postgres.Reset(ctx, *ownerURL, *schema); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "read models emptied: the next `palisade serve` rebuilds them from its event log")
	}
	if *indexOrgs {
		report, err := postgres.IndexOrganizations(ctx, *ownerURL, *schema, *orgIndexMin)
		if err != nil {
			return err
		}
		if report.Skipped {
			return errors.New("migrate: another session (a server or a migrate) is maintaining the organization indexes; try again once it is done")
		}
		fmt.Fprintf(stdout, "organization indexes: %d built, %d rebuilt, %d dropped, %d kept\n", len(report.Created), len(report.Rebuilt), len(report.Dropped), report.Kept)
	}
	return nil
}
