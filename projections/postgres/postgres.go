// Package postgres holds the PostgreSQL adapters of the read-model ports
// (projections.TenancyModel, BotModel, AuditModel, KnowledgeModel,
// ChunkModel, ConversationModel, DataSourceModel and Checkpoints), their schema and its
// migrations, used in production, where read models outlive the process and
// are shared by every replica; and the PostgreSQL adapter of the embedding store ([Embeddings]),
// which lives in the same database under the same rules; and the replicas'
// shared claims on Idempotency-Keys in flight ([IdempotencyClaims]), under
// the same rules too; and the audit chain's record shared by the replicas
// ([ChainRecord], the PostgreSQL adapter of audit/chain's record port).
//
// It owns the tables of one schema and the rules that keep organizations
// apart in them (invariant 2 of DESIGN.md): every tenant table has row-level
// security forced on its owner too, and one policy that admits only rows of
// the organization named by the transaction's palisade.org_id setting. Two
// roles take part. The owner role runs [Migrate] and owns the tables; the
// application role, which [Open] connects as, owns nothing, is no superuser
// and cannot bypass row-level security, and Open refuses a role that could.
//
// Every read first sets the organization of its access.Scope with
// set_config('palisade.org_id', …, true) (SET LOCAL), and its SQL also says
// WHERE org_id = $1. A read runs in a read-only transaction of its own, or,
// inside a unit of work, in the unit's transaction, so that a projection
// updating a record sees the unit's earlier writes. Every write to a read
// model runs inside a unit of work opened by [Checkpoints.Advance], which records the
// projection's position in the same transaction, and sets the event's
// organization before each statement, since one unit may apply the events
// of several organizations. The read models record the identity of the
// log they were built from ([Store.Claim]), so that a server of another log,
// or of a log behind them, refuses them rather than serve them; [Reset]
// empties them for a rebuild.
//
// It must never read or write without a scope, offer a query over all
// organizations, connect the application as a role that owns the tables or
// bypasses row-level security, or hold state that replaying the log cannot
// rebuild: the tables are disposable read models. The exceptions are the
// embedding store, written by the ingestion process in transactions of its
// own: losing it costs embedding calls and leaves chunks keyword-only until
// they are re-embedded, never a wrong answer; the organizations'
// wrapped data keys of a replicated deployment ([DataKeys], the storage of
// sealing/keyring), platform bookkeeping that a reset keeps: losing them
// crypto-shreds every organization; and the claims on Idempotency-Keys,
// which only last while a request runs (or a lease): losing them lets a
// duplicate that arrives at that moment run, as with one replica after a
// restart; and the audit chain's record, the witness the log is checked
// against, which a reset keeps and which must never be rebuilt from the
// log (its events and checkpoints are tenant tables the application role
// may only read and add to).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Errors of the package. Callers match them with errors.Is.
var (
	// ErrNoUnit: a write was attempted outside a unit of work of the same
	// store (Checkpoints.Advance).
	ErrNoUnit = errors.New("postgres read models: write outside a unit of work (Checkpoints.Advance)")
	// ErrPrivilegedRole: Open was given a role that row-level security
	// would not hold: a superuser, a role with BYPASSRLS, or one that owns
	// (or may act as the owner of) the tables.
	ErrPrivilegedRole = errors.New("postgres read models: the application role must not be able to bypass row-level security")
	// ErrInvalidSchema: the schema name is not a plain lower-case identifier.
	ErrInvalidSchema = errors.New("postgres read models: invalid schema name")
	// ErrDimensions: an embedding (of a chunk, a query or the cache) has
	// dimensions its column cannot hold; see [ChunkDimensions].
	ErrDimensions = errors.New("postgres read models: embedding dimensions")
)

// setOrgSQL sets the transaction's organization, which every policy reads.
// The third argument (is_local) makes it SET LOCAL: it ends with the
// transaction, so a pooled connection never carries it into the next one.
const setOrgSQL = `SELECT set_config('palisade.org_id', $1, true)`

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func schemaOf(schema string) (string, error) {
	if schema == "" {
		return "public", nil
	}
	if !schemaName.MatchString(schema) || len(schema) >= 3 && schema[:3] == "pg_" {
		return "", fmt.Errorf("%w: %q", ErrInvalidSchema, schema)
	}
	return schema, nil
}

// searchPath puts the schema first and public after it, where the vector
// extension's types live.
func searchPath(schema string) string {
	if schema == "public" {
		return "public"
	}
	return pgx.Identifier{schema}.Sanitize() + ", public"
}

func orgOf(scope access.Scope) (string, error) {
	if !scope.Valid() {
		return "", access.ErrNoScope
	}
	return scope.OrgID(), nil
}

