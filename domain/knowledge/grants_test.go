package knowledge

import (
	"errors"
	"testing"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// TestServiceGrants: service:ID names one service account and nobody else
// — not a user whose sub is the same id, not another account.
func TestServiceGrants(t *testing.T) {
	t.Parallel()
	const org, id = "org-1", "0198c0de-0000-7000-8000-000000000001"
	grants, err := NormalizeGrants([]Grant{{Subject: "service:" + id, Permissions: []string{"kb:read"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"service:", "service:a b", "svc:" + id} {
		if _, err := NormalizeGrants([]Grant{{Subject: bad, Permissions: []string{"kb:read"}}}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("NormalizeGrants(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	res := Resource(org, grants)
	kbRead := access.NewPermissionSet(access.KBRead)
	tests := []struct {
		name string
		p    access.Principal
		want bool
	}{
		{"the named account", access.NewServiceAccount(org, id, kbRead, nil), true},
		{"another account", access.NewServiceAccount(org, "0198c0de-0000-7000-8000-000000000002", kbRead, nil), false},
		{"a user named like the account", access.NewUser(org, id, []access.Role{access.RoleMember}, nil), false},
		{"the named account without kb:read", access.NewServiceAccount(org, id, access.NewPermissionSet(access.BotsRead), nil), false},
	}
	for _, tt := range tests {
		if d := access.Decide(tt.p, access.KBRead, res); d.Allowed != tt.want {
			t.Errorf("%s: allowed %v (%s), want %v", tt.name, d.Allowed, d.Reason(), tt.want)
		}
	}
}
