package access

import (
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
)

const orgA, orgB = "org-a", "org-b"

func user(roles ...Role) Principal { return NewUser(orgA, "alice", roles, nil) }

func TestDecide(t *testing.T) {
	t.Parallel()
	restricted := Resource{OrgID: orgA, Restricted: true, Grants: []Grant{
		{Kind: GrantUser, Value: "alice", Permissions: NewPermissionSet(KBRead)},
		{Kind: GrantRole, Value: "analyst", Permissions: NewPermissionSet(KBRead, KBWrite)},
		{Kind: GrantService, Value: "sa-1", Permissions: NewPermissionSet(KBRead)},
	}}
	scopeBotsRead := NewPermissionSet(BotsRead)
	tests := []struct {
		name    string
		who     Principal
		action  Permission
		res     Resource
		allowed bool
		code    Reason
		role    Role
	}{
		{"owner may delete org", user(RoleOwner), OrgDelete, OrgResource(orgA), true, ReasonRoleAllows, RoleOwner},
		{"admin may not delete org", user(RoleAdmin), OrgDelete, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"admin may not manage owners", user(RoleAdmin), OwnersManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"admin manages members", user(RoleAdmin), MembersManage, OrgResource(orgA), true, ReasonRoleAllows, RoleAdmin},
		{"builder manages bots", user(RoleBuilder), BotsManage, OrgResource(orgA), true, ReasonRoleAllows, RoleBuilder},
		{"builder cannot manage members", user(RoleBuilder), MembersManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"analyst runs analytics", user(RoleAnalyst), AnalyticsRun, OrgResource(orgA), true, ReasonRoleAllows, RoleAnalyst},
		{"analyst cannot manage bots", user(RoleAnalyst), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"agent replies in inbox", user(RoleAgent), InboxReply, OrgResource(orgA), true, ReasonRoleAllows, RoleAgent},
		{"member runs bots", user(RoleMember), BotsRun, OrgResource(orgA), true, ReasonRoleAllows, RoleMember},
		{"member cannot manage bots", user(RoleMember), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"viewer reads bots", user(RoleViewer), BotsRead, OrgResource(orgA), true, ReasonRoleAllows, RoleViewer},
		{"viewer cannot run bots", user(RoleViewer), BotsRun, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"viewer cannot read audit", user(RoleViewer), AuditRead, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"auditor reads audit", user(RoleAuditor), AuditRead, OrgResource(orgA), true, ReasonRoleAllows, RoleAuditor},
		{"owner reads audit content", user(RoleOwner), AuditReadContent, OrgResource(orgA), true, ReasonRoleAllows, RoleOwner},
		{"admin cannot read audit content", user(RoleAdmin), AuditReadContent, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"auditor cannot read audit content", user(RoleAuditor), AuditReadContent, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"service account may hold audit content", NewServiceAccount(orgA, "sa-1", NewPermissionSet(AuditRead, AuditReadContent), nil), AuditReadContent, OrgResource(orgA), true, ReasonServiceAccountAllows, 0},
		{"auditor cannot read bots", user(RoleAuditor), BotsRead, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"second role allows", user(RoleViewer, RoleAuditor), AuditRead, OrgResource(orgA), true, ReasonRoleAllows, RoleAuditor},
		{"no roles", user(), OrgRead, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"other organization", user(RoleOwner), BotsRead, OrgResource(orgB), false, ReasonOtherOrganization, 0},
		{"unknown permission", user(RoleOwner), PermissionUnknown, OrgResource(orgA), false, ReasonUnknownPermission, 0},
		{"out of range permission", user(RoleOwner), Permission(200), OrgResource(orgA), false, ReasonUnknownPermission, 0},
		{"unknown role grants nothing", user(Role(99)), OrgRead, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"platform creates orgs", NewPlatform("ops"), OrgsCreate, Resource{}, true, ReasonPlatformAllows, 0},
		{"platform cannot read org content", NewPlatform("ops"), BotsRead, OrgResource(""), false, ReasonNoOrganization, 0},
		{"platform cannot read any org", NewPlatform("ops"), OrgRead, OrgResource(orgA), false, ReasonNoOrganization, 0},
		{"owner cannot create orgs", user(RoleOwner), OrgsCreate, Resource{}, false, ReasonPlatformOnly, 0},
		{"platform-scoped principal denied", Principal{Subject: "x", Kind: KindUser, OrgID: PlatformScope, Permissions: orgPermissions}, OrgRead, OrgResource(PlatformScope), false, ReasonNoOrganization, 0},
		{"service account holds list", NewServiceAccount(orgA, "sa-1", NewPermissionSet(BotsRead), nil), BotsRead, OrgResource(orgA), true, ReasonServiceAccountAllows, 0},
		{"service account lacks", NewServiceAccount(orgA, "sa-1", NewPermissionSet(BotsRead), nil), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"service account never creates orgs", NewServiceAccount(orgA, "sa-1", NewPermissionSet(OrgsCreate, BotsRead), nil), OrgsCreate, Resource{}, false, ReasonPlatformOnly, 0},
		{"service account cannot manage service accounts", NewServiceAccount(orgA, "sa-1", NewPermissionSet(ServiceAccountsManage), nil), ServiceAccountsManage, OrgResource(orgA), false, ReasonUsersOnly, 0},
		{"bot cannot manage service accounts", Delegate(user(RoleOwner), KindBot, "bot-1", NewPermissionSet(ServiceAccountsManage)), ServiceAccountsManage, OrgResource(orgA), false, ReasonUsersOnly, 0},
		{"owner manages service accounts", user(RoleOwner), ServiceAccountsManage, OrgResource(orgA), true, ReasonRoleAllows, RoleOwner},
		{"token scope narrows", NewUser(orgA, "alice", []Role{RoleOwner}, &scopeBotsRead), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"token scope keeps", NewUser(orgA, "alice", []Role{RoleOwner}, &scopeBotsRead), BotsRead, OrgResource(orgA), true, ReasonRoleAllows, RoleOwner},
		{"scope cannot widen", NewUser(orgA, "alice", []Role{RoleViewer}, ptr(NewPermissionSet(BotsManage))), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"grant names user", user(RoleMember), KBRead, restricted, true, ReasonGrantAllows, 0},
		{"grant names role", NewUser(orgA, "bob", []Role{RoleAnalyst}, nil), KBRead, restricted, true, ReasonGrantAllows, 0},
		{"grant names service account", NewServiceAccount(orgA, "sa-1", NewPermissionSet(KBRead), nil), KBRead, restricted, true, ReasonGrantAllows, 0},
		{"no grant for user", NewUser(orgA, "carol", []Role{RoleMember}, nil), KBRead, restricted, false, ReasonNoGrant, 0},
		{"user grant does not match a service account of the same name", NewServiceAccount(orgA, "alice", NewPermissionSet(KBRead), nil), KBRead, restricted, false, ReasonNoGrant, 0},
		{"grant lacks the action", user(RoleBuilder), KBWrite, restricted, false, ReasonNoGrant, 0},
		{"grant needs the org permission too", NewUser(orgA, "alice", []Role{RoleAuditor}, nil), KBRead, restricted, false, ReasonMissingPermission, 0},
		{"admin keeps manage on restricted", NewUser(orgA, "root", []Role{RoleAdmin}, nil), KBManage, restricted, true, ReasonManagerOverride, RoleAdmin},
		{"admin does not read restricted", NewUser(orgA, "root", []Role{RoleAdmin}, nil), KBRead, restricted, false, ReasonNoGrant, 0},
		{"builder has no manage override", NewUser(orgA, "bob", []Role{RoleBuilder}, nil), KBManage, restricted, false, ReasonNoGrant, 0},
		{"delegation allows", Delegate(user(RoleBuilder), KindBot, "bot-1", NewPermissionSet(KBRead, BotsRead)), KBRead, OrgResource(orgA), true, ReasonDelegationAllows, 0},
		{"delegation narrows to grants", Delegate(user(RoleOwner), KindBot, "bot-1", NewPermissionSet(KBRead)), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"delegation narrows to invoker", Delegate(user(RoleViewer), KindBot, "bot-1", NewPermissionSet(BotsManage)), BotsManage, OrgResource(orgA), false, ReasonMissingPermission, 0},
		{"delegation gets no manage override", Delegate(NewUser(orgA, "root", []Role{RoleOwner}, nil), KindBot, "bot-1", NewPermissionSet(KBManage)), KBManage, restricted, false, ReasonNoGrant, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.who, tt.action, tt.res)
			if d.Allowed != tt.allowed || d.Code != tt.code || d.Role != tt.role {
				t.Fatalf("Decide = %+v (%s), want allowed=%v code=%v role=%v", d, d.Reason(), tt.allowed, tt.code, tt.role)
			}
			if got := d.Reason(); strings.HasPrefix(got, "allowed") != tt.allowed {
				t.Fatalf("reason %q disagrees with allowed=%v", got, tt.allowed)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDelegationNeverWidens: for any invoker and any bot grants, whatever
// the delegated principal may do, the invoker may do too.
func TestDelegationNeverWidens(t *testing.T) {
	t.Parallel()
	prop := func(roleBits uint16, grants, scope uint64, action uint8) bool {
		var roles []Role
		for r := RoleUnknown + 1; r < roleCount; r++ {
			if roleBits&(1<<r) != 0 {
				roles = append(roles, r)
			}
		}
		sc := PermissionSet(scope)
		invoker := NewUser(orgA, "alice", roles, &sc)
		bot := Delegate(invoker, KindBot, "bot", PermissionSet(grants))
		if !bot.Permissions.SubsetOf(invoker.Permissions) {
			return false
		}
		a := Permission(action)
		if Decide(bot, a, OrgResource(orgA)).Allowed && !Decide(invoker, a, OrgResource(orgA)).Allowed {
			return false
		}
		// A second hop narrows again.
		sub := Delegate(bot, KindWorkflow, "wf", ^PermissionSet(0))
		return sub.Permissions.SubsetOf(bot.Permissions) && len(sub.OnBehalfOf) == 2
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 20000}); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownPermissionAlwaysDenied: no principal, however powerful, is
// allowed a permission outside the catalog.
func TestUnknownPermissionAlwaysDenied(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	everything := Principal{Subject: "x", Kind: KindUser, OrgID: orgA, Roles: []Role{RoleOwner}, Permissions: ^PermissionSet(0)}
	for i := 0; i < 10000; i++ {
		p := Permission(rng.IntN(256))
		if p.Known() {
			continue
		}
		if d := Decide(everything, p, OrgResource(orgA)); d.Allowed {
			t.Fatalf("unknown permission %d allowed: %s", p, d.Reason())
		}
	}
	if _, err := ParsePermissions([]string{"bots:read", "bots:fly"}); err == nil {
		t.Fatal("ParsePermissions accepted an unknown name")
	}
	if _, err := ParsePermissions([]string{"orgs:create"}); err == nil {
		t.Fatal("ParsePermissions accepted the platform permission")
	}
}

func TestCatalogAndRoles(t *testing.T) {
	t.Parallel()
	required := []string{"org:read", "members:read", "members:manage", "service-accounts:manage", "bots:read",
		"bots:manage", "bots:run", "kb:read", "kb:write", "kb:manage", "datasources:read", "datasources:manage",
		"datasources:query", "analytics:run", "analytics:read", "workflows:read", "workflows:manage",
		"workflows:run", "inbox:read", "inbox:reply", "inbox:manage", "audit:read"}
	catalog := strings.Join(Catalog(), " ")
	for _, name := range required {
		p, ok := ParsePermission(name)
		if !ok || p.String() != name || !strings.Contains(catalog, name) {
			t.Errorf("permission %q missing from the catalog", name)
		}
		if !RoleOwner.Permissions().Has(p) {
			t.Errorf("owner lacks %s", name)
		}
	}
	for _, name := range RoleNames() {
		r, ok := ParseRole(name)
		if !ok || r.String() != name {
			t.Errorf("role %q does not round-trip", name)
		}
		if r.Permissions().Has(OrgsCreate) {
			t.Errorf("role %s holds the platform permission", name)
		}
		if !r.Permissions().SubsetOf(RoleOwner.Permissions()) {
			t.Errorf("role %s holds more than owner", name)
		}
	}
	if _, err := ParseRoles([]string{"owner", "owner"}); err == nil {
		t.Error("duplicate roles accepted")
	}
	if _, err := ParseRoles(nil); err == nil {
		t.Error("empty roles accepted")
	}
	if _, err := ParseRoles([]string{"superuser"}); err == nil {
		t.Error("unknown role accepted")
	}
}

func TestScope(t *testing.T) {
	t.Parallel()
	if _, err := NewPlatform("ops").Scope(); err == nil {
		t.Fatal("platform principal got a scope")
	}
	if _, err := (Principal{Kind: KindUser}).Scope(); err == nil {
		t.Fatal("principal without org got a scope")
	}
	s, err := user(RoleViewer).Scope()
	if err != nil || s.OrgID() != orgA || !s.Valid() {
		t.Fatalf("scope = %v, %v", s, err)
	}
	if (Scope{}).Valid() {
		t.Fatal("zero scope is valid")
	}
	if _, err := EventScope(""); err == nil {
		t.Fatal("event scope without org")
	}
}

var sink Decision

func BenchmarkDecide(b *testing.B) {
	p := NewUser(orgA, "alice", []Role{RoleViewer, RoleBuilder}, nil)
	restricted := Resource{OrgID: orgA, Restricted: true, Grants: []Grant{
		{Kind: GrantUser, Value: "bob", Permissions: NewPermissionSet(KBRead)},
		{Kind: GrantRole, Value: "builder", Permissions: NewPermissionSet(KBRead)},
	}}
	b.Run("role", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = Decide(p, BotsManage, OrgResource(orgA))
		}
	})
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = Decide(p, AuditRead, OrgResource(orgA))
		}
	})
	b.Run("grants", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = Decide(p, KBRead, restricted)
		}
	})
}