// limitOf bounds a requested page size by the one page rule of projections.
func limitOf(n int) int { return projections.PageLimit(n) }

// Store is one connection pool to one schema, with the read-model adapters
// that share it.
type Store struct {
	db            *db
	tenancy       *Tenancy
	bots          *Bots
	audit         *Audit
	knowledge     *Knowledge
	chunks        *Chunks
	conversations *Conversations
	dataSources   *DataSources
	analytics     *Analytics
	jobs          *Jobs
	embeddings    *Embeddings
	claims        *IdempotencyClaims
	checkpoints   *Checkpoints
}

// Open connects to the schema (empty: public) of the database at appURL as
// the application role. The schema must have been migrated by [Migrate].
// Open fails with [ErrPrivilegedRole] if the role is a superuser, has
// BYPASSRLS, or is (a member of) the owner of a table of the schema.
func Open(ctx context.Context, appURL, schema string) (*Store, error) {
	return open(ctx, appURL, schema, true)
}

// open is Open; vector false leaves pgvector's types unregistered, for
// tests run against a database that has no vector extension yet.
func open(ctx context.Context, appURL, schema string, vector bool) (*Store, error) {
	schema, err := schemaOf(schema)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(appURL)
	if err != nil {
		return nil, fmt.Errorf("postgres read models: parse URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = searchPath(schema)
	if vector {
		cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			if err := pgxvec.RegisterTypes(ctx, conn); err != nil {
				return fmt.Errorf("register pgvector types (is the vector extension created in the database?): %w", err)
			}
			return nil
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres read models: connect: %w", err)
	}
	if err := checkRole(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, err
	}
	store := newStore(pool)
	// Whether a superuser marked tsvector @@ tsquery leakproof in this
	// database (migration 00017): the keyword ranking's index serves under
	// row-level security only then.
	err = pool.QueryRow(ctx, `SELECT proleakproof FROM pg_proc
		WHERE oid = 'pg_catalog.ts_match_vq(tsvector, tsquery)'::regprocedure`).Scan(&store.chunks.keywordIndex)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres read models: is ts_match_vq leakproof: %w", err)
	}
	return store, nil
}

// checkRole refuses a role that row-level security would not hold.
func checkRole(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	var (
		role                   string
		super, bypass, ownsAny bool
	)
	err := pool.QueryRow(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls,
		       EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		               WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		                 AND pg_has_role(r.oid, c.relowner, 'MEMBER'))
		FROM pg_roles r WHERE r.rolname = current_user`, schema).Scan(&role, &super, &bypass, &ownsAny)
	if err != nil {
		return fmt.Errorf("postgres read models: check role: %w", err)
	}
	switch {
	case super:
		return fmt.Errorf("%w: %s is a superuser", ErrPrivilegedRole, role)
	case bypass:
		return fmt.Errorf("%w: %s has BYPASSRLS", ErrPrivilegedRole, role)
	case ownsAny:
		return fmt.Errorf("%w: %s owns tables of schema %s", ErrPrivilegedRole, role, schema)
	}
	return nil
}

func newStore(pool *pgxpool.Pool) *Store {
	d := &db{pool: pool}
	return &Store{
		db:            d,
		tenancy:       &Tenancy{db: d},
		bots:          &Bots{db: d},
		audit:         &Audit{db: d},
		knowledge:     &Knowledge{db: d},
		chunks:        &Chunks{db: d, tuning: defaultTuning},
		conversations: &Conversations{db: d},
		dataSources:   &DataSources{db: d},
		analytics:     &Analytics{db: d},
		jobs:          &Jobs{db: d},
		embeddings:    &Embeddings{db: d},
		claims:        &IdempotencyClaims{db: d},
		checkpoints:   &Checkpoints{db: d},
	}
}

// Tenancy returns the adapter of projections.TenancyModel.
func (s *Store) Tenancy() *Tenancy { return s.tenancy }

// ReadModels returns every read model, as the projections and queries use
// them.
func (s *Store) ReadModels() projections.ReadModels {
	return projections.ReadModels{
		Tenancy: s.tenancy, Bots: s.bots, Audit: s.audit, Knowledge: s.knowledge, Chunks: s.chunks,
		Conversations: s.conversations, DataSources: s.dataSources, Analytics: s.analytics, Jobs: s.jobs,
	}
}

// Bots returns the adapter of projections.BotModel.
func (s *Store) Bots() *Bots { return s.bots }

// Audit returns the adapter of projections.AuditModel.
func (s *Store) Audit() *Audit { return s.audit }

// Knowledge returns the adapter of projections.KnowledgeModel.
func (s *Store) Knowledge() *Knowledge { return s.knowledge }

// Chunks returns the adapter of projections.ChunkModel.
func (s *Store) Chunks() *Chunks { return s.chunks }

// Conversations returns the adapter of projections.ConversationModel.
func (s *Store) Conversations() *Conversations { return s.conversations }

// DataSources returns the adapter of projections.DataSourceModel.
func (s *Store) DataSources() *DataSources { return s.dataSources }

// Analytics returns the adapter of projections.AnalyticsModel.
func (s *Store) Analytics() *Analytics { return s.analytics }

// Embeddings returns the adapter of the embedding store.
func (s *Store) Embeddings() *Embeddings { return s.embeddings }

// IdempotencyClaims returns the shared claims on Idempotency-Keys in
// flight, which the HTTP servers of every replica consult.
func (s *Store) IdempotencyClaims() *IdempotencyClaims { return s.claims }

// Checkpoints returns the adapter of consumer.Checkpoints, whose Advance
// opens the units of work the other adapters write in.
func (s *Store) Checkpoints() *Checkpoints { return s.checkpoints }

// Close closes the pool.
func (s *Store) Close() { s.db.pool.Close() }

// db is the pool the adapters of one Store share.
type db struct{ pool *pgxpool.Pool }

// unit is the transaction of one Checkpoints.Advance, carried to the
// writes through the context.
type unit struct {
	db *db
	tx pgx.Tx
	// pending holds the unit's writes not yet sent: they travel together,
	// in one round trip, when the unit next reads, grows large, or commits.
	pending *pgx.Batch
}

// maxPendingStatements bounds how many statements a unit holds back.
const maxPendingStatements = 2000

// flush sends the unit's pending writes.
func (u *unit) flush(ctx context.Context) error {
	if u.pending == nil || u.pending.Len() == 0 {
		return nil
	}
	b := u.pending
	u.pending = nil
	return u.tx.SendBatch(ctx, b).Close()
}

type unitKey struct{}

// query runs sql, whose $1 must be org, after setting the transaction's
// organization to org, and calls each for every row. Inside a unit of work
// of this store it runs in the unit's transaction, so that a projection that
// reads a record to update it sees the unit's own earlier writes; elsewhere
// it runs in a read-only transaction of its own. Either way the statements
// go in one round trip.
func (d *db) query(ctx context.Context, org, sql string, args []any, each func(pgx.Rows) error) error {
	return d.queryWith(ctx, setOrgSQL, []any{org}, sql, args, each)
}

// queryWith is query with set, a statement that sets the transaction's
// organization (as setOrgSQL does, from its first argument) and possibly
// other SET LOCAL settings the one statement sql needs.
func (d *db) queryWith(ctx context.Context, set string, setArgs []any, sql string, args []any, each func(pgx.Rows) error) error {
	b := &pgx.Batch{}
	var br pgx.BatchResults
	u, inUnit := ctx.Value(unitKey{}).(*unit)
	if inUnit && u.db == d {
		if err := u.flush(ctx); err != nil {
			return err
		}
		b.Queue(set, setArgs...)
		b.Queue(sql, args...)
		br = u.tx.SendBatch(ctx, b)
	} else {
		inUnit = false
		b.Queue(`BEGIN READ ONLY`)
		b.Queue(set, setArgs...)
		b.Queue(sql, args...)
		b.Queue(`COMMIT`)
		// A failure leaves the connection in an aborted transaction; the
		// pool destroys such a connection rather than reuse it.
		br = d.pool.SendBatch(ctx, b)
	}
	err := func() error {
		if !inUnit {
			if _, err := br.Exec(); err != nil { // BEGIN
				return err
			}
		}
		if _, err := br.Exec(); err != nil { // set_config
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := each(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !inUnit {
			_, err = br.Exec() // COMMIT
		}
		return err
	}()
	// Close reads what is left of the batch and may repeat err.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// exec queues sql, whose $1 must be org, in the unit of work carried by
// ctx, after setting the transaction's organization to org. The statements
// are sent with the unit's next read or at its commit, so an error may
// surface there; either way the whole unit rolls back.
func (d *db) exec(ctx context.Context, org, sql string, args ...any) error {
	u, ok := ctx.Value(unitKey{}).(*unit)
	if !ok || u.db != d {
		return ErrNoUnit
	}
	if u.pending == nil {
		u.pending = &pgx.Batch{}
	}
	u.pending.Queue(setOrgSQL, org)
	u.pending.Queue(sql, args...)
	if u.pending.Len() >= maxPendingStatements {
		return u.flush(ctx)
	}
	return nil
}
