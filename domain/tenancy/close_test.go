package tenancy

import (
	"errors"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

func TestCloseNeedsTheNameAsConfirmation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, confirm string
		want          error
	}{
		{"exact name", "Acme", nil},
		{"missing", "", domain.ErrInvalid},
		{"other case", "acme", domain.ErrInvalid},
		{"other name", "Other", domain.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, err := org(t).Close(tt.confirm)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (len(evs) == 1) {
				t.Fatalf("Close(%q) = %v, %v; want %v", tt.confirm, evs, err, tt.want)
			}
			if tt.want == nil && evs[0].(*OrganizationClosed).Name != "Acme" {
				t.Fatalf("closed event %+v", evs[0])
			}
		})
	}
	if _, err := New().Close("Acme"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("closing an organization never created: %v, want not found", err)
	}
}

func TestClosedOrganizationRefusesEveryCommand(t *testing.T) {
	t.Parallel()
	sa := &ServiceAccountCreated{ID: "sa-1", Name: "ci", Permissions: []string{"bots:manage"}, CreatedBy: "alice", ExpiresAt: time.Now().Add(time.Hour)}
	o := org(t, &MemberAdded{Sub: "bob", Roles: []string{"admin"}}, sa, &OrganizationClosed{Name: "Acme"})
	owner := access.NewUser("org-1", "alice", []access.Role{access.RoleOwner}, nil)
	attempts := map[string]func() ([]domain.Event, error){
		"Close":     func() ([]domain.Event, error) { return o.Close("Acme") },
		"Rename":    func() ([]domain.Event, error) { return o.Rename("New") },
		"AddMember": func() ([]domain.Event, error) { return o.AddMember(BuiltIn("carol"), []access.Role{access.RoleViewer}) },
		"ChangeRoles": func() ([]domain.Event, error) {
			return o.ChangeRoles(BuiltIn("bob"), []access.Role{access.RoleViewer})
		},
		"RemoveMember":         func() ([]domain.Event, error) { return o.RemoveMember(BuiltIn("bob")) },
		"RevokeServiceAccount": func() ([]domain.Event, error) { return o.RevokeServiceAccount("sa-1") },
		"CreateServiceAccount": func() ([]domain.Event, error) {
			return o.CreateServiceAccount(owner, ServiceAccountRequest{ID: "sa-2", Name: "x", Permissions: owner.Permissions, ExpiresAt: time.Now().Add(time.Hour)}, time.Now())
		},
		"BindIssuer": func() ([]domain.Event, error) { return o.BindIssuer("https://idp.example") },
		"SetQuotas":  func() ([]domain.Event, error) { return o.SetQuotas(QuotaOverrides{}) },
	}
	for name, try := range attempts {
		if evs, err := try(); !errors.Is(err, ErrClosed) || !errors.Is(err, domain.ErrConflict) || len(evs) != 0 {
			t.Errorf("%s on a closed organization: %v, %v; want ErrClosed", name, evs, err)
		}
	}
	if o.IsMember(BuiltIn("alice")) || o.IsMember(BuiltIn("bob")) || o.ServiceAccountActive("sa-1") {
		t.Fatal("a closed organization still has members or live service accounts")
	}
	if o.Exists() || !o.Closed() {
		t.Fatalf("Exists %v, Closed %v after closing", o.Exists(), o.Closed())
	}
}