// TestDelegatedPrincipalIsNamedByItsInvoker: a bot acting for a user is
// allowed on a restricted resource exactly when the grants name that user
// (or one of the user's roles), never by its own id, and never when the
// user's own permissions lack the action.
func TestDelegatedPrincipalIsNamedByItsInvoker(t *testing.T) {
	t.Parallel()
	read := NewPermissionSet(KBRead)
	alice := NewUser("org-a", "alice", []Role{RoleMember}, nil)
	svc := NewServiceAccount("org-a", "svc-1", read, nil)
	viewerOnly := NewUser("org-a", "vic", []Role{RoleAuditor}, nil)
	grant := func(kind GrantSubjectKind, v string) Resource {
		return Resource{OrgID: "org-a", Restricted: true, Grants: []Grant{{Kind: kind, Value: v, Permissions: read}}}
	}
	tests := []struct {
		name    string
		invoker Principal
		res     Resource
		want    bool
	}{
		{"user grant names the invoker", alice, grant(GrantUser, "alice"), true},
		{"user grant naming the bot id", alice, grant(GrantUser, "bot-1"), false},
		{"role grant of the invoker", alice, grant(GrantRole, "member"), true},
		{"role grant of another role", alice, grant(GrantRole, "admin"), false},
		{"service grant names the invoking account", svc, grant(GrantService, "svc-1"), true},
		{"service grant naming the bot id", svc, grant(GrantService, "bot-1"), false},
		{"user grant for an invoker lacking the permission", viewerOnly, grant(GrantUser, "vic"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bot := Delegate(tt.invoker, KindBot, "bot-1", read)
			nested := Delegate(bot, KindBot, "bot-2", read)
			for _, p := range []Principal{bot, nested} {
				if got := Decide(p, KBRead, tt.res).Allowed; got != tt.want {
					t.Errorf("%s (chain %v): allowed = %v, want %v", p.Subject, p.OnBehalfOf, got, tt.want)
				}
			}
		})
	}
}

