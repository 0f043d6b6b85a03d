package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles returns the embedded migrations' names in order, checking
// that they are numbered 1, 2, … and forward-only.
func migrationFiles(t testing.TB) []string {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	numbered := regexp.MustCompile(`^migrations/(\d{5})_[a-z0-9_]+\.sql$`)
	for i, name := range names {
		m := numbered.FindStringSubmatch(name)
		if m == nil {
			t.Fatalf("migration %s: want migrations/NNNNN_name.sql", name)
		}
		if n, _ := strconv.Atoi(m[1]); n != i+1 {
			t.Fatalf("migration %s is number %d, want %d: migrations are numbered without gaps", name, n, i+1)
		}
		text, err := fs.ReadFile(migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(text), "-- +goose Up\n") || strings.Contains(string(text), "+goose Down") {
			t.Fatalf("migration %s: want a forward-only goose migration (-- +goose Up, no Down)", name)
		}
	}
	return names
}

// appliedVersions returns the versions goose recorded in the schema.
func appliedVersions(t testing.TB, ctx context.Context, conn *pgxpool.Pool, schema string) []int64 {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT version_id FROM `+pgx.Identifier{schema, "goose_db_version"}.Sanitize()+
		` WHERE version_id > 0 AND is_applied ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db := database(t)
	ctx := context.Background()
	files := migrationFiles(t)
	cfg := db.migrateConfig()
	latest := int64(len(files))
	if cfg.target != 0 {
		latest = cfg.target
		t.Logf("the database has no vector extension: migrating up to version %d only", latest)
	}
	want := make([]int64, latest)
	for i := range want {
		want[i] = int64(i + 1)
	}
	run := func(schema string) error {
		if db.vector {
			return Migrate(ctx, db.ownerURL, schema, WithAppRole(db.appRole))
		}
		return migrate(ctx, db.ownerURL, schema, cfg)
	}
	conn, err := pgxpool.New(ctx, db.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)

	t.Run("FromAnEmptySchemaThenAgain", func(t *testing.T) {
		t.Parallel()
		schema := newSchemaName()
		t.Cleanup(func() { dropSchema(t, db, schema) })
		if err := run(schema); err != nil {
			t.Fatal(err)
		}
		if got := appliedVersions(t, ctx, conn, schema); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("versions after the first run: %v, want %v", got, want)
		}
		var stamps string
		stampsSQL := `SELECT string_agg(id || ':' || tstamp, ',' ORDER BY id) FROM ` + pgx.Identifier{schema, "goose_db_version"}.Sanitize()
		if err := conn.QueryRow(ctx, stampsSQL).Scan(&stamps); err != nil {
			t.Fatal(err)
		}
		// Data written in between survives the second run, which does nothing.
		store, err := open(ctx, db.appURL, schema, db.vector)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if err := store.Checkpoints().Advance(ctx, "p", 42, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := run(schema); err != nil {
			t.Fatalf("second run: %v", err)
		}
		var again string
		if err := conn.QueryRow(ctx, stampsSQL).Scan(&again); err != nil {
			t.Fatal(err)
		}
		if again != stamps {
			t.Fatalf("the second run changed goose's table:\n%s\n%s", stamps, again)
		}
		if pos, err := store.Checkpoints().Position(ctx, "p"); err != nil || pos != 42 {
			t.Fatalf("checkpoint after the second run: %d, %v", pos, err)
		}
	})

	t.Run("ConcurrentRunsOfOneSchema", func(t *testing.T) {
		t.Parallel()
		schema := newSchemaName()
		t.Cleanup(func() { dropSchema(t, db, schema) })
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = run(schema) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("run %d: %v", i, err)
			}
		}
		if got := appliedVersions(t, ctx, conn, schema); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("versions: %v, want %v", got, want)
		}
	})

	t.Run("UnknownAppRole", func(t *testing.T) {
		t.Parallel()
		schema := newSchemaName()
		t.Cleanup(func() { dropSchema(t, db, schema) })
		c := cfg
		c.appRole = "palisade_no_such_role"
		if err := migrate(ctx, db.ownerURL, schema, c); err == nil || !strings.Contains(err.Error(), "palisade_no_such_role") {
			t.Fatalf("migrate granting to a missing role: %v", err)
		}
	})
}

// TestMigrateMovesChunkWordsToTheirTable migrates a schema holding a chunk
// to 00016, then past 00017: the chunk's words must be in
// knowledge_chunk_terms, found by the keyword index's lookup, and under
// row-level security like the chunk.
func TestMigrateMovesChunkWordsToTheirTable(t *testing.T) {
	t.Parallel()
	db := database(t)
	db.requireVector(t)
	ctx := context.Background()
	schema := newSchemaName()
	t.Cleanup(func() { dropSchema(t, db, schema) })
	if err := migrate(ctx, db.ownerURL, schema, migrateConfig{appRole: db.appRole, target: 16}); err != nil {
		t.Fatal(err)
	}
	owner := pool(t, db, db.ownerURL, schema)
	err := pgx.BeginTxFunc(ctx, owner, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, setOrgSQL, "org-a"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO knowledge_chunks (org_id, knowledge_base_id, document_id, chunk_id, ordinal, text, embedding)
			VALUES ('org-a', 'kb-1', 'doc-1', 'chunk-1', 0, 'invoice invoice due', array_fill(0.5::real, ARRAY[384])::vector)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db.ownerURL, schema, migrateConfig{appRole: db.appRole}); err != nil {
		t.Fatal(err)
	}
	app := pool(t, db, db.appURL, schema)
	for _, org := range []string{"org-a", "org-b"} {
		var ids []string
		err := pgx.BeginTxFunc(ctx, app, pgx.TxOptions{}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, setOrgSQL, org); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT chunk_id FROM knowledge_chunk_terms
				WHERE knowledge_base_id = 'kb-1' AND tsv @@ 'due'::tsquery AND levels @@ $$'invoice 2'$$::tsquery`)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string][]string{"org-a": {"chunk-1"}}[org]; !slices.Equal(ids, want) {
			t.Fatalf("%s finds %v in knowledge_chunk_terms, want %v", org, ids, want)
		}
	}
}
