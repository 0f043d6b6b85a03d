package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

// TestCurrentKeepsTheRecordedScope: a process rebuilds the principal
// recorded on its trigger with the token scope recorded there, so it never
// holds more than the request that triggered it; an empty scope stays
// empty, and a scope it cannot read refuses.
func TestCurrentKeepsTheRecordedScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const org = "0198c0de-0000-7000-8000-00000000000a"
	scope, _ := access.EventScope(org)
	tenancy := memory.NewTenancy()
	now := time.Now()
	if err := tenancy.PutOrg(ctx, scope, projections.Org{ID: org, Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.PutMember(ctx, scope, projections.Member{Sub: "alice", Roles: []string{"owner"}, AddedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.PutServiceAccount(ctx, scope, projections.ServiceAccount{
		ID: "sa-1", Name: "ci", Permissions: []string{"kb:read", "kb:write"}, CreatedBy: "alice",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), TokenID: "t",
	}); err != nil {
		t.Fatal(err)
	}
	principals := projections.NewPrincipals(tenancy)
	tests := []struct {
		name      string
		actor     eventstore.Actor
		has, lack []access.Permission
		scoped    bool
		createdBy string
		err       error
	}{
		{"user without scope", eventstore.Actor{Subject: "alice", Kind: "user"},
			[]access.Permission{access.KBWrite, access.BotsManage}, nil, false, "", nil},
		{"user with scope", eventstore.Actor{Subject: "alice", Kind: "user", Scope: []string{"kb:write"}},
			[]access.Permission{access.KBWrite}, []access.Permission{access.BotsManage, access.KBRead}, true, "", nil},
		{"user with a scope that allowed nothing", eventstore.Actor{Subject: "alice", Kind: "user", Scope: []string{}},
			nil, []access.Permission{access.KBWrite, access.KBRead}, true, "", nil},
		{"service account with scope", eventstore.Actor{Subject: "sa-1", Kind: "service", Scope: []string{"kb:read"}},
			[]access.Permission{access.KBRead}, []access.Permission{access.KBWrite}, true, "alice", nil},
		{"unreadable scope", eventstore.Actor{Subject: "alice", Kind: "user", Scope: []string{"kb:everything"}},
			nil, nil, false, "", projections.ErrUnknownPrincipal},
		{"removed member", eventstore.Actor{Subject: "bob", Kind: "user"},
			nil, nil, false, "", projections.ErrUnknownPrincipal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := principals.Current(ctx, org, tt.actor)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, perm := range tt.has {
				if !p.Permissions.Has(perm) {
					t.Errorf("lacks %s", perm)
				}
			}
			for _, perm := range tt.lack {
				if p.Permissions.Has(perm) {
					t.Errorf("holds %s", perm)
				}
			}
			if (p.TokenScope != nil) != tt.scoped || p.CreatedBy != tt.createdBy {
				t.Errorf("token scope %v, created by %q", p.TokenScope, p.CreatedBy)
			}
		})
	}
}

// TestCurrentResolvesBotActors: work a bot asked for (an analytics job its
// tool call submitted) is re-authorized as the bot chain is now: the invoker's
// current roles, narrowed by each bot's current permission grants; an
// archived bot, a removed invoker or a missing invoker kind hold nothing.
func TestCurrentResolvesBotActors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const org = "0198c0de-0000-7000-8000-00000000000b"
	scope, _ := access.EventScope(org)
	tenancy := memory.NewTenancy()
	bots := memory.NewBots()
	now := time.Now()
	if err := tenancy.PutOrg(ctx, scope, projections.Org{ID: org, Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for sub, role := range map[string]string{"alice": "analyst", "vic": "viewer"} {
		if err := tenancy.PutMember(ctx, scope, projections.Member{Sub: sub, Roles: []string{role}, AddedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(id string, archived bool, perms ...string) {
		t.Helper()
		b := projections.Bot{ID: id, Name: id, Archived: archived, CreatedAt: now, UpdatedAt: now}
		b.Grants.Permissions = perms
		if err := bots.PutBot(ctx, scope, b); err != nil {
			t.Fatal(err)
		}
	}
	put("analyst-bot", false, "datasources:query", "analytics:run", "kb:read")
	put("narrow-bot", false, "kb:read")
	put("old-bot", true, "datasources:query", "analytics:run")
	principals := projections.NewPrincipals(tenancy).WithBots(bots)

	tests := []struct {
		name      string
		actor     eventstore.Actor
		has, lack []access.Permission
		ok        bool
	}{
		{"bot for an analyst", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", OnBehalfOf: []string{"alice"}, InvokerKind: "user"},
			[]access.Permission{access.DatasourcesQuery, access.AnalyticsRun}, []access.Permission{access.BotsManage}, true},
		{"bot for a viewer holds only what both hold", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", OnBehalfOf: []string{"vic"}, InvokerKind: "user"},
			[]access.Permission{access.KBRead}, []access.Permission{access.DatasourcesQuery, access.AnalyticsRun}, true},
		{"chain narrows through every bot", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", OnBehalfOf: []string{"alice", "narrow-bot"}, InvokerKind: "user"},
			[]access.Permission{access.KBRead}, []access.Permission{access.DatasourcesQuery}, true},
		{"scope narrows the invoker", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", OnBehalfOf: []string{"alice"}, InvokerKind: "user", Scope: []string{"kb:read"}},
			[]access.Permission{access.KBRead}, []access.Permission{access.DatasourcesQuery}, true},
		{"archived bot", eventstore.Actor{Subject: "old-bot", Kind: "bot", OnBehalfOf: []string{"alice"}, InvokerKind: "user"}, nil, nil, false},
		{"unknown bot", eventstore.Actor{Subject: "ghost", Kind: "bot", OnBehalfOf: []string{"alice"}, InvokerKind: "user"}, nil, nil, false},
		{"removed invoker", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", OnBehalfOf: []string{"mallory"}, InvokerKind: "user"}, nil, nil, false},
		{"no invoker kind", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", OnBehalfOf: []string{"alice"}}, nil, nil, false},
		{"no invoker", eventstore.Actor{Subject: "analyst-bot", Kind: "bot", InvokerKind: "user"}, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := principals.Current(ctx, org, tt.actor)
			if !tt.ok {
				if !errors.Is(err, projections.ErrUnknownPrincipal) {
					t.Fatalf("err = %v, want ErrUnknownPrincipal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != access.KindBot || p.Subject != tt.actor.Subject || p.OnBehalfOf[0] != tt.actor.OnBehalfOf[0] || p.InvokerKind != access.KindUser {
				t.Fatalf("principal %+v does not carry the chain", p)
			}
			for _, perm := range tt.has {
				if !p.Permissions.Has(perm) {
					t.Errorf("lacks %s", perm)
				}
			}
			for _, perm := range tt.lack {
				if p.Permissions.Has(perm) {
					t.Errorf("holds %s", perm)
				}
			}
		})
	}
	if _, err := projections.NewPrincipals(tenancy).Current(ctx, org, tests[0].actor); !errors.Is(err, projections.ErrUnknownPrincipal) {
		t.Fatalf("without the bots read model a bot actor resolved: %v", err)
	}
}
