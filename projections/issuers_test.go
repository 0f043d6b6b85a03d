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

// TestPrincipalsByIssuer checks resolution of (issuer, subject): a member
// of an external issuer resolves only in an organization that binds it,
// never as the built-in member of the same sub, and never as a service
// account or the platform.
func TestPrincipalsByIssuer(t *testing.T) {
	t.Parallel()
	const idp = "https://idp.example"
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tenancy := memory.NewTenancy()
	for _, org := range []string{"org-a", "org-b"} {
		scope, _ := access.EventScope(org)
		must(t, tenancy.PutOrg(ctx, scope, projections.Org{ID: org, Name: org, CreatedAt: at, UpdatedAt: at}))
		must(t, tenancy.PutMember(ctx, scope, projections.Member{Sub: "dan", Roles: []string{"owner"}, AddedAt: at, UpdatedAt: at}))
		must(t, tenancy.PutMember(ctx, scope, projections.Member{Issuer: idp, Sub: "dan", Roles: []string{"viewer"}, AddedAt: at, UpdatedAt: at}))
		must(t, tenancy.PutServiceAccount(ctx, scope, projections.ServiceAccount{ID: "sa-1", Permissions: []string{"bots:read"},
			CreatedAt: at, ExpiresAt: time.Now().Add(time.Hour), TokenID: "t-1"}))
	}
	scopeA, _ := access.EventScope("org-a")
	must(t, tenancy.PutIssuer(ctx, scopeA, projections.IssuerBinding{Issuer: idp, BoundAt: at, BoundBy: "dan"}))
	r := projections.NewPrincipals(tenancy)

	tests := []struct {
		name        string
		c           projections.Credentials
		wantErr     error
		wantSubject string
		wantRole    access.Role
	}{
		{"built-in dan is the owner", projections.Credentials{Kind: "user", OrgID: "org-a", Subject: "dan"}, nil, "dan", access.RoleOwner},
		{"external dan is the viewer", projections.Credentials{Issuer: idp, Kind: "user", OrgID: "org-a", Subject: "dan"}, nil, idp + "|dan", access.RoleViewer},
		{"external dan where the issuer is not bound", projections.Credentials{Issuer: idp, Kind: "user", OrgID: "org-b", Subject: "dan"}, projections.ErrIssuerNotBound, "", 0},
		{"another external issuer", projections.Credentials{Issuer: "https://other.example", Kind: "user", OrgID: "org-a", Subject: "dan"}, projections.ErrIssuerNotBound, "", 0},
		{"external non-member", projections.Credentials{Issuer: idp, Kind: "user", OrgID: "org-a", Subject: "erin"}, projections.ErrUnknownPrincipal, "", 0},
		{"external service account", projections.Credentials{Issuer: idp, Kind: "service", OrgID: "org-a", Subject: "sa-1", TokenID: "t-1"}, projections.ErrUnknownPrincipal, "", 0},
		{"external platform", projections.Credentials{Issuer: idp, Kind: "platform", Subject: "ops"}, projections.ErrUnknownPrincipal, "", 0},
		{"built-in sub in the external form", projections.Credentials{Kind: "user", OrgID: "org-a", Subject: idp + "|dan"}, projections.ErrUnknownPrincipal, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := r.Resolve(ctx, tt.c)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, projections.ErrUnknownPrincipal) {
					t.Fatalf("Resolve = %+v, %v; want %v", p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Subject != tt.wantSubject || len(p.Roles) != 1 || p.Roles[0] != tt.wantRole {
				t.Fatalf("Resolve = %+v, %v; want %s as %s", p, err, tt.wantSubject, tt.wantRole)
			}
		})
	}

	// Processes re-resolve the actor recorded on an event the same way.
	p, err := r.Current(ctx, "org-a", eventstore.Actor{Subject: idp + "|dan", Kind: "user"})
	if err != nil || p.Subject != idp+"|dan" || p.Roles[0] != access.RoleViewer {
		t.Fatalf("Current(external dan) = %+v, %v", p, err)
	}
	if _, err := r.Current(ctx, "org-b", eventstore.Actor{Subject: idp + "|dan", Kind: "user"}); !errors.Is(err, projections.ErrIssuerNotBound) {
		t.Fatalf("Current(external dan) where unbound: %v", err)
	}
	must(t, tenancy.DeleteIssuer(ctx, scopeA, idp))
	if _, err := r.Current(ctx, "org-a", eventstore.Actor{Subject: idp + "|dan", Kind: "user"}); !errors.Is(err, projections.ErrIssuerNotBound) {
		t.Fatalf("Current(external dan) after unbinding: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
