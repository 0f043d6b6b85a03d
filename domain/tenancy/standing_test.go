package tenancy_test

import (
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
)

// TestServiceAccountStanding: an account acts with its list ∩ its
// creator's permissions while it is neither revoked nor expired and its
// creator is a member; otherwise it holds nothing.
func TestServiceAccountStanding(t *testing.T) {
	t.Parallel()
	expires := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	created := func() *tenancy.Organization {
		o := tenancy.New()
		o.Apply(&tenancy.OrganizationCreated{OrgID: "o", Name: "Acme", OwnerSub: "alice"})
		o.Apply(&tenancy.MemberAdded{Sub: "carol", Roles: []string{"admin"}})
		o.Apply(&tenancy.ServiceAccountCreated{ID: "sa", Permissions: []string{"members:manage", "kb:read"}, CreatedBy: "carol", ExpiresAt: expires})
		return o
	}
	before := expires.Add(-time.Hour)
	tests := []struct {
		name   string
		then   func(o *tenancy.Organization)
		at     time.Time
		active bool
		perms  []access.Permission
	}{
		{"admin creator", func(*tenancy.Organization) {}, before, true, []access.Permission{access.MembersManage, access.KBRead}},
		{"creator demoted", func(o *tenancy.Organization) {
			o.Apply(&tenancy.MemberRolesChanged{Sub: "carol", Roles: []string{"viewer"}})
		}, before, true, []access.Permission{access.KBRead}},
		{"creator removed", func(o *tenancy.Organization) { o.Apply(&tenancy.MemberRemoved{Sub: "carol"}) }, before, false, nil},
		{"revoked", func(o *tenancy.Organization) { o.Apply(&tenancy.ServiceAccountRevoked{ID: "sa"}) }, before, false, nil},
		{"at its expiry", func(*tenancy.Organization) {}, expires, false, nil},
		{"organization closed", func(o *tenancy.Organization) { o.Apply(&tenancy.OrganizationClosed{}) }, before, false, nil},
		{"re-assigned to the owner after the creator left", func(o *tenancy.Organization) {
			o.Apply(&tenancy.MemberRemoved{Sub: "carol"})
			o.Apply(&tenancy.ServiceAccountReassigned{ID: "sa", CreatedBy: "alice", PreviousCreatedBy: "carol"})
		}, before, true, []access.Permission{access.MembersManage, access.KBRead}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := created()
			tt.then(o)
			st, ok := o.ServiceAccountStanding("sa", tt.at)
			if !ok {
				t.Fatal("account not found")
			}
			want := access.NewPermissionSet(tt.perms...)
			if st.Active != tt.active || st.Effective != want {
				t.Errorf("active %v with %v, want %v with %v", st.Active, st.Effective.Names(), tt.active, want.Names())
			}
			p, ok := o.ServiceAccountPrincipal("sa", tt.at)
			if ok != tt.active || p.Permissions != want {
				t.Errorf("principal %+v, %v", p, ok)
			}
		})
	}
	if _, ok := created().ServiceAccountStanding("nobody", before); ok {
		t.Error("an account never created stands")
	}
}

// TestMemberStanding: a member of an unbound issuer, or of a closed
// organization, cannot act.
func TestMemberStanding(t *testing.T) {
	t.Parallel()
	o := tenancy.New()
	o.Apply(&tenancy.OrganizationCreated{OrgID: "o", Name: "Acme", OwnerSub: "alice"})
	o.Apply(&tenancy.IssuerBound{Issuer: "https://idp.example"})
	o.Apply(&tenancy.MemberAdded{Issuer: "https://idp.example", Sub: "bob", Roles: []string{"viewer"}})
	bob := tenancy.MemberID{Issuer: "https://idp.example", Sub: "bob"}
	if roles, ok := o.MemberStanding(bob); !ok || !slices.Equal(roles, []access.Role{access.RoleViewer}) {
		t.Fatalf("bound issuer: %v, %v", roles, ok)
	}
	if ids := o.Members(); len(ids) != 2 || ids[1] != bob {
		t.Errorf("members %v", ids)
	}
	o.Apply(&tenancy.IssuerUnbound{Issuer: "https://idp.example"})
	if _, ok := o.MemberStanding(bob); ok {
		t.Error("a member of an unbound issuer stands")
	}
	o.Apply(&tenancy.OrganizationClosed{})
	if _, ok := o.UserPrincipal(tenancy.BuiltIn("alice")); ok {
		t.Error("the owner of a closed organization stands")
	}
}
