package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/readmodeltest"
)

// The tests need a PostgreSQL database:
//
//	PALISADE_TEST_POSTGRES_URL      the owner role's URL (scripts/provision-postgres prints it),
//	                                of a database where the vector extension exists.
//	PALISADE_TEST_POSTGRES_APP_URL  the application role's URL; by default the owner URL with
//	                                its user and password replaced by palisade_app:palisade_app.
//
// Without PALISADE_TEST_POSTGRES_URL they skip, unless CI is set: then they
// fail. A URL that is set but unreachable always fails. Each test migrates a
// fresh schema of its own (dropped at the end), so they run in parallel.
const (
	envURL    = "PALISADE_TEST_POSTGRES_URL"
	envAppURL = "PALISADE_TEST_POSTGRES_APP_URL"
)

// testDatabase is the database the tests run against.
type testDatabase struct {
	ownerURL, appURL string
	appRole          string
	// vector says whether the vector extension exists in the database.
	// Without it, tests migrate only up to the version before the chunk
	// table (see migrationsBeforeVector) and the chunk test fails in CI
	// and skips elsewhere.
	vector bool
}

// migrationsBeforeVector is the last migration that needs no extension.
const migrationsBeforeVector = 1

func database(t testing.TB) testDatabase {
	t.Helper()
	ownerURL := os.Getenv(envURL)
	if ownerURL == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set; CI must run the PostgreSQL tests (scripts/provision-postgres prints it)", envURL)
		}
		t.Skipf("%s is not set", envURL)
	}
	appURL := os.Getenv(envAppURL)
	if appURL == "" {
		u, err := url.Parse(ownerURL)
		if err != nil {
			t.Fatalf("%s: %v", envURL, err)
		}
		u.User = url.UserPassword(DefaultAppRole, DefaultAppRole)
		appURL = u.String()
	}
	appCfg, err := pgx.ParseConfig(appURL)
	if err != nil {
		t.Fatalf("application URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL is unreachable: %v", envURL, err)
	}
	defer conn.Close(ctx)
	db := testDatabase{ownerURL: ownerURL, appURL: appURL, appRole: appCfg.User}
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')`).Scan(&db.vector)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// requireVector fails (in CI) or skips a test that needs pgvector when the
// database lacks the extension.
func (db testDatabase) requireVector(t testing.TB) {
	t.Helper()
	if db.vector {
		return
	}
	msg := "the vector extension does not exist in the test database: run scripts/provision-postgres " +
		"(it builds pgvector and creates the extension), or CREATE EXTENSION vector as a superuser"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// bundle is one test's fresh schema and its connections.
type bundle struct {
	ctx    context.Context
	db     testDatabase
	schema string
	// store is the adapters, connected as the application role.
	store *Store
	// owner is a pool of the owner role on the schema.
	owner *pgxpool.Pool
}

func newSchemaName() string { return fmt.Sprintf("test_%016x", rand.Uint64()) }

// migrateFresh creates and migrates a fresh schema, dropped at the end of
// the test.
func migrateFresh(t testing.TB, db testDatabase) string {
	t.Helper()
	ctx := context.Background()
	schema := newSchemaName()
	t.Cleanup(func() { dropSchema(t, db, schema) })
	if err := migrate(ctx, db.ownerURL, schema, db.migrateConfig()); err != nil {
		t.Fatalf("migrate %s: %v", schema, err)
	}
	return schema
}

func (db testDatabase) migrateConfig() migrateConfig {
	cfg := migrateConfig{appRole: db.appRole}
	if !db.vector {
		cfg.target = migrationsBeforeVector
	}
	return cfg
}

func dropSchema(t testing.TB, db testDatabase, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db.ownerURL)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

// pool connects to the schema as the role of rawURL, with the same session
// settings as the adapters (and pgvector's types when the database has them).
func pool(t testing.TB, db testDatabase, rawURL, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = searchPath(schema)
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func setup(t testing.TB) *bundle {
	t.Helper()
	db := database(t)
	schema := migrateFresh(t, db)
	ctx := context.Background()
	store, err := open(ctx, db.appURL, schema, db.vector)
	if err != nil {
		t.Fatalf("open %s as %s: %v", schema, db.appRole, err)
	}
	t.Cleanup(store.Close)
	return &bundle{ctx: ctx, db: db, schema: schema, store: store, owner: pool(t, db, db.ownerURL, schema)}
}

// unit runs fn in a unit of work of the store, as a projection would.
func (b *bundle) unit(t testing.TB, fn func(ctx context.Context) error) {
	t.Helper()
	if err := b.store.Checkpoints().Advance(b.ctx, "test", 0, fn); err != nil {
		t.Fatal(err)
	}
}

func scope(t testing.TB, org string) access.Scope {
	t.Helper()
	s, err := access.EventScope(org)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(t *testing.T) readmodeltest.Models {
		b := setup(t)
		m := readmodeltest.Models{
			Tenancy: b.store.Tenancy(),
			Bots:    b.store.Bots(),
			Audit:   b.store.Audit(),
			Unit: func(ctx context.Context, fn func(ctx context.Context) error) error {
				return b.store.Checkpoints().Advance(ctx, "contract", 0, fn)
			},
		}
		// The knowledge and conversation tables come with the vector
		// extension (migrations after the first need it); without it the
		// suite skips their cases (the chunk tests fail in CI for it).
		if b.db.vector {
			m.Knowledge, m.Chunks = b.store.Knowledge(), b.store.Chunks()
			m.Conversations = b.store.Conversations()
			m.DataSources = b.store.DataSources()
			m.Analytics = b.store.Analytics()
			m.Jobs = b.store.ReadModels().Jobs
		}
		return m
	})
}

func TestOpenRefusesRolesThatBypassRowLevelSecurity(t *testing.T) {
	t.Parallel()
	db := database(t)
	schema := migrateFresh(t, db)
	_, err := open(context.Background(), db.ownerURL, schema, db.vector)
	if err == nil || !errors.Is(err, ErrPrivilegedRole) {
		t.Fatalf("Open as the owner of the tables: %v, want ErrPrivilegedRole", err)
	}
}

func TestWritesNeedAUnitOfTheirStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := scope(t, "org-a")
	bot := projections.Bot{ID: "bot-1", Name: "b"}
	if err := b.store.Bots().PutBot(b.ctx, a, bot); !errors.Is(err, ErrNoUnit) {
		t.Fatalf("PutBot outside a unit: %v, want ErrNoUnit", err)
	}
	// A unit of another store (another schema) is not this store's unit.
	other := setup(t)
	err := other.store.Checkpoints().Advance(b.ctx, "test", 1, func(ctx context.Context) error {
		return b.store.Bots().PutBot(ctx, a, bot)
	})
	if !errors.Is(err, ErrNoUnit) {
		t.Fatalf("PutBot in another store's unit: %v, want ErrNoUnit", err)
	}
	if _, err := b.store.Bots().Bot(b.ctx, a, "bot-1"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("bot after refused writes: %v", err)
	}
}

func TestInvalidSchemaNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Upper", "a-b", `a"b`, "pg_catalog", "1abc", "a b", "x; DROP TABLE y"} {
		if err := Migrate(context.Background(), "postgres://invalid", name); !errors.Is(err, ErrInvalidSchema) {
			t.Errorf("Migrate(%q) = %v, want ErrInvalidSchema", name, err)
		}
		if _, err := Open(context.Background(), "postgres://invalid", name); !errors.Is(err, ErrInvalidSchema) {
			t.Errorf("Open(%q) = %v, want ErrInvalidSchema", name, err)
		}
	}
}
