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
