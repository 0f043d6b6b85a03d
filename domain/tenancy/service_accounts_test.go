package tenancy

import (
	"errors"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

func TestServiceAccountExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Time
		err  error
	}{
		{"zero takes the default", 0, now.Add(DefaultServiceAccountTTL).Truncate(time.Second), nil},
		{"shortest", MinServiceAccountTTL, now.Add(MinServiceAccountTTL).Truncate(time.Second), nil},
		{"longest", MaxServiceAccountTTL, now.Add(MaxServiceAccountTTL).Truncate(time.Second), nil},
		{"too short", MinServiceAccountTTL - time.Second, time.Time{}, domain.ErrInvalid},
		{"too long", MaxServiceAccountTTL + time.Second, time.Time{}, domain.ErrInvalid},
		{"negative", -time.Hour, time.Time{}, domain.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ServiceAccountExpiry(now, tt.ttl)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("expiry = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReassignServiceAccount(t *testing.T) {
	t.Parallel()
	const idp = "https://idp.example"
	o := New()
	for _, e := range []domain.Event{
		&OrganizationCreated{OrgID: "org-1", Name: "Acme", OwnerSub: "alice"},
		&MemberAdded{Sub: "adam", Roles: []string{"admin"}},
		&MemberAdded{Sub: "victor", Roles: []string{"viewer"}},
		&IssuerBound{Issuer: idp},
		&MemberAdded{Issuer: idp, Sub: "erin", Roles: []string{"admin"}},
		&ServiceAccountCreated{ID: "sa-1", Permissions: []string{"members:manage"}, CreatedBy: "adam"},
		&ServiceAccountCreated{ID: "sa-gone", Permissions: []string{"bots:read"}, CreatedBy: "adam"},
		&ServiceAccountRevoked{ID: "sa-gone"},
	} {
		o.Apply(e)
	}
	owner := access.NewUser("org-1", "alice", []access.Role{access.RoleOwner}, nil)
	viewer := access.NewUser("org-1", "victor", []access.Role{access.RoleViewer}, nil)
	tests := []struct {
		name   string
		caller access.Principal
		id     string
		to     MemberID
		want   *ServiceAccountReassigned
		err    error
	}{
		{"to the owner", owner, "sa-1", BuiltIn("alice"), &ServiceAccountReassigned{ID: "sa-1", CreatedBy: "alice", PreviousCreatedBy: "adam"}, nil},
		{"to an external member", owner, "sa-1", MemberID{Issuer: idp, Sub: "erin"}, &ServiceAccountReassigned{ID: "sa-1", CreatedBy: idp + "|erin", PreviousCreatedBy: "adam"}, nil},
		{"to the current creator", owner, "sa-1", BuiltIn("adam"), nil, nil},
		{"caller lacks a listed permission", viewer, "sa-1", BuiltIn("victor"), nil, domain.ErrForbidden},
		{"to a non-member", owner, "sa-1", BuiltIn("mallory"), nil, domain.ErrInvalid},
		{"to the built-in namesake of an external member", owner, "sa-1", BuiltIn("erin"), nil, domain.ErrInvalid},
		{"revoked", owner, "sa-gone", BuiltIn("alice"), nil, domain.ErrNotFound},
		{"unknown", owner, "sa-x", BuiltIn("alice"), nil, domain.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := o.ReassignServiceAccount(tt.caller, tt.id, tt.to)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			switch {
			case tt.want == nil && len(evs) != 0:
				t.Fatalf("events = %+v, want none", evs)
			case tt.want != nil && (len(evs) != 1 || *evs[0].(*ServiceAccountReassigned) != *tt.want):
				t.Fatalf("events = %+v, want %+v", evs, tt.want)
			}
		})
	}
	// After a re-assignment, the aggregate knows the new creator.
	o.Apply(&ServiceAccountReassigned{ID: "sa-1", CreatedBy: "alice", PreviousCreatedBy: "adam"})
	if evs, err := o.ReassignServiceAccount(owner, "sa-1", BuiltIn("alice")); err != nil || len(evs) != 0 {
		t.Fatalf("re-assigning to the new creator again = %+v, %v", evs, err)
	}
}
