package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/readmodeltest"
)

// insertOther inserts, for each tenant table, a row of org-b with keys no
// seeded row has. A tenant table missing here fails the test: add it.
var insertOther = map[string]string{
	"orgs": `INSERT INTO orgs (org_id, name, closed, created_at, updated_at)
		VALUES ('org-b', 'hijack', false, now(), now())`,
	"members": `INSERT INTO members (org_id, sub, roles, added_at, updated_at)
		VALUES ('org-b', 'mallory', '{owner}', now(), now())`,
	"service_accounts": `INSERT INTO service_accounts (org_id, id, name, created_by, created_at, expires_at, revoked, token_id)
		VALUES ('org-b', 'sa-mallory', 'm', 'mallory', now(), now(), false, 'tok')`,
	"bots": `INSERT INTO bots (org_id, id, name, instructions, grants, archived, created_by, created_at, updated_at, version)
		VALUES ('org-b', 'bot-mallory', 'm', '', '{}', false, 'mallory', now(), now(), 0)`,
	"audit_events": `INSERT INTO audit_events (org_id, sequence, position, id, type, stream_category, stream_org_id, stream_entity_id,
			stream_version, actor_subject, actor_kind, correlation_id, causation_id, trace_id, authorization_reason,
			idempotency_key, schema_version, occurred_at)
		VALUES ('org-b', 999, 999, gen_random_uuid(), 'X', 'bot', 'org-b', 'x', 0, 'mallory', 'user', '', '', '', '', '', 1, now())`,
	"audit_narratives": `INSERT INTO audit_narratives (org_id, correlation_id, first_sequence, last_sequence, steps, started_at, ended_at)
		VALUES ('org-b', 'corr-mallory', 999, 999, 1, now(), now())`,
	"knowledge_chunks": `INSERT INTO knowledge_chunks (org_id, knowledge_base_id, document_id, chunk_id, ordinal, text, embedding)
		VALUES ('org-b', 'kb-1', 'doc-1', 'chunk-mallory', 0, 'm', array_fill(0.5::real, ARRAY[384])::vector)`,
	"knowledge_chunk_terms": `INSERT INTO knowledge_chunk_terms (org_id, chunk_id, knowledge_base_id, tsv, levels)
		VALUES ('org-b', 'chunk-mallory', 'kb-1', to_tsvector('simple', 'm'), keyword_levels(to_tsvector('simple', 'm')))`,
	"knowledge_bases": `INSERT INTO knowledge_bases (org_id, id, name, description, embedding_model, dimensions, grants, archived,
			created_by, created_at, updated_at)
		VALUES ('org-b', 'kb-mallory', 'm', '', 'm', 384, '[]', false, 'mallory', now(), now())`,
	"documents": `INSERT INTO documents (org_id, id, knowledge_base_id, title, content_type, content_hash, size_bytes, version,
			state, failure_reason, chunks, created_by, created_at, updated_at)
		VALUES ('org-b', 'doc-mallory', 'kb-1', 'm', 'text/plain', '', 0, 1, 'pending', '', 0, 'mallory', now(), now())`,
	"embedding_cache": `INSERT INTO embedding_cache (org_id, model, hash, embedding)
		VALUES ('org-b', 'm', 'hash-mallory', '[1,2,3]')`,
	"org_issuers": `INSERT INTO org_issuers (org_id, issuer, bound_at, bound_by)
		VALUES ('org-b', 'https://mallory.example', now(), 'mallory')`,
	"conversations": `INSERT INTO conversations (org_id, id, bot_id, title, started_by, started_by_kind, archived,
			created_at, updated_at, version, messages)
		VALUES ('org-b', 'conv-mallory', 'bot-1', '', 'mallory', 'user', false, now(), now(), 0, '[]')`,
	"data_sources": `INSERT INTO data_sources (org_id, id, name, kind, connection, allowed_tables, grants, state,
			created_by, created_at, updated_at, version, connection_version)
		VALUES ('org-b', 'ds-mallory', 'm', 'sqlite', '{}', '[]', '[]', 'untested', 'mallory', now(), now(), 0, 1)`,
	"analytics_jobs": `INSERT INTO analytics_jobs (org_id, id, created_by, created_by_kind, data_source_id, state, version, job)
		VALUES ('org-b', 'job-mallory', 'mallory', 'user', 'src-1', 'submitted', 0, '{}')`,
	"analytics_result_pages": `INSERT INTO analytics_result_pages (org_id, job_id, page, rows)
		VALUES ('org-b', 'job-mallory', 7, '[]')`,
	"idempotency_claims": `INSERT INTO idempotency_claims (org_id, key_hash, fingerprint, holder, expires_at)
		VALUES ('org-b', sha256('mallory'), sha256('mallory'), 'mallory', now() + interval '1 hour')`,
	"audit_chain_events": `INSERT INTO audit_chain_events (org_id, seq, event_id, type, stream, hash)
		VALUES ('org-b', 999, gen_random_uuid(), 'X', 'bot-org-b_x', sha256('mallory'))`,
	"audit_chain_checkpoints": `INSERT INTO audit_chain_checkpoints (org_id, seq, position, head, time_ns, kid, signature)
		VALUES ('org-b', 999, 999, sha256('mallory'), 0, 'k', 'sig')`,
	"jobs": `INSERT INTO jobs (org_id, id, kind, subject, trigger_id, state, attempts, result, items, reason,
			submitted_by, on_behalf_of, submitted_at, updated_at, version)
		VALUES ('org-b', 'job-mallory', 'knowledge.ingestion', 's', 't', 'submitted', 0, '', 0, '', 'mallory', '{}', now(), now(), 0)`,
}

