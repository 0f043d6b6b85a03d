package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// migrations are the schema's forward-only, numbered migrations. A change
// to the schema is a new file; an applied file is never edited.
//
//go:embed migrations/*.sql
var migrations embed.FS

// DefaultAppRole is the role the application connects as.
const DefaultAppRole = "palisade_app"

// MigrateOption configures Migrate.
type MigrateOption func(*migrateConfig)

// WithAppRole names the role the application connects as (default
// [DefaultAppRole]), which Migrate grants what the adapters need.
func WithAppRole(role string) MigrateOption {
	return func(c *migrateConfig) { c.appRole = role }
}

type migrateConfig struct {
	appRole string
	// target is the version to migrate to; 0 means the latest.
	target int64
}

// Migrate brings the schema (empty: public) of the database at ownerURL up
// to date, as the owner role, which then owns every table: it creates the
// schema if needed, applies the migrations not applied yet (goose keeps the
// applied versions in the schema's goose_db_version table), and grants the
// application role USAGE on the schema, SELECT, INSERT, UPDATE and DELETE
// on every table with an org_id column (all of them under row-level
// security), and SELECT, INSERT and UPDATE on projection_checkpoints.
//
// Migrations of one schema are serialized by an advisory lock, so replicas
// may all call Migrate at start. The vector extension must already exist in
// the database (a superuser creates it once; scripts/provision-postgres
// does), and btree_gin too unless the owner role may create it (it is a
// trusted extension). The same superuser step should mark
// pg_catalog.ts_match_vq LEAKPROOF (migration 00016 says why): without it
// keyword search cannot use its index.
func Migrate(ctx context.Context, ownerURL, schema string, opts ...MigrateOption) error {
	cfg := migrateConfig{appRole: DefaultAppRole}
	for _, opt := range opts {
		opt(&cfg)
	}
	return migrate(ctx, ownerURL, schema, cfg)
}

func migrate(ctx context.Context, ownerURL, schema string, cfg migrateConfig) error {
	schema, err := schemaOf(schema)
	if err != nil {
		return err
	}
	if cfg.appRole == "" {
		return errors.New("postgres migrate: empty application role")
	}
	connCfg, err := pgx.ParseConfig(ownerURL)
	if err != nil {
		return fmt.Errorf("postgres migrate: parse URL: %w", err)
	}
	connCfg.RuntimeParams["search_path"] = searchPath(schema)
	db := stdlib.OpenDB(*connCfg)
	defer db.Close()

	// The lock is held by this session for the whole migration; goose runs
	// on other connections of db.
	lockConn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("postgres migrate: connect: %w", err)
	}
	defer lockConn.Close()
	lockID := advisoryLockID(schema)
	if _, err := lockConn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("postgres migrate: lock schema %s: %w", schema, err)
	}
	defer func() {
		_, _ = lockConn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)
	}()

	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident); err != nil {
		return fmt.Errorf("postgres migrate: create schema %s: %w", schema, err)
	}
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithTableName(schema+".goose_db_version"),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("postgres migrate: %w", err)
	}
	if cfg.target == 0 {
		_, err = provider.Up(ctx)
	} else {
		_, err = provider.UpTo(ctx, cfg.target)
	}
	if err != nil {
		return fmt.Errorf("postgres migrate: schema %s: %w", schema, err)
	}
	if err := grant(ctx, db, schema, cfg.appRole); err != nil {
		return fmt.Errorf("postgres migrate: grant to %s: %w", cfg.appRole, err)
	}
	return nil
}

// grant gives the application role what the adapters need and no more.
// Tenant tables are found by their org_id column, so a migration that adds
// one is covered; the catalog test checks each of them has row-level
// security forced and a policy.
func grant(ctx context.Context, db *sql.DB, schema, role string) error {
	ident, roleIdent := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	stmts := []string{`GRANT USAGE ON SCHEMA ` + ident + ` TO ` + roleIdent}
	rows, err := db.QueryContext(ctx, `
		SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		ORDER BY c.relname`, schema)
	if err != nil {
		return err
	}
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			rows.Close()
			return err
		}
		privileges := "SELECT, INSERT, UPDATE, DELETE"
		if p, ok := appendOnly[table]; ok {
			privileges = p
		}
		stmts = append(stmts, `GRANT `+privileges+` ON TABLE `+
			pgx.Identifier{schema, table}.Sanitize()+` TO `+roleIdent)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	stmts = append(stmts, `GRANT SELECT, INSERT, UPDATE ON TABLE `+
		pgx.Identifier{schema, "projection_checkpoints"}.Sanitize()+` TO `+roleIdent)
	if exists, err := tableExists(ctx, db, schema, "worker_checkpoints"); err != nil {
		return err
	} else if exists {
		stmts = append(stmts, `GRANT SELECT, INSERT, UPDATE ON TABLE `+
			pgx.Identifier{schema, "worker_checkpoints"}.Sanitize()+` TO `+roleIdent)
	}
	// The data keys (wrapped): created, and deleted when destroyed; a
	// tombstone is never removed.
	for table, privileges := range map[string]string{
		"data_keys": "SELECT, INSERT, DELETE", "data_key_subjects": "SELECT, INSERT, DELETE", "data_key_tombstones": "SELECT, INSERT",
	} {
		if exists, err := tableExists(ctx, db, schema, table); err != nil {
			return err
		} else if exists {
			stmts = append(stmts, `GRANT `+privileges+` ON TABLE `+pgx.Identifier{schema, table}.Sanitize()+` TO `+roleIdent)
		}
	}
	// The audit chain's bookkeeping: its position and claim, and each
	// organization's head, move forward; nothing is deleted.
	for _, table := range []string{"audit_chain", "audit_chain_heads"} {
		if exists, err := tableExists(ctx, db, schema, table); err != nil {
			return err
		} else if exists {
			stmts = append(stmts, `GRANT SELECT, INSERT, UPDATE ON TABLE `+pgx.Identifier{schema, table}.Sanitize()+` TO `+roleIdent)
		}
	}
	// The application binds the read models to its log once; only the
	// owner, rebuilding, removes the binding.
	if exists, err := tableExists(ctx, db, schema, "read_model_origin"); err != nil {
		return err
	} else if exists {
		stmts = append(stmts, `GRANT SELECT, INSERT ON TABLE `+
			pgx.Identifier{schema, "read_model_origin"}.Sanitize()+` TO `+roleIdent)
	}
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// appendOnly are the tenant tables the application role may only read
// and add to: the audit chain's record of events and its checkpoints,
// which the chainer writes once and nothing rewrites.
var appendOnly = map[string]string{
	"audit_chain_events":      "SELECT, INSERT",
	"audit_chain_checkpoints": "SELECT, INSERT",
}

func tableExists(ctx context.Context, db *sql.DB, schema, table string) (bool, error) {
	var exists bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))`, schema, table).Scan(&exists)
	return exists, err
}

// advisoryLockID is the key of the advisory lock that serializes the
// migrations of one schema, and only of that schema.
func advisoryLockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("palisade/projections/postgres:" + schema))
	return int64(h.Sum64())
}
