package readmodeltest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// runIssuers checks issuer bindings and members identified by issuer and
// subject together.
func runIssuers(t *testing.T, newModels func(t *testing.T) Models) {
	const idp, other = "https://idp.example", "https://other.example"

	t.Run("IssuerBindingsRoundTripAndIsolation", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a, b := scope(t, "org-a"), scope(t, "org-b")
		var zero access.Scope
		for name, err := range map[string]error{
			"Issuer":  first(m.Tenancy.Issuer(ctx, zero, idp)),
			"Issuers": first(m.Tenancy.Issuers(ctx, zero)),
			"PutIssuer": m.write(ctx, func(ctx context.Context) error {
				return m.Tenancy.PutIssuer(ctx, zero, projections.IssuerBinding{Issuer: idp})
			}),
			"DeleteIssuer": m.write(ctx, func(ctx context.Context) error { return m.Tenancy.DeleteIssuer(ctx, zero, idp) }),
		} {
			if !errors.Is(err, access.ErrNoScope) {
				t.Errorf("%s with a zero scope: %v, want ErrNoScope", name, err)
			}
		}

		bound := []projections.IssuerBinding{
			{Issuer: other, BoundAt: at, BoundBy: "alice"},
			{Issuer: idp, BoundAt: at, BoundBy: "alice"},
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			for _, ib := range bound {
				if err := m.Tenancy.PutIssuer(ctx, a, ib); err != nil {
					return err
				}
			}
			return nil
		}))
		if got, err := m.Tenancy.Issuer(ctx, a, idp); err != nil || !reflect.DeepEqual(got, bound[1]) {
			t.Fatalf("Issuer = %#v, %v", got, err)
		}
		if _, err := m.Tenancy.Issuer(ctx, b, idp); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("another org's binding: %v, want ErrNotFound", err)
		}
		want := []projections.IssuerBinding{bound[1], bound[0]} // byte order
		if got, err := m.Tenancy.Issuers(ctx, a); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Issuers = %#v, %v", got, err)
		}
		if got, err := m.Tenancy.Issuers(ctx, b); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("Issuers of another org = %#v, %v; want an empty list", got, err)
		}
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Tenancy.DeleteIssuer(ctx, a, idp) }))
		if _, err := m.Tenancy.Issuer(ctx, a, idp); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("unbound issuer: %v, want ErrNotFound", err)
		}
	})

	t.Run("MembersAreIssuerAndSubject", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		a := scope(t, "org-a")
		members := []projections.Member{
			{Sub: "dan", Roles: []string{"owner"}, AddedAt: at, UpdatedAt: at},
			{Issuer: idp, Sub: "dan", Roles: []string{"viewer"}, AddedAt: at, UpdatedAt: at},
			{Issuer: other, Sub: "dan", Roles: []string{"admin"}, AddedAt: at, UpdatedAt: at},
			{Sub: "zoe", Roles: []string{"viewer"}, AddedAt: at, UpdatedAt: at},
		}
		must(t, m.write(ctx, func(ctx context.Context) error {
			for _, member := range members {
				if err := m.Tenancy.PutMember(ctx, a, member); err != nil {
					return err
				}
			}
			return nil
		}))
		for _, want := range members {
			got, err := m.Tenancy.Member(ctx, a, want.Issuer, want.Sub)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Member(%q, %q) = %#v, %v; want %#v", want.Issuer, want.Sub, got, err, want)
			}
		}
		// The external form of a subject is not a built-in member.
		if _, err := m.Tenancy.Member(ctx, a, "", idp+"|dan"); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("built-in lookup of %s|dan: %v, want ErrNotFound", idp, err)
		}
		// Listed by principal subject; the cursor is the Key.
		wantOrder := members
		first, err := m.Tenancy.Members(ctx, a, projections.Page{Limit: 2})
		if err != nil || !reflect.DeepEqual(first, wantOrder[:2]) {
			t.Fatalf("first page = %#v, %v", first, err)
		}
		rest, err := m.Tenancy.Members(ctx, a, projections.Page{After: first[1].Key(), Limit: 10})
		if err != nil || !reflect.DeepEqual(rest, wantOrder[2:]) {
			t.Fatalf("second page = %#v, %v", rest, err)
		}
		// Removing one dan leaves the others.
		must(t, m.write(ctx, func(ctx context.Context) error { return m.Tenancy.DeleteMember(ctx, a, idp, "dan") }))
		if _, err := m.Tenancy.Member(ctx, a, idp, "dan"); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("removed member: %v", err)
		}
		for _, still := range []projections.Member{members[0], members[2]} {
			if _, err := m.Tenancy.Member(ctx, a, still.Issuer, still.Sub); err != nil {
				t.Fatalf("Member(%q, %q) after removing another dan: %v", still.Issuer, still.Sub, err)
			}
		}
	})
}
