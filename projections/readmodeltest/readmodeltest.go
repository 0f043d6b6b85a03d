// Package readmodeltest is the contract suite every adapter of the
// read-model ports passes (memory and PostgreSQL), so that adapters
// cannot drift: same records back, same pagination, same refusal of a
// missing scope, and no record ever visible from another organization.
//
// It must only use the ports' exported methods.
package readmodeltest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// Models is one fresh, empty set of read models.
type Models struct {
	Tenancy projections.TenancyModel
	Bots    projections.BotModel
	Audit   projections.AuditModel
	// Knowledge and Chunks are the knowledge read models; the suite skips
	// their cases when they are nil.
	Knowledge projections.KnowledgeModel
	Chunks    projections.ChunkModel
	// Conversations is the conversation read model; the suite skips its
	// cases when it is nil.
	Conversations projections.ConversationModel
	// DataSources is the data source read model; the suite skips its
	// cases when it is nil.
	DataSources projections.DataSourceModel
	// Analytics is the analytics read model; the suite skips its cases
	// when it is nil.
	Analytics projections.AnalyticsModel
	// Jobs is the jobs read model; the suite skips its cases when it is
	// nil.
	Jobs projections.JobModel
	// Unit runs fn as one unit of work, as consumer.Checkpoints.Advance
	// does for a projection; the suite makes every write inside one.
	// Adapters whose writes need no unit (memory) leave it nil.
	Unit func(ctx context.Context, fn func(ctx context.Context) error) error
}

// write runs fn in a unit of work of its own.
func (m Models) write(ctx context.Context, fn func(ctx context.Context) error) error {
	if m.Unit == nil {
		return fn(ctx)
	}
	return m.Unit(ctx, fn)
}