func TestParseGrant(t *testing.T) {
	tests := []struct {
		subject string
		perms   []string
		ok      bool
		kind    GrantSubjectKind
		value   string
		has     Permission
	}{
		{"user:alice", []string{"kb:read"}, true, GrantUser, "alice", KBRead},
		{"role:analyst", []string{"datasources:query"}, true, GrantRole, "analyst", DatasourcesQuery},
		{"service:sa-1", []string{"kb:write"}, true, GrantService, "sa-1", KBWrite},
		{"bot:b1", []string{"kb:read"}, false, 0, "", 0},
		{"alice", []string{"kb:read"}, false, 0, "", 0},
		{"user:bob", []string{"kb:everything"}, true, GrantUser, "bob", 0},
	}
	for _, tt := range tests {
		g, ok := ParseGrant(tt.subject, tt.perms)
		if ok != tt.ok || g.Kind != tt.kind || g.Value != tt.value {
			t.Errorf("ParseGrant(%q) = %+v, %v", tt.subject, g, ok)
			continue
		}
		if tt.has != 0 && !g.Permissions.Has(tt.has) {
			t.Errorf("ParseGrant(%q) lacks %s", tt.subject, tt.has)
		}
		if tt.has == 0 && g.Permissions != 0 {
			t.Errorf("ParseGrant(%q, %v) gives %v, want nothing", tt.subject, tt.perms, g.Permissions)
		}
	}
}

// TestReasonCodes: every reason has its own code, so a metric by reason
// never lumps two together.
func TestReasonCodes(t *testing.T) {
	t.Parallel()
	seen := map[string]Reason{}
	for r := ReasonNone; r <= ReasonDelegationLimit; r++ {
		c := r.Code()
		if c == "unknown" {
			t.Errorf("reason %d has no code", r)
		}
		if other, dup := seen[c]; dup {
			t.Errorf("reasons %d and %d share the code %q", other, r, c)
		}
		seen[c] = r
	}
}
