package commands_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

func openCommands(t *testing.T) (context.Context, eventstore.Store, commands.Commands) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	store := openStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := commands.NewPipeline(store, events.NewRegistry(), logger)
	return ctx, store, commands.New(p, &countingMinter{}, commands.Embedding{Model: "m", Dimensions: 3})
}

// TestNothingByARemovedAdminLandsAfterTheRemoval races an owner removing
// (or demoting to viewer) an admin against that admin firing commands
// with the principal a lagging read model still resolves (admin). Every
// command of the admin appended after the removal or demotion would have
// been decided on authority the admin no longer had; none may exist.
//
// The admin's commands run through a second pipeline over the same store,
// as on another server process: nothing but the store's conditional
// append serializes them with the owner's change.
func TestNothingByARemovedAdminLandsAfterTheRemoval(t *testing.T) {
	t.Parallel()
	ctx, store, cmds := openCommands(t)
	other := commands.New(commands.NewPipeline(store, events.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))),
		&countingMinter{}, commands.Embedding{Model: "m", Dimensions: 3})
	cases := []struct {
		name   string
		revoke func(ctx context.Context, owner access.Principal, admin tenancy.MemberID) (uint64, error)
	}{
		{"removal", func(ctx context.Context, owner access.Principal, admin tenancy.MemberID) (uint64, error) {
			res, err := cmds.Tenancy.RemoveMember(ctx, owner, admin)
			return res.Position, err
		}},
		{"demotion to viewer", func(ctx context.Context, owner access.Principal, admin tenancy.MemberID) (uint64, error) {
			res, err := cmds.Tenancy.ChangeMemberRoles(ctx, owner, admin, []access.Role{access.RoleViewer})
			return res.Position, err
		}},
	}
	const iterations = 50
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range iterations {
				org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), fmt.Sprintf("Org %d", i), "alice")
				if err != nil {
					t.Fatal(err)
				}
				owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil)
				bob := tenancy.BuiltIn("bob")
				if _, err := cmds.Tenancy.AddMember(ctx, owner, bob, []access.Role{access.RoleAdmin}); err != nil {
					t.Fatal(err)
				}
				// What a read model that has not seen the change yet says.
				staleAdmin := access.NewUser(org.ID, "bob", []access.Role{access.RoleAdmin}, nil)

				var wg sync.WaitGroup
				revoked := make(chan struct{})
				var revokedAt uint64
				var revokeErr error
				wg.Go(func() {
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					revokedAt, revokeErr = tc.revoke(ctx, owner, bob)
					close(revoked)
				})
				errs := make(chan error, 64)
				for w := range 2 {
					wg.Go(func() {
						after := 0
						for n := 0; after < 3; n++ {
							select {
							case <-revoked:
								after++
							default:
							}
							var err error
							if (n+w)%2 == 0 {
								_, err = other.Bots.CreateBot(ctx, staleAdmin, fmt.Sprintf("bot-%d-%d", w, n), "", bots.Grants{})
							} else {
								_, err = other.Tenancy.AddMember(ctx, staleAdmin, tenancy.BuiltIn(fmt.Sprintf("m-%d-%d", w, n)), []access.Role{access.RoleViewer})
							}
							if err != nil && !errors.Is(err, domain.ErrForbidden) {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				if revokeErr != nil {
					t.Fatalf("iteration %d: revoke: %v", i, revokeErr)
				}
				for err := range errs {
					t.Fatalf("iteration %d: admin command failed with something other than forbidden: %v", i, err)
				}
				envs, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: org.ID}, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, env := range envs {
					if env.Stream.Category == events.SecurityCategory {
						continue // the record of refused attempts, not actions
					}
					if env.Actor.Subject == "bob" && env.Position > revokedAt {
						t.Fatalf("iteration %d: %s by bob at position %d, after the %s at %d", i, env.Type, env.Position, tc.name, revokedAt)
					}
				}
			}
		})
	}
}

