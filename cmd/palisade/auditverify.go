package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections/postgres"
)

// errFindings: verification found tampering (the exit status is non-zero).
var errFindings = errors.New("audit verify: the log does not match its chain")

// auditVerify recomputes the organizations' hash chains from the
// configured log, offline, and compares them with the chain's record in
// the data directory and its signed checkpoints. It prints one JSON report
// per organization and fails if any has a finding.
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", env("PALISADE_DATA_DIR", "palisade-data"), "data directory holding the event log and the audit chain's record (PALISADE_DATA_DIR)")
	eventStoreURL := fs.String("eventstore-url", env("PALISADE_EVENTSTORE_URL", ""), "EventStoreDB/KurrentDB connection string (esdb://…); empty reads the log in the data directory (PALISADE_EVENTSTORE_URL)")
	logLevel, err := logLevelFlag(fs, "debug, info, warn or error, for the log on stderr (PALISADE_LOG_LEVEL)")
	if err != nil {
		return err
	}
	pgURL := fs.String("postgres-url", env("PALISADE_POSTGRES_URL", ""), "with --eventstore-url: the replicated stack, whose audit chain record is in PostgreSQL (PALISADE_POSTGRES_URL)")
	pgSchema := fs.String("postgres-schema", env("PALISADE_POSTGRES_SCHEMA", ""), "PostgreSQL schema of the read models and the audit chain's record (PALISADE_POSTGRES_SCHEMA)")
	org := fs.String("org", "", "only this organization")
	var jwksFiles listFlag
	fs.Var(&jwksFiles, "jwks", "verify checkpoint signatures with the keys of this JWK Set file (as served at /.well-known/jwks.json) instead of the data directory's issuer key; repeat it to add the JWKS kept from before a key was removed")
	issuerKeys := fs.String("issuer-keys", env("PALISADE_ISSUER_KEYS", ""), "verify checkpoint signatures with the public keys of this key set file, the servers' --issuer-keys (PALISADE_ISSUER_KEYS); with --jwks, both")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: palisade audit verify --data-dir DIR [--eventstore-url esdb://… [--postgres-url URL] [--postgres-schema S]] [--org ID] [--jwks FILE]… [--issuer-keys FILE]

Recomputes each organization's hash chain from the event log and compares
it with the audit chain's record (in the data directory; on the
replicated stack, --eventstore-url with --postgres-url, the one in
PostgreSQL that the replicas share) and its signed checkpoints. Prints one JSON report per organization and exits non-zero if
any reports a finding: the first event altered, removed, inserted or
reordered, a checkpoint whose signature fails, or a record rewritten to
match. Events the chain had not reached when the server stopped are
counted as pending. The embedded log is locked while a server runs.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	replicated := *eventStoreURL != "" && *pgURL != ""
	recordPath := filepath.Join(*dataDir, chain.RecordFile)
	if !replicated {
		if _, err := os.Stat(recordPath); err != nil {
			return fmt.Errorf("audit verify: no audit chain record: %w", err)
		}
	}
	keys, err := verifyKeys(*dataDir, jwksFiles, *issuerKeys)
	if err != nil {
		return err
	}
	// The log as stored (content sealed): the chain covers that form.
	store, err := app.OpenLog(ctx, app.Config{
		DataDir: *dataDir, EventStoreURL: *eventStoreURL, Logger: newLogger(stderr, logLevel),
	})
	if err != nil {
		return err
	}
	defer store.Close()
	var record chain.RecordReader
	if replicated {
		// The record the replicas share, read as the application role
		// like any replica reads it.
		identified, ok := store.(interface {
			LogID(ctx context.Context) (string, error)
		})
		if !ok {
			return fmt.Errorf("audit verify: the event log %T has no identity to find its record by", store)
		}
		logID, err := identified.LogID(ctx)
		if err != nil {
			return fmt.Errorf("audit verify: identity of the event log: %w", err)
		}
		pg, err := postgres.Open(ctx, *pgURL, *pgSchema)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer pg.Close()
		record = pg.ChainRecord(logID)
	} else {
		local, err := chain.OpenRecord(ctx, recordPath)
		if err != nil {
			return err
		}
		defer local.Close()
		record = local
	}
	reports, err := chain.Verify(ctx, store, record, keys, *org)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	bad := 0
	for _, r := range reports {
		if !r.OK {
			bad++
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%w: findings in %d of %d organizations", errFindings, bad, len(reports))
	}
	return nil
}

// verifyKeys returns the checkpoint keys: those of the JWKS files and of
// the key set file, by kid, or else the public half of the data
// directory's issuer key (never created here).
func verifyKeys(dataDir string, jwksFiles []string, keySet string) (chain.PublicKeys, error) {
	var docs [][]byte
	for _, f := range jwksFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("audit verify: %w", err)
		}
		docs = append(docs, b)
	}
	if keySet != "" {
		keys, err := identity.ReadIssuerKeys(keySet)
		if err != nil {
			return nil, fmt.Errorf("audit verify: %w", err)
		}
		doc, err := identity.PublicJWKS(keys)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		if _, err := os.Stat(filepath.Join(dataDir, identity.IssuerKeyFile)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit verify: no issuer key in %s; pass the servers' --issuer-keys, or the deployment's JWKS with --jwks", dataDir)
		}
		issuer, err := identity.LoadOrCreateIssuer(dataDir, app.DefaultIssuer, app.DefaultAudience)
		if err != nil {
			return nil, err
		}
		doc, err := issuer.JWKS()
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	var sets []chain.PublicKeys
	for i, doc := range docs {
		keys, err := chain.KeysFromJWKS(doc)
		if err != nil {
			return nil, fmt.Errorf("audit verify: key set %d: %w", i+1, err)
		}
		sets = append(sets, keys)
	}
	// A kid names one key (a thumbprint, or unique in its set); the first
	// set that knows it answers.
	return func(kid string) (ed25519.PublicKey, bool) {
		for _, keys := range sets {
			if k, ok := keys(kid); ok {
				return k, true
			}
		}
		return nil, false
	}, nil
}

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string { return fmt.Sprint(*l) }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