// tenantTables lists the schema's tables that have an org_id column.
func tenantTables(t testing.TB, ctx context.Context, p *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := p.Query(ctx, `
		SELECT table_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND column_name = 'org_id' ORDER BY table_name`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// seedTwoOrgs writes a record of every kind for org-a and org-b, through
// the adapters.
func seedTwoOrgs(t *testing.T, b *bundle) {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, org := range []string{"org-a", "org-b"} {
		s := scope(t, org)
		b.unit(t, func(ctx context.Context) error {
			return errors.Join(
				b.store.Tenancy().PutOrg(ctx, s, projections.Org{ID: org, Name: org, CreatedAt: at, UpdatedAt: at}),
				b.store.Tenancy().PutMember(ctx, s, projections.Member{Sub: "alice", Roles: []string{"owner"}, AddedAt: at, UpdatedAt: at}),
				b.store.Tenancy().PutServiceAccount(ctx, s, projections.ServiceAccount{ID: "sa-1", Name: "ci", CreatedAt: at, ExpiresAt: at}),
				b.store.Tenancy().PutIssuer(ctx, s, projections.IssuerBinding{Issuer: "https://idp.example", BoundAt: at, BoundBy: "alice"}),
				b.store.Bots().PutBot(ctx, s, projections.Bot{ID: "bot-1", Name: "b", CreatedAt: at, UpdatedAt: at}),
				b.store.Audit().Add(ctx, s, eventstore.Envelope{
					ID: uuid.New(), Type: "BotCreated", Stream: eventstore.MustStreamName("bot", org, "bot-1"), Position: uint64(i + 1),
					Data: []byte(`{}`), Metadata: eventstore.Metadata{OrgID: org, CorrelationID: "corr-1", Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, OccurredAt: at},
				}),
			)
		})
		if b.db.vector {
			b.unit(t, func(ctx context.Context) error {
				return errors.Join(
					b.store.Knowledge().PutKnowledgeBase(ctx, s, projections.KnowledgeBase{ID: "kb-1", Name: "k", CreatedAt: at, UpdatedAt: at}),
					b.store.Knowledge().PutDocument(ctx, s, projections.Document{ID: "doc-1", KnowledgeBaseID: "kb-1", CreatedAt: at, UpdatedAt: at}),
					b.store.Chunks().ReplaceChunks(ctx, s, "doc-1", []projections.StoredChunk{{ID: "chunk-1", KnowledgeBaseID: "kb-1",
						DocumentID: "doc-1", Text: "hello", Embedding: readmodeltest.Embedding(0.5, 1)}}),
					b.store.Embeddings().Put(ctx, s, "m", map[string][]float32{"hash-1": {0.1, 0.2}}),
					b.store.Conversations().PutConversation(ctx, s, projections.Conversation{ID: "conv-1", BotID: "bot-1",
						StartedBy: "alice", StartedByKind: "user", CreatedAt: at, UpdatedAt: at}),
					b.store.DataSources().PutDataSource(ctx, s, projections.DataSource{ID: "ds-1", Name: "d", Kind: "sqlite",
						State: "untested", CreatedAt: at, UpdatedAt: at}),
					b.store.Analytics().PutAnalyticsJob(ctx, s, projections.AnalyticsJob{ID: "job-1", State: "succeeded",
						DataSourceID: "src-1", CreatedBy: "alice", CreatedByKind: "user"}),
					b.store.Analytics().PutAnalyticsPage(ctx, s, "job-1", 0, []byte(`[["a",1]]`)),
					b.store.ReadModels().Jobs.PutJob(ctx, s, projections.Job{ID: "job-1", Kind: "knowledge.ingestion",
						State: "submitted", SubmittedBy: "ingestion", SubmittedAt: at, UpdatedAt: at}),
				)
			})
			record := b.store.ChainRecord("log-1")
			fence, st, err := record.Claim(b.ctx)
			if err != nil {
				t.Fatal(err)
			}
			head := chain.Head{Seq: 1, Hash: sha256.Sum256([]byte(org))}
			if err := record.Commit(b.ctx, fence, chain.Batch{From: st.Position, Position: st.Position + 1,
				Entries:     []chain.Entry{{OrgID: org, Seq: 1, EventID: uuid.New(), Type: "BotCreated", Stream: "bot-" + org + "_bot-1", Hash: head.Hash}},
				Heads:       map[string]chain.Head{org: head},
				Checkpoints: []chain.StoredCheckpoint{{Position: st.Position + 1, Checkpoint: chain.Checkpoint{OrgID: org, Seq: 1, Head: head.Hash, Time: at, KeyID: "k", Signature: []byte("sig")}}},
			}); err != nil {
				t.Fatalf("chain record of %s: %v", org, err)
			}
			if claimed, _, err := b.store.IdempotencyClaims().Claim(b.ctx, org, sha256.Sum256([]byte("key-1")),
				sha256.Sum256([]byte("request-1")), "holder-1", time.Hour); err != nil || !claimed {
				t.Fatalf("claim in %s: %v, %v", org, claimed, err)
			}
		}
	}
}

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: %v, want insufficient_privilege (42501)", what, err)
		return
	}
	t.Logf("%s: refused: %s", what, pgErr.Message)
}

