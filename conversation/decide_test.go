package conversation

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/palisadehq/palisade/domain/access"
)

// TestToolCallsNeverExceedTheIntersection is the property of delegation:
// over random bot grants, ask_bot chains, invoker roles, token scopes and
// knowledge-base grants, a search_knowledge call on a base is allowed
// exactly when every bot of the chain is granted the tool, the base and
// kb:read, and the invoker alone (no bot) may read the base. Anything
// outside that intersection is denied.
func TestToolCallsNeverExceedTheIntersection(t *testing.T) {
	t.Parallel()
	reg, err := NewRegistry(KnowledgeTools(nil, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	search, _ := reg.Lookup("search_knowledge")
	rng := rand.New(rand.NewPCG(1, 2))
	allRoles := []access.Role{access.RoleOwner, access.RoleAdmin, access.RoleBuilder, access.RoleAnalyst,
		access.RoleAgent, access.RoleMember, access.RoleViewer, access.RoleAuditor}
	perms := []access.Permission{access.KBRead, access.BotsRun, access.KBWrite, access.BotsRead}
	tools := []string{"search_knowledge", "ask_bot", "read_document"}
	bases := []string{"kb-1", "kb-2", "kb-3"}
	pick := func(n int) []int {
		var out []int
		for i := range n {
			if rng.IntN(2) == 0 {
				out = append(out, i)
			}
		}
		return out
	}
	allowedSeen, deniedSeen := 0, 0
	for i := 0; i < 20000; i++ {
		var roles []access.Role
		for _, j := range pick(len(allRoles)) {
			roles = append(roles, allRoles[j])
		}
		var scope *access.PermissionSet
		if rng.IntN(3) == 0 {
			var s access.PermissionSet
			for _, j := range pick(len(perms)) {
				s |= access.NewPermissionSet(perms[j])
			}
			scope = &s
		}
		invoker := access.NewUser("org-a", "alice", roles, scope)
		if rng.IntN(4) == 0 {
			var s access.PermissionSet
			for _, j := range pick(len(perms)) {
				s |= access.NewPermissionSet(perms[j])
			}
			invoker = access.NewServiceAccount("org-a", "svc-1", s, scope)
		}
		chain := make([]Bot, 1+rng.IntN(MaxDepth+1))
		for k := range chain {
			b := Bot{ID: "bot-" + string(rune('a'+k))}
			for _, j := range pick(len(tools)) {
				b.Tools = append(b.Tools, tools[j])
			}
			for _, j := range pick(len(bases)) {
				b.KnowledgeBases = append(b.KnowledgeBases, bases[j])
			}
			for _, j := range pick(len(perms)) {
				b.Permissions |= access.NewPermissionSet(perms[j])
			}
			chain[k] = b
		}
		base := bases[rng.IntN(len(bases))]
		res := access.Resource{OrgID: "org-a"}
		if rng.IntN(2) == 0 {
			res.Restricted = true
			switch rng.IntN(4) {
			case 0:
				res.Grants = []access.Grant{{Kind: access.GrantUser, Value: "alice", Permissions: access.NewPermissionSet(access.KBRead)}}
			case 1:
				res.Grants = []access.Grant{{Kind: access.GrantRole, Value: allRoles[rng.IntN(len(allRoles))].String(), Permissions: access.NewPermissionSet(access.KBRead)}}
			case 2:
				res.Grants = []access.Grant{{Kind: access.GrantService, Value: "svc-1", Permissions: access.NewPermissionSet(access.KBRead)}}
			case 3:
				// A grant naming a bot of the chain must never count.
				res.Grants = []access.Grant{{Kind: access.GrantUser, Value: chain[0].ID, Permissions: access.NewPermissionSet(access.KBRead)}}
			}
		}
		withinLimit := rng.IntN(10) != 0

		// What the runner does: delegate along the chain, intersect the
		// grants, decide the call, then the tool decides on the base.
		as := invoker
		for _, b := range chain {
			as = access.Delegate(as, access.KindBot, b.ID, b.Permissions)
		}
		granted := intersect(chain)
		d := decideCall(search, granted, as, access.Decision{Allowed: true}, nil, withinLimit)
		got := d.Allowed && slices.Contains(granted.KnowledgeBases, base) && access.Decide(as, access.KBRead, res).Allowed

		// What the intersection says, computed independently.
		want := withinLimit && access.Decide(invoker, access.KBRead, res).Allowed
		for _, b := range chain {
			want = want && slices.Contains(b.Tools, "search_knowledge") && slices.Contains(b.KnowledgeBases, base) &&
				b.Permissions.Has(access.KBRead)
		}
		if got != want {
			t.Fatalf("case %d: allowed = %v, want %v\ninvoker %+v\nchain %+v\nresource %+v\ndecision %s",
				i, got, want, invoker, chain, res, d.Reason())
		}
		if got {
			allowedSeen++
		} else {
			deniedSeen++
		}
	}
	if allowedSeen < 100 || deniedSeen < 100 {
		t.Fatalf("the generator is lopsided: %d allowed, %d denied", allowedSeen, deniedSeen)
	}
}

// TestDecideCallOrder: each refusal says why, in the documented order.
func TestDecideCallOrder(t *testing.T) {
	t.Parallel()
	reg, err := NewRegistry(KnowledgeTools(nil, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	search, _ := reg.Lookup("search_knowledge")
	bot := Bot{ID: "b", Tools: []string{"search_knowledge"}, Permissions: access.NewPermissionSet(access.KBRead)}
	member := access.NewUser("org-a", "alice", []access.Role{access.RoleMember}, nil)
	as := access.Delegate(member, access.KindBot, "b", bot.Permissions)
	viewerless := access.Delegate(access.NewUser("org-a", "vic", []access.Role{access.RoleAuditor}, nil), access.KindBot, "b", bot.Permissions)
	ok := access.Decision{Allowed: true}
	tests := []struct {
		name    string
		tool    *Tool
		bot     Bot
		as      access.Principal
		base    access.Decision
		argsErr error
		within  bool
		want    access.Reason
	}{
		{"unknown tool", nil, bot, as, ok, nil, true, access.ReasonUnknownTool},
		{"tool not granted", search, Bot{ID: "b", Permissions: bot.Permissions}, as, ok, nil, true, access.ReasonToolNotGranted},
		{"limit", search, bot, as, ok, nil, false, access.ReasonCallLimit},
		{"invalid arguments", search, bot, as, ok, errTest, true, access.ReasonInvalidArguments},
		{"invoker gone", search, bot, as, access.Decision{Code: access.ReasonMissingPermission}, nil, true, access.ReasonMissingPermission},
		{"invoker lacks kb:read", search, bot, viewerless, ok, nil, true, access.ReasonMissingPermission},
		{"allowed", search, bot, as, ok, nil, true, access.ReasonDelegationAllows},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideCall(tt.tool, tt.bot, tt.as, tt.base, tt.argsErr, tt.within)
			if d.Code != tt.want || d.Allowed != (tt.want == access.ReasonDelegationAllows) {
				t.Fatalf("decision %+v (%s), want code %d", d, d.Reason(), tt.want)
			}
		})
	}
}

var errTest = errorString("test")

type errorString string

func (e errorString) Error() string { return string(e) }

// BenchmarkAuthorizeToolCall is the cost of deciding one tool call on the
// allowed path: the chain's intersection and the decision. Resolving the
// invoker from the read models (effectiveNow) is not included: it is a
// read-model lookup, measured with the turn.
func BenchmarkAuthorizeToolCall(b *testing.B) {
	reg, err := NewRegistry(KnowledgeTools(nil, nil)...)
	if err != nil {
		b.Fatal(err)
	}
	search, _ := reg.Lookup("search_knowledge")
	bot := Bot{ID: "b", Tools: []string{"read_document", "search_knowledge"}, KnowledgeBases: []string{"kb-1"},
		Permissions: access.NewPermissionSet(access.KBRead)}
	as := access.Delegate(access.NewUser("org-a", "alice", []access.Role{access.RoleMember}, nil), access.KindBot, "b", bot.Permissions)
	ok := access.Decision{Allowed: true}
	b.Run("decide", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !decideCall(search, bot, as, ok, nil, true).Allowed {
				b.Fatal("denied")
			}
		}
	})
	chain := []Bot{bot, bot}
	b.Run("intersect-and-decide-depth-2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !decideCall(search, intersect(chain), as, ok, nil, true).Allowed {
				b.Fatal("denied")
			}
		}
	})
}

// TestIntersectDataSources: a data source is usable along an ask_bot chain
// only when every bot of the chain is granted it.
func TestIntersectDataSources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		chain [][]string
		want  []string
	}{
		{"one bot", [][]string{{"a", "b"}}, []string{"a", "b"}},
		{"callee granted more", [][]string{{"a"}, {"a", "b"}}, []string{"a"}},
		{"caller granted more", [][]string{{"a", "b"}, {"b"}}, []string{"b"}},
		{"disjoint", [][]string{{"a"}, {"b"}}, []string{}},
		{"three deep", [][]string{{"a", "b", "c"}, {"b", "c"}, {"c", "a"}}, []string{"c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := make([]Bot, len(tc.chain))
			for i, ds := range tc.chain {
				chain[i] = Bot{ID: "bot" + string(rune('0'+i)), DataSources: ds}
			}
			got := intersect(chain).DataSources
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("intersect = %v, want %v", got, tc.want)
			}
			if len(tc.chain) > 1 && len(chain[len(chain)-1].DataSources) != len(tc.chain[len(tc.chain)-1]) {
				t.Fatal("intersect changed the callee's own grants")
			}
		})
	}
}
