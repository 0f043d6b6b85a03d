package main

import (
	"flag"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/sealing"
)

// logKeys are the flags of the tools that read the log offline and open
// its content: where the organizations' data keys are (the data
// directory, or PostgreSQL on the replicated stack) and the master key
// that unwraps them.
type logKeys struct {
	pgURL, pgSchema *string
}

func logKeyFlags(fs *flag.FlagSet) logKeys {
	return logKeys{
		pgURL:    fs.String("postgres-url", env("PALISADE_POSTGRES_URL", ""), "with --eventstore-url: the replicated stack, whose data keys are in PostgreSQL (PALISADE_POSTGRES_URL)"),
		pgSchema: fs.String("postgres-schema", env("PALISADE_POSTGRES_SCHEMA", ""), "PostgreSQL schema of the read models and data keys (PALISADE_POSTGRES_SCHEMA)"),
	}
}

// apply sets where cfg finds the data keys; the master key comes from
// PALISADE_MASTER_KEY, or the data directory's.
func (k logKeys) apply(cfg app.Config) app.Config {
	cfg.PostgresURL, cfg.PostgresSchema = *k.pgURL, *k.pgSchema
	cfg.MasterKey = sealing.NewSecret(env("PALISADE_MASTER_KEY", ""))
	return cfg
}
