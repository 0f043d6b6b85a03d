package tenancy

import (
	"errors"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// org folds evs into a fresh organization created with owner alice.
func org(t *testing.T, evs ...domain.Event) *Organization {
	t.Helper()
	o := New()
	created, err := Create("org-1", "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(created, evs...) {
		o.Apply(e)
	}
	return o
}

func TestCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, orgName, owner string
		ok                   bool
	}{
		{"valid", "Acme", "alice", true},
		{"empty name", "", "alice", false},
		{"blank name", "   ", "alice", false},
		{"long name", string(make([]byte, 201)), "alice", false},
		{"control character", "Ac\x00me", "alice", false},
		{"empty owner", "Acme", "", false},
		{"owner with space", "Acme", "al ice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Create("org-1", tt.orgName, tt.owner)
			if (err == nil) != tt.ok {
				t.Fatalf("Create = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestMembership(t *testing.T) {
	t.Parallel()
	viewer := []access.Role{access.RoleViewer}
	owner := []access.Role{access.RoleOwner}
	tests := []struct {
		name string
		run  func(o *Organization) ([]domain.Event, error)
		want error
	}{
		{"add member", func(o *Organization) ([]domain.Event, error) { return o.AddMember(BuiltIn("bob"), viewer) }, nil},
		{"add existing member", func(o *Organization) ([]domain.Event, error) { return o.AddMember(BuiltIn("alice"), viewer) }, domain.ErrConflict},
		{"add without roles", func(o *Organization) ([]domain.Event, error) { return o.AddMember(BuiltIn("bob"), nil) }, domain.ErrInvalid},
		{"add unknown role", func(o *Organization) ([]domain.Event, error) { return o.AddMember(BuiltIn("bob"), []access.Role{99}) }, domain.ErrInvalid},
		{"change missing member", func(o *Organization) ([]domain.Event, error) { return o.ChangeRoles(BuiltIn("bob"), viewer) }, domain.ErrNotFound},
		{"demote last owner", func(o *Organization) ([]domain.Event, error) { return o.ChangeRoles(BuiltIn("alice"), viewer) }, domain.ErrConflict},
		{"remove last owner", func(o *Organization) ([]domain.Event, error) { return o.RemoveMember(BuiltIn("alice")) }, domain.ErrConflict},
		{"remove missing member", func(o *Organization) ([]domain.Event, error) { return o.RemoveMember(BuiltIn("bob")) }, domain.ErrNotFound},
		{"unchanged roles are a no-op", func(o *Organization) ([]domain.Event, error) { return o.ChangeRoles(BuiltIn("alice"), owner) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.run(org(t))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// With a second owner, the first may step down.
	o := org(t, &MemberAdded{Sub: "bob", Roles: []string{"owner"}})
	if _, err := o.RemoveMember(BuiltIn("alice")); err != nil {
		t.Fatalf("remove one of two owners: %v", err)
	}
	if !o.TouchesOwners(BuiltIn("bob"), viewer) || o.TouchesOwners(BuiltIn("bob"), owner) || !o.TouchesOwners(BuiltIn("carol"), owner) || o.TouchesOwners(BuiltIn("carol"), viewer) {
		t.Fatal("TouchesOwners is wrong")
	}
	// A removed member is gone.
	o.Apply(&MemberRemoved{Sub: "bob"})
	if o.IsMember(BuiltIn("bob")) {
		t.Fatal("removed member still a member")
	}
	// Nothing works on a closed organization.
	o.Apply(&OrganizationClosed{})
	if _, err := o.AddMember(BuiltIn("dan"), viewer); !errors.Is(err, ErrClosed) {
		t.Fatalf("add to closed org: %v", err)
	}
}

func TestServiceAccounts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	creator := access.NewUser("org-1", "alice", []access.Role{access.RoleBuilder}, nil)
	req := ServiceAccountRequest{ID: "sa-1", Name: "ci", Permissions: access.NewPermissionSet(access.BotsRead), TokenID: "t-1", ExpiresAt: now.Add(24 * time.Hour)}
	tests := []struct {
		name   string
		change func(*ServiceAccountRequest)
		want   error
	}{
		{"valid", func(*ServiceAccountRequest) {}, nil},
		{"no permissions", func(r *ServiceAccountRequest) { r.Permissions = 0 }, domain.ErrInvalid},
		{"more than creator", func(r *ServiceAccountRequest) { r.Permissions = access.NewPermissionSet(access.MembersManage) }, domain.ErrForbidden},
		{"no name", func(r *ServiceAccountRequest) { r.Name = "" }, domain.ErrInvalid},
		{"already expired", func(r *ServiceAccountRequest) { r.ExpiresAt = now }, domain.ErrInvalid},
		{"too long", func(r *ServiceAccountRequest) { r.ExpiresAt = now.Add(400 * 24 * time.Hour) }, domain.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req
			tt.change(&r)
			evs, err := org(t).CreateServiceAccount(creator, r, now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil {
				sa := evs[0].(*ServiceAccountCreated)
				if sa.CreatedBy != "alice" || sa.TokenID != "t-1" || len(sa.Permissions) != 1 {
					t.Fatalf("event = %+v", sa)
				}
			}
		})
	}
	o := org(t, &ServiceAccountCreated{ID: "sa-1"})
	if _, err := o.CreateServiceAccount(creator, req, now); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := o.RevokeServiceAccount("sa-1"); err != nil {
		t.Fatal(err)
	}
	o.Apply(&ServiceAccountRevoked{ID: "sa-1"})
	if _, err := o.RevokeServiceAccount("sa-1"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if _, err := o.RevokeServiceAccount("nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}