// inOrg runs fn in a transaction of the application role whose org is set
// to org ("" sets nothing), and rolls it back.
func inOrg(t *testing.T, ctx context.Context, app *pgxpool.Pool, org string, fn func(tx pgx.Tx) error) error {
	t.Helper()
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if org != "" {
		if _, err := tx.Exec(ctx, setOrgSQL, org); err != nil {
			t.Fatal(err)
		}
	}
	return fn(tx)
}

// TestRowLevelSecurity checks invariant 2 from inside the database, as the
// application role, with raw SQL that has no WHERE org_id: row-level
// security alone keeps the organizations apart, and the role cannot turn
// it off.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedTwoOrgs(t, b)
	app := pool(t, b.db, b.db.appURL, b.schema)
	ctx := b.ctx

	tables := tenantTables(t, ctx, b.owner, b.schema)
	want := []string{"audit_events", "audit_narratives", "bots", "members", "org_issuers", "orgs", "service_accounts"}
	if b.db.vector { // the migrations after the first
		want = append(want, "audit_chain_checkpoints", "audit_chain_events")
	}
	if b.db.vector {
		want = append(want, "analytics_jobs", "analytics_result_pages", "conversations", "data_sources", "documents", "embedding_cache", "idempotency_claims", "jobs", "knowledge_bases", "knowledge_chunk_terms", "knowledge_chunks")
	}
	slices.Sort(want)
	if !slices.Equal(tables, want) {
		t.Fatalf("tenant tables = %v, want %v", tables, want)
	}

	t.Run("Role", func(t *testing.T) {
		var super, bypass bool
		err := app.QueryRow(ctx, `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`).Scan(&super, &bypass)
		if err != nil || super || bypass {
			t.Fatalf("application role: superuser %v, bypassrls %v, %v", super, bypass, err)
		}
		var owned []string
		rows, err := app.Query(ctx, `SELECT tablename::text FROM pg_tables
			WHERE schemaname = $1 AND pg_has_role(current_user, tableowner, 'MEMBER')`, b.schema)
		if err == nil {
			owned, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil || len(owned) != 0 {
			t.Fatalf("the application role owns (or may act as the owner of) %v, %v", owned, err)
		}
		_, err = app.Exec(ctx, `SET ROLE `+pgx.Identifier{mustUser(t, b.db.ownerURL)}.Sanitize())
		wantDenied(t, "SET ROLE owner", err)
	})

	t.Run("OwnerToo", func(t *testing.T) {
		// Row-level security is forced: the owner, which runs migrations,
		// sees nothing without an org either.
		for _, table := range tables {
			var n int
			if err := b.owner.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil || n != 0 {
				t.Errorf("the owner sees %d rows of %s without an org, %v", n, table, err)
			}
		}
	})

	for _, table := range tables {
		ident := pgx.Identifier{table}.Sanitize()
		t.Run(table, func(t *testing.T) {
			insert, ok := insertOther[table]
			if !ok {
				t.Fatalf("no insert statement for tenant table %s in insertOther: add one", table)
			}
			count := func(tx pgx.Tx) (n int, err error) {
				err = tx.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n)
				return n, err
			}

			// Nothing set: nothing seen.
			err := inOrg(t, ctx, app, "", func(tx pgx.Tx) error {
				n, err := count(tx)
				if err == nil && n != 0 {
					t.Errorf("without an org: %d rows", n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			// Set in an earlier transaction of the same session: reverted
			// with it, so again nothing is seen.
			conn, err := app.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, `BEGIN; SELECT set_config('palisade.org_id', 'org-a', true); COMMIT`)
			var n int
			if err == nil {
				err = conn.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n)
			}
			if err != nil || n != 0 {
				t.Errorf("after a transaction that set the org: %d rows, %v", n, err)
			}
			// row_security = off does not let a role subject to a policy
			// past it: the query fails instead.
			_, err = conn.Exec(ctx, `SET row_security = off`)
			if err == nil {
				_, err = conn.Exec(ctx, `BEGIN; SELECT set_config('palisade.org_id', 'org-a', true)`)
				if err == nil {
					err = conn.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n)
					if err == nil {
						t.Errorf("with row_security off: %d rows and no error", n)
					}
					wantDenied(t, "select with row_security off", err)
				}
				_, _ = conn.Exec(ctx, `ROLLBACK`)
				_, _ = conn.Exec(ctx, `RESET row_security`)
			} else {
				t.Logf("SET row_security = off refused: %v", err)
			}
			conn.Release()

			// org-a set: only org-a's rows.
			err = inOrg(t, ctx, app, "org-a", func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, `SELECT org_id FROM `+ident)
				if err != nil {
					return err
				}
				orgs, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					return err
				}
				if len(orgs) == 0 || slices.ContainsFunc(orgs, func(o string) bool { return o != "org-a" }) {
					t.Errorf("with org-a set: orgs %v", orgs)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// org-a set: no row of org-b can be written, moved or removed.
			wantDenied(t, "insert an org-b row with org-a set", inOrg(t, ctx, app, "org-a", func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, insert)
				return err
			}))
			wantDenied(t, "move org-a's rows to org-b", inOrg(t, ctx, app, "org-a", func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE `+ident+` SET org_id = 'org-b'`)
				return err
			}))
			err = inOrg(t, ctx, app, "org-a", func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `DELETE FROM `+ident+` WHERE org_id = 'org-b'`)
				if err == nil && tag.RowsAffected() != 0 {
					t.Errorf("org-a deleted %d rows of org-b", tag.RowsAffected())
				}
				return err
			})
			if _, ok := appendOnly[table]; ok {
				wantDenied(t, "delete from an append-only table", err)
			} else if err != nil {
				t.Fatal(err)
			}

			// The role cannot turn row-level security off, change the
			// policies, or empty the table around them.
			for _, stmt := range []string{
				`ALTER TABLE ` + ident + ` DISABLE ROW LEVEL SECURITY`,
				`ALTER TABLE ` + ident + ` NO FORCE ROW LEVEL SECURITY`,
				`DROP POLICY org_isolation ON ` + ident,
				`CREATE POLICY open ON ` + ident + ` USING (true)`,
				`ALTER POLICY org_isolation ON ` + ident + ` USING (true)`,
				`ALTER TABLE ` + ident + ` OWNER TO current_user`,
				`TRUNCATE ` + ident,
			} {
				_, err := app.Exec(ctx, stmt)
				wantDenied(t, stmt, err)
			}

			// org-b still has exactly its own row.
			err = inOrg(t, ctx, app, "org-b", func(tx pgx.Tx) error {
				n, err := count(tx)
				if err == nil && n != 1 {
					t.Errorf("org-b has %d rows, want 1", n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mustUser(t testing.TB, rawURL string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.User
}

// TestEveryTenantTableIsUnderRowLevelSecurity reads the catalog: every
// table of the schema with an org_id column has row-level security enabled
// and forced and the org policy, and every other table is known platform
// bookkeeping, so that a new table cannot slip in unprotected.
func TestEveryTenantTableIsUnderRowLevelSecurity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	rows, err := b.owner.Query(ctx, `
		SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
		       EXISTS (SELECT 1 FROM information_schema.columns col
		               WHERE col.table_schema = n.nspname AND col.table_name = c.relname AND col.column_name = 'org_id'),
		       COALESCE((SELECT array_agg(p.policyname::text || ' ' || p.permissive || ' ' || p.cmd || ' ' || array_to_string(p.roles, ',')
		                   || ' USING ' || COALESCE(p.qual, '') || ' CHECK ' || COALESCE(p.with_check, ''))
		                 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname), '{}')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		ORDER BY c.relname`, b.schema)
	if err != nil {
		t.Fatal(err)
	}
	platform := []string{"goose_db_version", "projection_checkpoints", "read_model_origin", "worker_checkpoints",
		"data_keys", "data_key_subjects", "data_key_tombstones", "audit_chain", "audit_chain_heads"}
	tenant := 0
	for rows.Next() {
		var (
			table                string
			enabled, forced, org bool
			policies             []string
		)
		if err := rows.Scan(&table, &enabled, &forced, &org, &policies); err != nil {
			t.Fatal(err)
		}
		if !org {
			if !slices.Contains(platform, table) {
				t.Errorf("table %s has no org_id column and is not known platform bookkeeping", table)
			}
			continue
		}
		tenant++
		if !enabled || !forced {
			t.Errorf("tenant table %s: row level security enabled %v, forced %v", table, enabled, forced)
		}
		// The one other policy: the owner's count of every organization's
		// chunks while it maintains their indexes (migration 00020), for
		// SELECT, to the owner role alone, in a maintenance session.
		if table == "knowledge_chunks" {
			maintenance := "organization_index_maintenance PERMISSIVE SELECT " + mustUser(t, b.db.ownerURL) +
				" USING (current_setting('palisade.maintenance'::text, true) = 'organization-indexes'::text) CHECK "
			i := slices.Index(policies, maintenance)
			if i < 0 {
				t.Errorf("tenant table %s: policies %q, want org_isolation and %q", table, policies, maintenance)
				continue
			}
			policies = slices.Delete(policies, i, i+1)
		}
		if len(policies) != 1 {
			t.Errorf("tenant table %s: policies %q, want exactly one", table, policies)
			continue
		}
		p := policies[0]
		setting := "(org_id = current_setting('palisade.org_id'::text, true))"
		if !strings.HasPrefix(p, "org_isolation PERMISSIVE ALL public USING ") || strings.Count(p, setting) != 2 {
			t.Errorf("tenant table %s: policy %q, want org_isolation for ALL to public, USING and CHECK %s", table, p, setting)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if tenant < 5 {
		t.Fatalf("found %d tenant tables, want at least 5", tenant)
	}
}

// TestGrants checks that the application role holds what the adapters need
// and no more.
func TestGrants(t *testing.T) {
	t.Parallel()
	b := setup(t)
	role := b.db.appRole
	var create, usage bool
	err := b.owner.QueryRow(b.ctx, `SELECT has_schema_privilege($1, $2, 'CREATE'), has_schema_privilege($1, $2, 'USAGE')`,
		role, b.schema).Scan(&create, &usage)
	if err != nil || create || !usage {
		t.Fatalf("schema privileges of %s: CREATE %v, USAGE %v, %v", role, create, usage, err)
	}
	want := map[string]string{"projection_checkpoints": "SELECT,INSERT,UPDATE", "goose_db_version": "", "read_model_origin": "SELECT,INSERT", "worker_checkpoints": "SELECT,INSERT,UPDATE",
		"data_keys": "SELECT,INSERT,DELETE", "data_key_subjects": "SELECT,INSERT,DELETE", "data_key_tombstones": "SELECT,INSERT",
		"audit_chain": "SELECT,INSERT,UPDATE", "audit_chain_heads": "SELECT,INSERT,UPDATE"}
	for _, table := range tenantTables(t, b.ctx, b.owner, b.schema) {
		want[table] = "SELECT,INSERT,UPDATE,DELETE"
	}
	// The audit chain's record: read and added to, never rewritten.
	want["audit_chain_events"], want["audit_chain_checkpoints"] = "SELECT,INSERT", "SELECT,INSERT"
	for table, privileges := range want {
		var got []string
		for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"} {
			var has bool
			err := b.owner.QueryRow(b.ctx, `SELECT has_table_privilege($1, $2, $3)`,
				role, pgx.Identifier{b.schema, table}.Sanitize(), p).Scan(&has)
			if err != nil {
				t.Fatal(err)
			}
			if has {
				got = append(got, p)
			}
		}
		if strings.Join(got, ",") != privileges {
			t.Errorf("%s on %s: %v, want %s", role, table, got, privileges)
		}
	}
}
