package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

// TestServiceAccountNeverExceedsItsCreator is a property test over random
// creator role sets, service-account lists and token scopes, for creators
// of the built-in issuer and of an external one: whether resolved for a
// request (Resolve) or for an asynchronous step (Current), a service
// account holds exactly its list ∩ what its creator holds now ∩ the token
// scope — never more — and a creator who is no longer a member (removed,
// or of an issuer the organization no longer binds) leaves it unable to act.
func TestServiceAccountNeverExceedsItsCreator(t *testing.T) {
	t.Parallel()
	const idp = "https://idp.example"
	ctx := context.Background()
	at := time.Now()
	catalog := access.Catalog()
	roleNames := access.RoleNames()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)

	pick := func(names []string) []string {
		var out []string
		for _, n := range names {
			if rng.Intn(3) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	for i := range 400 {
		org := fmt.Sprintf("0198c0de-0000-7000-8000-%012d", i)
		scope, _ := access.EventScope(org)
		tenancy := memory.NewTenancy()
		must(t, tenancy.PutOrg(ctx, scope, projections.Org{ID: org, Name: "Acme", CreatedAt: at, UpdatedAt: at}))

		external := rng.Intn(2) == 0
		issuer, creator := "", "carol"
		if external {
			issuer, creator = idp, idp+"|carol"
			if rng.Intn(4) != 0 {
				must(t, tenancy.PutIssuer(ctx, scope, projections.IssuerBinding{Issuer: idp, BoundAt: at, BoundBy: "owner"}))
			}
		}
		member := rng.Intn(5) != 0
		var roles []access.Role
		if member {
			names := pick(roleNames)
			if len(names) == 0 {
				names = []string{roleNames[rng.Intn(len(roleNames))]}
			}
			must(t, tenancy.PutMember(ctx, scope, projections.Member{Issuer: issuer, Sub: "carol", Roles: names, AddedAt: at, UpdatedAt: at}))
			var err error
			if roles, err = access.ParseRoles(names); err != nil {
				t.Fatal(err)
			}
		}
		bound := !external || func() bool { _, err := tenancy.Issuer(ctx, scope, idp); return err == nil }()

		listNames := pick(catalog)
		list, err := access.ParsePermissions(listNames)
		if err != nil {
			t.Fatal(err)
		}
		must(t, tenancy.PutServiceAccount(ctx, scope, projections.ServiceAccount{
			ID: "sa-1", Name: "robot", Permissions: listNames, CreatedBy: creator,
			CreatedAt: at, ExpiresAt: at.Add(time.Hour), TokenID: "t-1",
		}))

		var tokenScope *access.PermissionSet
		var recorded []string
		if rng.Intn(2) == 0 {
			recorded = pick(catalog)
			s, err := access.ParsePermissions(recorded)
			if err != nil {
				t.Fatal(err)
			}
			tokenScope = &s
		}
		bound4 := list.Intersect(access.PermissionsOf(roles))
		if tokenScope != nil {
			bound4 = bound4.Intersect(*tokenScope)
		}

		r := projections.NewPrincipals(tenancy)
		viaRequest, errRequest := r.Resolve(ctx, projections.Credentials{Kind: "service", OrgID: org, Subject: "sa-1", TokenID: "t-1", Scope: tokenScope})
		viaProcess, errProcess := r.Current(ctx, org, eventstore.Actor{Subject: "sa-1", Kind: "service", Scope: recorded, CreatedBy: creator})
		for _, got := range []struct {
			how string
			p   access.Principal
			err error
		}{{"Resolve", viaRequest, errRequest}, {"Current", viaProcess, errProcess}} {
			what := fmt.Sprintf("case %d (seed %d) %s: creator %q member=%v bound=%v roles %v list %v scope %v",
				i, seed, got.how, creator, member, bound, roles, listNames, recorded)
			if !member || !bound {
				if !errors.Is(got.err, projections.ErrCreatorNotMember) || !errors.Is(got.err, projections.ErrUnknownPrincipal) {
					t.Fatalf("%s: = %+v, %v; want ErrCreatorNotMember", what, got.p, got.err)
				}
				continue
			}
			if got.err != nil {
				t.Fatalf("%s: %v", what, got.err)
			}
			if !got.p.Permissions.SubsetOf(bound4) {
				t.Fatalf("%s: holds %v, more than %v", what, got.p.Permissions.Names(), bound4.Names())
			}
			if got.p.Permissions != bound4 {
				t.Fatalf("%s: holds %v, want exactly %v", what, got.p.Permissions.Names(), bound4.Names())
			}
			if got.p.CreatedBy != creator || got.p.Kind != access.KindService {
				t.Fatalf("%s: principal %+v", what, got.p)
			}
		}
	}
}

// TestCurrentCarriesTheChain: a process re-resolving a service account's
// trigger keeps the recorded on-behalf-of chain and the creator's
// narrowing, so a step it runs later is narrowed like the request was.
func TestCurrentCarriesTheChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const org = "0198c0de-0000-7000-8000-0000000000cc"
	scope, _ := access.EventScope(org)
	at := time.Now()
	tenancy := memory.NewTenancy()
	must(t, tenancy.PutOrg(ctx, scope, projections.Org{ID: org, Name: "Acme", CreatedAt: at, UpdatedAt: at}))
	must(t, tenancy.PutMember(ctx, scope, projections.Member{Sub: "carol", Roles: []string{"viewer"}, AddedAt: at, UpdatedAt: at}))
	must(t, tenancy.PutServiceAccount(ctx, scope, projections.ServiceAccount{
		ID: "sa-1", Permissions: []string{"kb:read", "kb:write"}, CreatedBy: "carol",
		CreatedAt: at, ExpiresAt: at.Add(time.Hour), TokenID: "t-1",
	}))
	r := projections.NewPrincipals(tenancy)
	p, err := r.Current(ctx, org, eventstore.Actor{Subject: "sa-1", Kind: "service", OnBehalfOf: []string{"dave"}})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Permissions.Has(access.KBRead) || p.Permissions.Has(access.KBWrite) {
		t.Fatalf("a viewer's service account holds %v, want kb:read only", p.Permissions.Names())
	}
	if len(p.OnBehalfOf) != 1 || p.OnBehalfOf[0] != "dave" {
		t.Fatalf("on behalf of %v, want [dave]", p.OnBehalfOf)
	}
	as := access.Delegate(p, access.KindProcess, "ingestion", access.NewPermissionSet(access.KBRead, access.KBWrite))
	if as.Permissions.Has(access.KBWrite) {
		t.Fatal("the ingestion process holds kb:write its service account's creator lacks")
	}
	if want := []string{"dave", "sa-1"}; len(as.OnBehalfOf) != 2 || as.OnBehalfOf[0] != want[0] || as.OnBehalfOf[1] != want[1] {
		t.Fatalf("process on behalf of %v, want %v", as.OnBehalfOf, want)
	}
}
