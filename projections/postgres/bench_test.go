package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// benchUnit is how many events a unit of work applies, as in a rebuild.
const benchUnit = 1000

// BenchmarkProjectionWrites measures projection throughput in events per
// second: BotCreated-like events of ten organizations applied in units of
// 1000 events, to the bot read model alone ("bots"), and to the bot,
// tenancy and audit read models, one unit each per batch, as a rebuild does
// ("all"). ns/op is per event.
func BenchmarkProjectionWrites(b *testing.B) {
	bb := setup(b)
	ctx := bb.ctx
	scopes := make([]access.Scope, 10)
	for i := range scopes {
		scopes[i] = scope(b, fmt.Sprintf("org-%02d", i))
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	grants := bots.Grants{KnowledgeBases: []string{"kb-1"}, DataSources: []string{}, Tools: []string{"search"}, Permissions: []string{"kb:read"}}
	// next numbers events across every run of the benchmark, so that each
	// event writes new rows, as a rebuild into empty read models does.
	var next uint64
	event := func(n uint64) (access.Scope, string) {
		return scopes[n%uint64(len(scopes))], fmt.Sprintf("bot-%010d", n)
	}
	putBots := func(from, to uint64) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			for n := from; n < to; n++ {
				s, id := event(n)
				err := bb.store.Bots().PutBot(ctx, s, projections.Bot{ID: id, Name: "support", Instructions: "be brief",
					Grants: grants, CreatedBy: "alice", CreatedAt: at, UpdatedAt: at})
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	putMembers := func(from, to uint64) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			for n := from; n < to; n++ {
				s, id := event(n)
				err := bb.store.Tenancy().PutMember(ctx, s, projections.Member{Sub: id, Roles: []string{"builder"}, AddedAt: at, UpdatedAt: at})
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	addAudit := func(from, to uint64) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			for n := from; n < to; n++ {
				s, id := event(n)
				err := bb.store.Audit().Add(ctx, s, eventstore.Envelope{
					ID: eventstore.NewEventID(), Type: "BotCreated", Stream: eventstore.MustStreamName("bot", s.OrgID(), id),
					Position: n + 1, Data: []byte(`{"id":"` + id + `","name":"support","instructions":"be brief"}`),
					Metadata: eventstore.Metadata{OrgID: s.OrgID(), Actor: eventstore.Actor{Subject: "alice", Kind: "user", Roles: []string{"owner"}},
						CorrelationID: id, SchemaVersion: 1, OccurredAt: at},
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	run := func(b *testing.B, projections map[string]func(from, to uint64) func(context.Context) error) {
		start := time.Now()
		for done := 0; done < b.N; done += benchUnit {
			from := next
			to := from + uint64(min(benchUnit, b.N-done))
			next = to
			for name, apply := range projections {
				if err := bb.store.Checkpoints().Advance(ctx, name, to, apply(from, to)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	}
	b.Run("bots", func(b *testing.B) {
		run(b, map[string]func(from, to uint64) func(context.Context) error{"bots": putBots})
	})
	b.Run("all", func(b *testing.B) {
		run(b, map[string]func(from, to uint64) func(context.Context) error{"bots": putBots, "tenancy": putMembers, "audit": addAudit})
	})
}

// BenchmarkQueryRLS measures what row-level security costs a read: the same
// adapter code (the same transaction, set_config and SQL with WHERE org_id)
// listing a page of 50 bots and getting one bot, once as the application
// role under the policy ("rls"), and once as the tables' owner in a copy of
// the schema whose bots table has row-level security not forced, so that
// the owner bypasses the policy ("no-rls"). Each schema holds 2,000 bots of
// two organizations.
func BenchmarkQueryRLS(b *testing.B) {
	withRLS := setup(b)
	ctx := withRLS.ctx
	db := withRLS.db
	noRLSSchema := migrateFresh(b, db)
	// The owner, in a schema of its own: Open refuses the owner, so the
	// store is built directly on an owner pool.
	owner := pool(b, db, db.ownerURL, noRLSSchema)
	noRLS := newStore(owner)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := scope(b, "org-a")
	for _, store := range []*Store{withRLS.store, noRLS} {
		for _, org := range []string{"org-a", "org-b"} {
			s := scope(b, org)
			err := store.Checkpoints().Advance(ctx, "bots", 1, func(ctx context.Context) error {
				for i := range 1000 {
					err := store.Bots().PutBot(ctx, s, projections.Bot{ID: fmt.Sprintf("bot-%04d", i), Name: "support",
						Grants: bots.Grants{Tools: []string{"search"}}, CreatedAt: at, UpdatedAt: at})
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := owner.Exec(ctx, `ALTER TABLE bots NO FORCE ROW LEVEL SECURITY; ANALYZE bots`); err != nil {
		b.Fatal(err)
	}
	if _, err := withRLS.owner.Exec(ctx, `ANALYZE bots`); err != nil {
		b.Fatal(err)
	}
	// The owner now sees every bot without setting an org; the application
	// role sees none.
	var n int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM bots`).Scan(&n); err != nil || n != 2000 {
		b.Fatalf("owner without the policy sees %d bots, %v", n, err)
	}
	if err := withRLS.store.db.pool.QueryRow(ctx, `SELECT count(*) FROM bots`).Scan(&n); err != nil || n != 0 {
		b.Fatalf("application role without an org sees %d bots, %v", n, err)
	}

	for _, c := range []struct {
		name  string
		store *Store
	}{{"rls", withRLS.store}, {"no-rls", noRLS}} {
		b.Run("list/"+c.name, func(b *testing.B) {
			for b.Loop() {
				page, err := c.store.Bots().Bots(ctx, a, projections.Page{After: "bot-0400", Limit: 50})
				if err != nil || len(page) != 50 {
					b.Fatalf("%d bots, %v", len(page), err)
				}
			}
		})
		b.Run("get/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.store.Bots().Bot(ctx, a, "bot-0500"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