// TestContendedMembershipGivesNoSpuriousConflict: an owner adding members
// in a burst, while admins create bots, moves the tenancy stream under
// every command; the pipeline decides again instead of answering 409.
func TestContendedMembershipGivesNoSpuriousConflict(t *testing.T) {
	t.Parallel()
	ctx, _, cmds := openCommands(t)
	org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), "Busy", "alice")
	if err != nil {
		t.Fatal(err)
	}
	owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil)
	for _, sub := range []string{"bob", "carol"} {
		if _, err := cmds.Tenancy.AddMember(ctx, owner, tenancy.BuiltIn(sub), []access.Role{access.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			for n := range 10 {
				if _, err := cmds.Tenancy.AddMember(ctx, owner, tenancy.BuiltIn(fmt.Sprintf("m-%d-%d", w, n)), []access.Role{access.RoleMember}); err != nil {
					errs <- fmt.Errorf("owner adds member: %w", err)
				}
			}
		})
	}
	for _, sub := range []string{"bob", "carol"} {
		admin := access.NewUser(org.ID, sub, []access.Role{access.RoleAdmin}, nil)
		wg.Go(func() {
			for n := range 10 {
				if _, err := cmds.Bots.CreateBot(ctx, admin, fmt.Sprintf("%s-%d", sub, n), "", bots.Grants{}); err != nil {
					errs <- fmt.Errorf("%s creates bot: %w", sub, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServiceAccountActsOnlyWhileItsCreatorAndItself Hold: a service
// account's command is decided against the tenancy stream at the version
// it appends to: after its creator was removed, or it was revoked, it
// appends nothing, whatever the (lagging) principal it arrives with says.
func TestServiceAccountActsOnlyWhileItsCreatorAndItselfHold(t *testing.T) {
	t.Parallel()
	ctx, store, cmds := openCommands(t)
	org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil)
	bob := tenancy.BuiltIn("bob")
	if _, err := cmds.Tenancy.AddMember(ctx, owner, bob, []access.Role{access.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	admin := access.NewUser(org.ID, "bob", []access.Role{access.RoleAdmin}, nil)
	perms := access.NewPermissionSet(access.BotsManage)
	byBob, err := cmds.Tenancy.CreateServiceAccount(ctx, admin, "ci", perms, 0)
	if err != nil {
		t.Fatal(err)
	}
	byAlice, err := cmds.Tenancy.CreateServiceAccount(ctx, owner, "ops", perms, 0)
	if err != nil {
		t.Fatal(err)
	}
	account := func(id, creator string) access.Principal {
		p := access.NewServiceAccount(org.ID, id, perms, nil)
		p.CreatedBy = creator
		return p
	}
	if _, err := cmds.Bots.CreateBot(ctx, account(byBob.ID, "bob"), "before", "", bots.Grants{}); err != nil {
		t.Fatalf("service account of a member: %v", err)
	}
	if _, err := cmds.Tenancy.RemoveMember(ctx, owner, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.Bots.CreateBot(ctx, account(byBob.ID, "bob"), "after removal", "", bots.Grants{}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("service account of a removed creator: err = %v, want forbidden", err)
	}
	if _, err := cmds.Bots.CreateBot(ctx, account(byAlice.ID, "alice"), "still fine", "", bots.Grants{}); err != nil {
		t.Fatalf("service account of a member: %v", err)
	}
	if _, err := cmds.Tenancy.RevokeServiceAccount(ctx, owner, byAlice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cmds.Bots.CreateBot(ctx, account(byAlice.ID, "alice"), "after revocation", "", bots.Grants{}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("revoked service account: err = %v, want forbidden", err)
	}
	envs, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: org.ID, Types: []string{"BotCreated"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 {
		t.Fatalf("%d bots created, want 2 (one per account while it held)", len(envs))
	}
}

// TestAStaleOwnerCannotUndoTheirDemotion: a member demoted from owner to
// admin, acting with the owner principal a lagging read model still
// resolves, cannot give themselves the owner role back: owners:manage is
// decided on the organization as recorded, not on the principal the
// request arrived with.
func TestAStaleOwnerCannotUndoTheirDemotion(t *testing.T) {
	t.Parallel()
	ctx, _, cmds := openCommands(t)
	org, olga := orgOwnedBy(ctx, t, cmds, "olga", map[string]access.Role{"otto": access.RoleOwner})
	otto := tenancy.BuiltIn("otto")
	staleOtto := access.NewUser(org, "otto", []access.Role{access.RoleOwner}, nil)
	if _, err := cmds.Tenancy.ChangeMemberRoles(ctx, olga, otto, []access.Role{access.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	_, err := cmds.Tenancy.ChangeMemberRoles(ctx, staleOtto, otto, []access.Role{access.RoleOwner, access.RoleViewer})
	if !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("the demoted owner's re-promotion: err = %v, want forbidden", err)
	}
}

// TestNobodyGivesARoleBeyondWhatTheyHold: a credential holding
// members:manage (a scoped token, a service account) gives or takes away
// only roles whose permissions it holds itself: it cannot make an admin,
// nor remove one.
func TestNobodyGivesARoleBeyondWhatTheyHold(t *testing.T) {
	t.Parallel()
	ctx, _, cmds := openCommands(t)
	org, _ := orgOwnedBy(ctx, t, cmds, "olga", map[string]access.Role{"adam": access.RoleAdmin, "vic": access.RoleViewer})
	adam, vic := tenancy.BuiltIn("adam"), tenancy.BuiltIn("vic")
	scope := access.NewPermissionSet(access.MembersManage)
	narrow := access.NewUser(org, "adam", []access.Role{access.RoleAdmin}, &scope)
	for name, try := range map[string]func() error{
		"promote a viewer to admin": func() error {
			_, err := cmds.Tenancy.ChangeMemberRoles(ctx, narrow, vic, []access.Role{access.RoleAdmin})
			return err
		},
		"add an admin": func() error {
			_, err := cmds.Tenancy.AddMember(ctx, narrow, tenancy.BuiltIn("mallory"), []access.Role{access.RoleAdmin})
			return err
		},
		"remove an admin": func() error {
			_, err := cmds.Tenancy.RemoveMember(ctx, narrow, adam)
			return err
		},
	} {
		if err := try(); !errors.Is(err, domain.ErrForbidden) {
			t.Errorf("%s with a token scoped to members:manage: err = %v, want forbidden", name, err)
		}
	}
	// The unscoped admin may: an admin holds every permission of the role.
	admin := access.NewUser(org, "adam", []access.Role{access.RoleAdmin}, nil)
	if _, err := cmds.Tenancy.ChangeMemberRoles(ctx, admin, vic, []access.Role{access.RoleAdmin}); err != nil {
		t.Errorf("an admin making a viewer admin: %v", err)
	}
}

// orgOwnedBy creates an organization owned by owner with members, each
// with its one role, and returns its id and the owner's principal.
func orgOwnedBy(ctx context.Context, t *testing.T, cmds commands.Commands, owner string, members map[string]access.Role) (string, access.Principal) {
	t.Helper()
	org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), "Acme", owner)
	if err != nil {
		t.Fatal(err)
	}
	by := access.NewUser(org.ID, owner, []access.Role{access.RoleOwner}, nil)
	for sub, role := range members {
		if _, err := cmds.Tenancy.AddMember(ctx, by, tenancy.BuiltIn(sub), []access.Role{role}); err != nil {
			t.Fatal(err)
		}
	}
	return org.ID, by
}
