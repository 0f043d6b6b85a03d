package readmodeltest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// runPurge checks PurgeOrg and RedactOrg: one organization's rows go, its
// audit events stay with their payload rewritten, and another
// organization's rows are untouched.
func runPurge(t *testing.T, newModels func(t *testing.T) Models) {
	t.Run("PurgeOrgDropsOneOrganization", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		for _, org := range []string{"org-a", "org-b"} {
			s := scope(t, org)
			must(t, m.write(ctx, func(ctx context.Context) error {
				if err := m.Tenancy.PutOrg(ctx, s, projections.Org{ID: org, Name: org, CreatedAt: at, UpdatedAt: at}); err != nil {
					return err
				}
				if err := m.Tenancy.PutMember(ctx, s, projections.Member{Sub: "alice", Roles: []string{"owner"}, AddedAt: at, UpdatedAt: at}); err != nil {
					return err
				}
				if err := m.Bots.PutBot(ctx, s, projections.Bot{ID: "bot-1", Name: "B", CreatedAt: at, UpdatedAt: at}); err != nil {
					return err
				}
				return m.Audit.Add(ctx, s, eventstore.Envelope{
					ID: eventstore.NewEventID(), Type: "BotCreated", Stream: eventstore.MustStreamName("bot", org, "bot-1"),
					Position: map[string]uint64{"org-a": 1, "org-b": 2}[org], Data: []byte(`{"instructions":"canary"}`),
					Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, SchemaVersion: 1, OccurredAt: at},
				})
			}))
		}
		a := scope(t, "org-a")
		must(t, m.write(ctx, func(ctx context.Context) error {
			if err := m.Tenancy.PurgeOrg(ctx, a); err != nil {
				return err
			}
			if err := m.Bots.PurgeOrg(ctx, a); err != nil {
				return err
			}
			return m.Audit.RedactOrg(ctx, a, func(string, json.RawMessage) (json.RawMessage, error) {
				return json.RawMessage(`{"instructions":"redacted"}`), nil
			})
		}))
		if members, err := m.Tenancy.Members(ctx, a, projections.Page{}); err != nil || len(members) != 0 {
			t.Fatalf("members of the purged organization: %v, %v", members, err)
		}
		if _, err := m.Tenancy.Org(ctx, a); err != nil {
			t.Fatalf("the purged organization's own record: %v", err)
		}
		if bots, err := m.Bots.Bots(ctx, a, projections.Page{}); err != nil || len(bots) != 0 {
			t.Fatalf("bots of the purged organization: %v, %v", bots, err)
		}
		evs, err := m.Audit.Events(ctx, a, projections.AuditQuery{})
		if err != nil || len(evs) != 1 || string(evs[0].Event.Data) != `{"instructions":"redacted"}` || evs[0].Event.Type != "BotCreated" {
			t.Fatalf("audit of the purged organization: %+v, %v", evs, err)
		}
		b := scope(t, "org-b")
		if members, err := m.Tenancy.Members(ctx, b, projections.Page{}); err != nil || len(members) != 1 {
			t.Fatalf("members of the other organization: %v, %v", members, err)
		}
		if bots, err := m.Bots.Bots(ctx, b, projections.Page{}); err != nil || len(bots) != 1 {
			t.Fatalf("bots of the other organization: %v, %v", bots, err)
		}
		evs, err = m.Audit.Events(ctx, b, projections.AuditQuery{})
		if err != nil || len(evs) != 1 || string(evs[0].Event.Data) != `{"instructions":"canary"}` {
			t.Fatalf("audit of the other organization: %+v, %v", evs, err)
		}
	})
}