func scope(t *testing.T, org string) access.Scope {
	t.Helper()
	s, err := access.EventScope(org)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var at = time.Date(2026, 11, 27, 12, 0, 0, 123456000, time.UTC)

// Run runs the contract suite; newModels returns empty models each call.
func Run(t *testing.T, newModels func(t *testing.T) Models) {
	runKnowledge(t, newModels)
	runIssuers(t, newModels)
	runConversations(t, newModels)
	runDataSources(t, newModels)
	runAnalytics(t, newModels)
	runJobs(t, newModels)
	runAuditSequences(t, newModels)
	runPurge(t, newModels)
	runAuditNarratives(t, newModels)
	t.Run("ZeroScopeIsRefused", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		var zero access.Scope
		checks := map[string]error{
			"Org":             first(m.Tenancy.Org(ctx, zero)),
			"Member":          first(m.Tenancy.Member(ctx, zero, "", "a")),
			"Members":         first(m.Tenancy.Members(ctx, zero, projections.Page{})),
			"ServiceAccount":  first(m.Tenancy.ServiceAccount(ctx, zero, "a")),
			"ServiceAccounts": first(m.Tenancy.ServiceAccounts(ctx, zero, projections.Page{})),
			"PutOrg": m.write(ctx, func(ctx context.Context) error {
				return m.Tenancy.PutOrg(ctx, zero, projections.Org{ID: "x"})
			}),
			"PutMember": m.write(ctx, func(ctx context.Context) error {
				return m.Tenancy.PutMember(ctx, zero, projections.Member{Sub: "x"})
			}),
			"Bot":  first(m.Bots.Bot(ctx, zero, "a")),
			"Bots": first(m.Bots.Bots(ctx, zero, projections.Page{})),
			"PutBot": m.write(ctx, func(ctx context.Context) error {
				return m.Bots.PutBot(ctx, zero, projections.Bot{ID: "x"})
			}),
			"Events": first(m.Audit.Events(ctx, zero, projections.AuditQuery{})),
		}
		for name, err := range checks {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}
	})

	t.Run("TenancyRoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		org := projections.Org{ID: "org-a", Name: "Alpha", CreatedAt: at, UpdatedAt: at}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return m.Tenancy.PutOrg(ctx, a, org)
		}))
		if err := m.write(ctx, func(ctx context.Context) error {
			return m.Tenancy.PutOrg(ctx, b, projections.Org{ID: "org-a", Name: "hijack"})
		}); err == nil {
			t.Fatal("PutOrg wrote an org into another org's scope")
		}
		got, err := m.Tenancy.Org(ctx, a)
		if err != nil || !reflect.DeepEqual(got, org) {
			t.Fatalf("Org = %+v, %v; want %+v", got, err, org)
		}
		if _, err := m.Tenancy.Org(ctx, b); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("org-b sees %v, want ErrNotFound", err)
		}
		alice := projections.Member{Sub: "alice", Roles: []string{"owner"}, AddedAt: at, UpdatedAt: at}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return m.Tenancy.PutMember(ctx, a, alice)
		}))
		if _, err := m.Tenancy.Member(ctx, b, "", "alice"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("org-b sees org-a's member: %v", err)
		}
		gotMember, err := m.Tenancy.Member(ctx, a, "", "alice")
		if err != nil || !reflect.DeepEqual(gotMember, alice) {
			t.Fatalf("Member = %+v, %v", gotMember, err)
		}
		// Returned records are copies: changing them changes nothing stored.
		gotMember.Roles[0] = "viewer"
		if again, _ := m.Tenancy.Member(ctx, a, "", "alice"); again.Roles[0] != "owner" {
			t.Fatal("a returned member aliases the stored one")
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return m.Tenancy.DeleteMember(ctx, a, "", "alice")
		}))
		if _, err := m.Tenancy.Member(ctx, a, "", "alice"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("deleted member: %v", err)
		}
		revoked := at.Add(time.Hour)
		sa := projections.ServiceAccount{ID: "sa-1", Name: "ci", Permissions: []string{"bots:read"}, CreatedBy: "alice",
			CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour), Revoked: true, RevokedAt: &revoked, TokenID: "tok-1"}
		must(t, m.write(ctx, func(ctx context.Context) error {
			return m.Tenancy.PutServiceAccount(ctx, a, sa)
		}))
		gotSA, err := m.Tenancy.ServiceAccount(ctx, a, "sa-1")
		if err != nil || !reflect.DeepEqual(gotSA, sa) {
			t.Fatalf("ServiceAccount = %+v, %v; want %+v", gotSA, err, sa)
		}
		if list, _ := m.Tenancy.ServiceAccounts(ctx, b, projections.Page{}); len(list) != 0 {
			t.Fatalf("org-b lists %d service accounts of org-a", len(list))
		}
	})

	t.Run("Pagination", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		for i := 0; i < 25; i++ {
			must(t, m.write(ctx, func(ctx context.Context) error {
				return m.Tenancy.PutMember(ctx, a, projections.Member{Sub: fmt.Sprintf("user-%02d", i), Roles: []string{"viewer"}, AddedAt: at, UpdatedAt: at})
			}))
			must(t, m.write(ctx, func(ctx context.Context) error {
				return m.Bots.PutBot(ctx, a, projections.Bot{ID: fmt.Sprintf("bot-%02d", i), Name: "b", Grants: emptyGrants(), CreatedAt: at, UpdatedAt: at})
			}))
			must(t, m.write(ctx, func(ctx context.Context) error {
				return m.Bots.PutBot(ctx, b, projections.Bot{ID: fmt.Sprintf("bot-%02d-b", i), Name: "b", Grants: emptyGrants(), CreatedAt: at, UpdatedAt: at})
			}))
		}
		var seen []string
		after := ""
		for {
			page, err := m.Bots.Bots(ctx, a, projections.Page{After: after, Limit: 10})
			must(t, err)
			for _, bot := range page {
				seen = append(seen, bot.ID)
			}
			if len(page) < 10 {
				break
			}
			after = page[len(page)-1].ID
		}
		if len(seen) != 25 || seen[0] != "bot-00" || seen[24] != "bot-24" {
			t.Fatalf("paged bots = %v", seen)
		}
		members, err := m.Tenancy.Members(ctx, a, projections.Page{After: "user-19", Limit: 100})
		must(t, err)
		if len(members) != 5 || members[0].Sub != "user-20" {
			t.Fatalf("members after user-19 = %v", members)
		}
		// An update keeps the record's place.
		must(t, m.write(ctx, func(ctx context.Context) error {
			return m.Bots.PutBot(ctx, a, projections.Bot{ID: "bot-03", Name: "renamed", Grants: emptyGrants(), CreatedAt: at, UpdatedAt: at, Version: 1})
		}))
		got, err := m.Bots.Bot(ctx, a, "bot-03")
		if err != nil || got.Name != "renamed" || got.Version != 1 {
			t.Fatalf("updated bot = %+v, %v", got, err)
		}
		if _, err := m.Bots.Bot(ctx, b, "bot-03"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("org-b reads org-a's bot: %v", err)
		}
	})

	t.Run("RecordsRoundTripExactly", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		// Nil and empty lists stay apart, times (UTC, in microseconds, as
		// the log records them) come back equal, and an event's payload
		// keeps its exact bytes.
		members := []projections.Member{
			{Sub: "nil-roles", AddedAt: at, UpdatedAt: at.Add(time.Microsecond)},
			{Sub: "no-roles", Roles: []string{}, AddedAt: at, UpdatedAt: at},
			{Sub: "two-roles", Roles: []string{"viewer", "admin"}, AddedAt: at, UpdatedAt: at},
		}
		accounts := []projections.ServiceAccount{
			{ID: "sa-nil", Name: "n", CreatedBy: "alice", CreatedAt: at, ExpiresAt: at.Add(time.Hour), TokenID: "t-1"},
			{ID: "sa-empty", Name: "e", Permissions: []string{}, CreatedAt: at, TokenID: "t-2"},
		}
		bots := []projections.Bot{
			{ID: "bot-nil-grants", Name: "n", CreatedAt: at, UpdatedAt: at},
			{ID: "bot-full", Name: "f", Instructions: "be brief", Archived: true, CreatedBy: "alice", CreatedAt: at, UpdatedAt: at,
				Version: 7, Grants: bots.Grants{KnowledgeBases: []string{"kb-1"}, DataSources: []string{}, Tools: []string{"search", "sql"}, Permissions: []string{"kb:read"}}},
		}
		stream := eventstore.MustStreamName("bot", "org-a", "bot-full")
		envs := []eventstore.Envelope{
			{ID: eventstore.NewEventID(), Type: "BotCreated", Stream: stream, StreamVersion: 0, Position: 3,
				Data: []byte(`{"z": 1,  "a":[ 2 ]}`),
				Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: "alice", Kind: "user", Roles: []string{"owner"}, Scope: []string{"bots:manage", "kb:read"}, OnBehalfOf: []string{}},
					CorrelationID: "c", CausationID: "d", TraceID: "t", Authorization: "role owner", IdempotencyKey: "k", SchemaVersion: 2, OccurredAt: at}},
			{ID: eventstore.NewEventID(), Type: "BotArchived", Stream: stream, StreamVersion: 1, Position: 5,
				Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: "svc", Kind: "service"}, OccurredAt: at.Add(time.Second)}},
			// A scope that allowed nothing is not the absence of a scope.
			{ID: eventstore.NewEventID(), Type: "BotUpdated", Stream: stream, StreamVersion: 2, Position: 6,
				Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: "svc", Kind: "process", Scope: []string{}, CreatedBy: "alice", OnBehalfOf: []string{"bob", "svc-2"}}, OccurredAt: at.Add(2 * time.Second)}},
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			for _, member := range members {
				if err := m.Tenancy.PutMember(ctx, a, member); err != nil {
					return err
				}
			}
			for _, sa := range accounts {
				if err := m.Tenancy.PutServiceAccount(ctx, a, sa); err != nil {
					return err
				}
			}
			for _, bot := range bots {
				if err := m.Bots.PutBot(ctx, a, bot); err != nil {
					return err
				}
			}
			for _, env := range envs {
				if err := m.Audit.Add(ctx, a, env); err != nil {
					return err
				}
			}
			return nil
		}))
		for _, want := range members {
			got, err := m.Tenancy.Member(ctx, a, "", want.Sub)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Member(%s) = %#v, %v; want %#v", want.Sub, got, err, want)
			}
		}
		for _, want := range accounts {
			got, err := m.Tenancy.ServiceAccount(ctx, a, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("ServiceAccount(%s) = %#v, %v; want %#v", want.ID, got, err, want)
			}
		}
		for _, want := range bots {
			got, err := m.Bots.Bot(ctx, a, want.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Bot(%s) = %#v, %v; want %#v", want.ID, got, err, want)
			}
		}
		want := make([]projections.AuditEvent, len(envs))
		for i, env := range envs {
			want[i] = projections.AuditEvent{Sequence: uint64(i + 1), Event: env}
		}
		got, err := m.Audit.Events(ctx, a, projections.AuditQuery{})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Events = %#v, %v\nwant %#v", got, err, want)
		}
		if list, err := m.Tenancy.Members(ctx, scope(t, "org-empty"), projections.Page{}); err != nil || list == nil || len(list) != 0 {
			t.Errorf("Members of an empty org = %#v, %v; want an empty list", list, err)
		}
		if list, err := m.Bots.Bots(ctx, scope(t, "org-empty"), projections.Page{}); err != nil || list == nil || len(list) != 0 {
			t.Errorf("Bots of an empty org = %#v, %v; want an empty list", list, err)
		}
		if list, err := m.Audit.Events(ctx, scope(t, "org-empty"), projections.AuditQuery{}); err != nil || list == nil || len(list) != 0 {
			t.Errorf("Events of an empty org = %#v, %v; want an empty list", list, err)
		}
	})

	t.Run("ReadsInsideAUnitSeeItsWrites", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		// Projections read a record to update it, often one written earlier
		// in the same unit of work (a rebuild applies a batch per unit).
		must(t, m.write(ctx, func(ctx context.Context) error {
			if err := m.Bots.PutBot(ctx, a, projections.Bot{ID: "bot-1", Name: "first", Grants: emptyGrants(), CreatedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
			if err := m.Tenancy.PutMember(ctx, b, projections.Member{Sub: "bob", Roles: []string{"viewer"}, AddedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
			bot, err := m.Bots.Bot(ctx, a, "bot-1")
			if err != nil {
				return fmt.Errorf("read back in the unit: %w", err)
			}
			bot.Name, bot.Version = "second", 1
			if err := m.Bots.PutBot(ctx, a, bot); err != nil {
				return err
			}
			if _, err := m.Bots.Bot(ctx, b, "bot-1"); !errors.Is(err, domain.ErrNotFound) {
				return fmt.Errorf("org-b reads org-a's bot inside a unit: %v", err)
			}
			if _, err := m.Tenancy.Member(ctx, a, "", "bob"); !errors.Is(err, domain.ErrNotFound) {
				return fmt.Errorf("org-a reads org-b's member inside a unit: %v", err)
			}
			list, err := m.Tenancy.Members(ctx, b, projections.Page{})
			if err != nil || len(list) != 1 {
				return fmt.Errorf("members of org-b inside the unit = %v, %v", list, err)
			}
			return nil
		}))
		got, err := m.Bots.Bot(ctx, a, "bot-1")
		if err != nil || got.Name != "second" || got.Version != 1 {
			t.Fatalf("after the unit: %+v, %v", got, err)
		}
	})

	t.Run("AuditFiltersAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		stream := eventstore.MustStreamName("bot", "org-a", "bot-1")
		for i := 1; i <= 10; i++ {
			env := eventstore.Envelope{
				ID: eventstore.NewEventID(), Type: "BotCreated", Stream: stream, StreamVersion: uint64(i - 1), Position: uint64(i * 2),
				Data:     []byte(`{"id":"bot-1"}`),
				Metadata: eventstore.Metadata{OrgID: "org-a", Actor: eventstore.Actor{Subject: fmt.Sprintf("user-%d", i%2), Kind: "user"}, CorrelationID: fmt.Sprintf("c-%d", i), SchemaVersion: 1, OccurredAt: at},
			}
			if i%3 == 0 {
				env.Type = "BotUpdated"
			}
			must(t, m.write(ctx, func(ctx context.Context) error {
				return m.Audit.Add(ctx, a, env)
			}))
			// A redelivery changes nothing.
			must(t, m.write(ctx, func(ctx context.Context) error {
				return m.Audit.Add(ctx, a, env)
			}))
		}
		wrongOrg := eventstore.Envelope{ID: eventstore.NewEventID(), Type: "X", Stream: stream, Position: 99, Metadata: eventstore.Metadata{OrgID: "org-a"}}
		if err := m.write(ctx, func(ctx context.Context) error { return m.Audit.Add(ctx, b, wrongOrg) }); err == nil {
			t.Fatal("an org-a event was indexed under org-b")
		}
		tests := []struct {
			name string
			q    projections.AuditQuery
			want int
		}{
			{"all", projections.AuditQuery{}, 10},
			{"after", projections.AuditQuery{After: 5}, 5},
			{"limit", projections.AuditQuery{Limit: 3}, 3},
			{"type", projections.AuditQuery{Types: []string{"BotUpdated"}}, 3},
			{"actor", projections.AuditQuery{Actor: "user-1"}, 5},
			{"correlation", projections.AuditQuery{CorrelationID: "c-4"}, 1},
			{"stream", projections.AuditQuery{Stream: stream.String()}, 10},
			{"other stream", projections.AuditQuery{Stream: "bot-org-a_bot-2"}, 0},
		}
		for _, tt := range tests {
			got, err := m.Audit.Events(ctx, a, tt.q)
			must(t, err)
			if len(got) != tt.want {
				t.Errorf("%s: %d events, want %d", tt.name, len(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Sequence <= got[i-1].Sequence || got[i].Event.Position <= got[i-1].Event.Position {
					t.Errorf("%s: events out of order", tt.name)
				}
			}
		}
		if got, _ := m.Audit.Events(ctx, b, projections.AuditQuery{}); len(got) != 0 {
			t.Fatalf("org-b sees %d of org-a's events", len(got))
		}
	})
}

func emptyGrants() bots.Grants {
	return bots.Grants{KnowledgeBases: []string{}, DataSources: []string{}, Tools: []string{}, Permissions: []string{}}
}

func first[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
