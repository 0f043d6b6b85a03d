package tenancy

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

const idp = "https://idp.example"

func TestIssuerBinding(t *testing.T) {
	t.Parallel()
	dan := MemberID{Issuer: idp, Sub: "dan"}
	owner := []access.Role{access.RoleOwner}
	tests := []struct {
		name    string
		history []domain.Event
		run     func(o *Organization) ([]domain.Event, error)
		want    error
		events  []domain.Event
	}{
		{"bind a URL", nil, func(o *Organization) ([]domain.Event, error) { return o.BindIssuer(idp) },
			nil, []domain.Event{&IssuerBound{Issuer: idp}}},
		{"bind again changes nothing", []domain.Event{&IssuerBound{Issuer: idp}},
			func(o *Organization) ([]domain.Event, error) { return o.BindIssuer(idp) }, nil, nil},
		{"bind the built-in issuer", nil, func(o *Organization) ([]domain.Event, error) { return o.BindIssuer("") }, domain.ErrInvalid, nil},
		{"bind a name that is no URL", nil, func(o *Organization) ([]domain.Event, error) { return o.BindIssuer("corp") }, domain.ErrInvalid, nil},
		{"bind an issuer with a pipe", nil, func(o *Organization) ([]domain.Event, error) { return o.BindIssuer("https://a|b") }, domain.ErrInvalid, nil},
		{"bind an issuer with a space", nil, func(o *Organization) ([]domain.Event, error) { return o.BindIssuer("https://a b") }, domain.ErrInvalid, nil},
		{"bind too many", manyIssuers(MaxBoundIssuers),
			func(o *Organization) ([]domain.Event, error) { return o.BindIssuer(idp) }, domain.ErrInvalid, nil},
		{"bind on a closed org", []domain.Event{&OrganizationClosed{}},
			func(o *Organization) ([]domain.Event, error) { return o.BindIssuer(idp) }, ErrClosed, nil},
		{"unbind", []domain.Event{&IssuerBound{Issuer: idp}},
			func(o *Organization) ([]domain.Event, error) { return o.UnbindIssuer(idp) }, nil, []domain.Event{&IssuerUnbound{Issuer: idp}}},
		{"unbind with members of it: they stay, unable to act", []domain.Event{&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"viewer"}}},
			func(o *Organization) ([]domain.Event, error) { return o.UnbindIssuer(idp) }, nil, []domain.Event{&IssuerUnbound{Issuer: idp}}},
		{"unbind what is not bound", nil, func(o *Organization) ([]domain.Event, error) { return o.UnbindIssuer(idp) }, domain.ErrNotFound, nil},
		{"unbind the issuer of every owner who can act", []domain.Event{
			&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"owner"}}, &MemberRemoved{Sub: "alice"},
		}, func(o *Organization) ([]domain.Event, error) { return o.UnbindIssuer(idp) }, domain.ErrConflict, nil},
		{"add a member of a bound issuer", []domain.Event{&IssuerBound{Issuer: idp}},
			func(o *Organization) ([]domain.Event, error) { return o.AddMember(dan, owner) },
			nil, []domain.Event{&MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"owner"}}}},
		{"add a member of an unbound issuer", nil,
			func(o *Organization) ([]domain.Event, error) { return o.AddMember(dan, owner) }, domain.ErrInvalid, nil},
		{"add a member of an issuer since unbound", []domain.Event{&IssuerBound{Issuer: idp}, &IssuerUnbound{Issuer: idp}},
			func(o *Organization) ([]domain.Event, error) { return o.AddMember(dan, owner) }, domain.ErrInvalid, nil},
		{"same sub from another issuer is another member", []domain.Event{&IssuerBound{Issuer: idp}},
			func(o *Organization) ([]domain.Event, error) {
				return o.AddMember(MemberID{Issuer: idp, Sub: "alice"}, owner)
			},
			nil, []domain.Event{&MemberAdded{Issuer: idp, Sub: "alice", Roles: []string{"owner"}}}},
		{"built-in sub in the external form", nil,
			func(o *Organization) ([]domain.Event, error) { return o.AddMember(BuiltIn(idp+"|dan"), owner) }, domain.ErrInvalid, nil},
		{"built-in sub with a pipe but no URL", nil,
			func(o *Organization) ([]domain.Event, error) { return o.AddMember(BuiltIn("auth0|123"), owner) },
			nil, []domain.Event{&MemberAdded{Sub: "auth0|123", Roles: []string{"owner"}}}},
		{"change an external member's roles", []domain.Event{&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"viewer"}}},
			func(o *Organization) ([]domain.Event, error) { return o.ChangeRoles(dan, owner) },
			nil, []domain.Event{&MemberRolesChanged{Issuer: idp, Sub: "dan", Roles: []string{"owner"}}}},
		{"the built-in namesake is not the external member", []domain.Event{&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"viewer"}}},
			func(o *Organization) ([]domain.Event, error) { return o.RemoveMember(BuiltIn("dan")) }, domain.ErrNotFound, nil},
		{"remove an external member", []domain.Event{&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"viewer"}}},
			func(o *Organization) ([]domain.Event, error) { return o.RemoveMember(dan) },
			nil, []domain.Event{&MemberRemoved{Issuer: idp, Sub: "dan"}}},
		{"an owner of an unbound issuer does not keep the org owned", []domain.Event{
			&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"owner"}}, &IssuerUnbound{Issuer: idp},
		}, func(o *Organization) ([]domain.Event, error) { return o.RemoveMember(BuiltIn("alice")) }, domain.ErrConflict, nil},
		{"an owner of a bound issuer keeps the org owned", []domain.Event{
			&IssuerBound{Issuer: idp}, &MemberAdded{Issuer: idp, Sub: "dan", Roles: []string{"owner"}},
		}, func(o *Organization) ([]domain.Event, error) { return o.RemoveMember(BuiltIn("alice")) },
			nil, []domain.Event{&MemberRemoved{Sub: "alice"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := tt.run(org(t, tt.history...))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(evs, tt.events) {
				t.Fatalf("events = %#v, want %#v", evs, tt.events)
			}
		})
	}
}

func TestCreateRefusesAnExternalFormOwner(t *testing.T) {
	t.Parallel()
	if _, err := Create("org-1", "Acme", idp+"|dan"); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("Create = %v, want ErrInvalid", err)
	}
}

func TestBoundIssuersFollowTheLog(t *testing.T) {
	t.Parallel()
	other := "https://other.example"
	o := org(t, &IssuerBound{Issuer: other}, &IssuerBound{Issuer: idp}, &IssuerUnbound{Issuer: other})
	if got := o.BoundIssuers(); !slices.Equal(got, []string{idp}) {
		t.Fatalf("BoundIssuers = %v", got)
	}
	if !o.IssuerBound("") || !o.IssuerBound(idp) || o.IssuerBound(other) {
		t.Fatal("IssuerBound is wrong")
	}
}

func manyIssuers(n int) []domain.Event {
	evs := make([]domain.Event, n)
	for i := range evs {
		evs[i] = &IssuerBound{Issuer: fmt.Sprintf("https://idp-%02d.example", i)}
	}
	return evs
}
