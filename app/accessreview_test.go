package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain/datasources"
)

// moment is an instant between two steps of a test: every event of the
// steps before it occurred at or before it, every later one after it.
func moment(t *testing.T) time.Time {
	t.Helper()
	time.Sleep(5 * time.Millisecond)
	at := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	return at
}

func (h *harness) reviewSubject(token, subject string, at time.Time) accessreview.SubjectAccess {
	h.t.Helper()
	var a accessreview.SubjectAccess
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/access?subject="+url.QueryEscape(subject)+"&at="+at.Format(time.RFC3339Nano), token, nil).json(h.t, &a)
	if a.Subject != subject || !a.At.Equal(at) {
		h.t.Fatalf("asked about %s at %s, answered %s at %s", subject, at, a.Subject, a.At)
	}
	return a
}

func (h *harness) reviewResource(token, resource string, at time.Time) accessreview.ResourceAccess {
	h.t.Helper()
	var a accessreview.ResourceAccess
	h.must(http.StatusOK, http.MethodGet, "/v1/audit/access?resource="+url.QueryEscape(resource)+"&at="+at.Format(time.RFC3339Nano), token, nil).json(h.t, &a)
	if a.Resource != resource || !a.At.Equal(at) {
		h.t.Fatalf("asked about %s at %s, answered %s at %s", resource, at, a.Resource, a.At)
	}
	return a
}

func listed(a accessreview.ResourceAccess, subject string) (accessreview.SubjectVia, bool) {
	i := slices.IndexFunc(a.Subjects, func(s accessreview.SubjectVia) bool { return s.Subject == subject })
	if i < 0 {
		return accessreview.SubjectVia{}, false
	}
	return a.Subjects[i], true
}

func granted(a accessreview.SubjectAccess, resource, permission string) bool {
	return slices.ContainsFunc(a.Grants, func(g accessreview.ResourceGrant) bool {
		return g.Resource == resource && slices.Contains(g.Permissions, permission)
	})
}

// TestAccessReviewPointInTime: bob is granted a restricted knowledge base,
// loses it (the grant is taken away, then he is removed), and gets it back
// (added again, granted again). At each step his real request to the base's
// documents is recorded; afterwards the access review, asked about each of
// those moments, says exactly what the server did then, about bob and
// about the base.
func TestAccessReviewPointInTime(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	bob := h.addMember(org, owner, "bob", "member")
	kb := h.createKB(owner, "Handbook")
	docs := "/v1/knowledge-bases/" + kb + "/documents"
	grant := func(subjects ...string) {
		grants := []map[string]any{}
		for _, s := range subjects {
			grants = append(grants, map[string]any{"subject": s, "permissions": []string{"kb:read"}})
		}
		h.must(http.StatusOK, http.MethodPut, "/v1/knowledge-bases/"+kb+"/grants", owner, map[string]any{"grants": grants})
	}

	type step struct {
		name   string
		at     time.Time
		status int // bob's GET of the base's documents
		member bool
	}
	var steps []step
	record := func(name string, member bool) {
		status := h.do(http.MethodGet, docs, bob, nil).status
		steps = append(steps, step{name: name, at: moment(t), status: status, member: member})
	}

	grant("user:bob", "role:admin")
	record("granted", true)
	grant("role:admin")
	record("grant taken away", true)
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/bob", owner, nil)
	record("removed", false)
	bob = h.addMember(org, owner, "bob", "member")
	grant("user:bob", "role:admin")
	record("granted again", true)

	// What the server did: the first and the last allowed, the others not.
	if got := []int{steps[0].status, steps[1].status, steps[2].status, steps[3].status}; !slices.Equal(got, []int{200, 404, 401, 200}) {
		t.Fatalf("bob's reads answered %v, want [200 404 401 200]", got)
	}
	for _, s := range steps {
		allowed := s.status == http.StatusOK
		who := h.reviewSubject(auditor, "user:bob", s.at)
		if who.Member != s.member || granted(who, "kb:"+kb, "kb:read") != allowed {
			t.Errorf("%s: review of bob says member %v, grants %+v; the server answered %d", s.name, who.Member, who.Grants, s.status)
		}
		if s.member && !slices.Equal(who.Roles, []string{"member"}) {
			t.Errorf("%s: bob's roles %v, want [member]", s.name, who.Roles)
		}
		readers := h.reviewResource(auditor, "kb:"+kb, s.at)
		entry, ok := listed(readers, "user:bob")
		if ok != allowed || (ok && (entry.Via != "grant:user:bob" || !slices.Contains(entry.Permissions, "kb:read"))) {
			t.Errorf("%s: review of the base lists bob %v (%+v); the server answered %d", s.name, ok, entry, s.status)
		}
		// The owner holds kb:read but no grant: the server refuses her
		// the documents too (403: she manages the base, so she may know of it),
		// and the review does not list her.
		if _, ok := listed(readers, "user:alice"); ok {
			t.Errorf("%s: the owner is listed as a reader of a base granted to others: %+v", s.name, readers.Subjects)
		}
	}
	h.must(http.StatusForbidden, http.MethodGet, docs, owner, nil)
	// Before the organization existed, nobody was anything.
	if who := h.reviewSubject(auditor, "user:alice", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); who.Member || len(who.Permissions) != 0 {
		t.Errorf("alice in 2000: %+v", who)
	}
}

// TestAccessReviewServiceAccountFollowsCreator: a service account's answer
// follows its creator's demotion, as its requests did.
func TestAccessReviewServiceAccountFollowsCreator(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	admin := h.addMember(org, owner, "adam", "admin")
	var sa struct{ ID, Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", admin,
		map[string]any{"name": "onboarding", "permissions": onboardingPermissions()}).json(t, &sa)

	before := h.do(http.MethodPost, "/v1/members", sa.Token, map[string]any{"sub": "newbie-1", "roles": []string{"viewer"}}).status
	t1 := moment(t)
	h.must(http.StatusOK, http.MethodPut, "/v1/members/adam", owner, map[string]any{"roles": []string{"viewer"}})
	after := h.do(http.MethodPost, "/v1/members", sa.Token, map[string]any{"sub": "newbie-2", "roles": []string{"viewer"}}).status
	t2 := moment(t)
	h.must(http.StatusNoContent, http.MethodDelete, "/v1/service-accounts/"+sa.ID, owner, nil)
	revoked := h.do(http.MethodGet, "/v1/members", sa.Token, nil).status
	t3 := moment(t)
	if before != http.StatusCreated || after != http.StatusForbidden || revoked != http.StatusUnauthorized {
		t.Fatalf("the account's requests answered %d, %d, %d; want 201, 403, 401", before, after, revoked)
	}

	for _, tt := range []struct {
		name   string
		at     time.Time
		member bool
		perms  []string
	}{
		// The account holds the viewer's permissions besides
		// members:manage (to add viewers); demoted to viewer, its creator
		// keeps it all of them but members:manage.
		{"creator admin", t1, true, onboardingNames(true)},
		{"creator demoted", t2, true, onboardingNames(false)},
		{"revoked", t3, false, []string{}},
	} {
		got := h.reviewSubject(owner, "service:"+sa.ID, tt.at)
		if got.Member != tt.member || !slices.Equal(got.Permissions, tt.perms) {
			t.Errorf("%s: review says member %v with %v, want %v with %v", tt.name, got.Member, got.Permissions, tt.member, tt.perms)
		}
		creator := h.reviewSubject(owner, "user:adam", tt.at)
		if len(creator.ServiceAccounts) != 1 || creator.ServiceAccounts[0].ID != sa.ID || !slices.Equal(creator.ServiceAccounts[0].EffectivePermissions, tt.perms) {
			t.Errorf("%s: adam answers for %+v, want %s with %v", tt.name, creator.ServiceAccounts, sa.ID, tt.perms)
		}
	}
}

// TestAccessReviewResources: who could read a data source (default deny,
// then a grant to a role) and a bot, matched against the server's answers;
// another organization's subjects and resources are nothing here; the
// review needs audit:read.
func TestAccessReviewResources(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	org, owner := h.createOrg("Acme", "alice")
	ana := h.addMember(org, owner, "ana", "analyst")
	viewer := h.addMember(org, owner, "vic", "viewer")
	source := createSource(t, h, owner, sqliteSales(t, h, org, 3), []string{"sales"})
	bot := h.createBot(owner, "Helpdesk")

	denied := h.do(http.MethodGet, "/v1/data-sources/"+source, ana, nil).status
	t1 := moment(t)
	setSourceGrants(t, h, owner, source, datasources.Grant{Subject: "role:analyst", Permissions: []string{"datasources:query"}})
	allowed := h.do(http.MethodGet, "/v1/data-sources/"+source, ana, nil).status
	t2 := moment(t)
	if denied != http.StatusNotFound || allowed != http.StatusOK {
		t.Fatalf("ana's reads of the source answered %d then %d, want 404 then 200", denied, allowed)
	}
	r1 := h.reviewResource(owner, "datasource:"+source, t1)
	if _, ok := listed(r1, "user:ana"); ok {
		t.Errorf("before the grant the review lists ana: %+v", r1.Subjects)
	}
	if e, ok := listed(r1, "user:alice"); !ok || e.Via != "role:owner" {
		t.Errorf("before the grant the owner (who manages sources) is not listed by her role: %+v", r1.Subjects)
	}
	r2 := h.reviewResource(owner, "datasource:"+source, t2)
	if e, ok := listed(r2, "user:ana"); !ok || e.Via != "grant:role:analyst" || !slices.Equal(e.Permissions, []string{"datasources:query"}) {
		t.Errorf("after the grant the review lists ana as %+v, %v", e, ok)
	}
	if _, ok := listed(r2, "user:vic"); ok {
		t.Errorf("a viewer is listed as a reader of the source: %+v", r2.Subjects)
	}

	h.must(http.StatusOK, http.MethodGet, "/v1/bots/"+bot, viewer, nil)
	bots := h.reviewResource(owner, "bot:"+bot, moment(t))
	for _, want := range []struct{ subject, via string }{{"user:alice", "role:owner"}, {"user:ana", "role:analyst"}, {"user:vic", "role:viewer"}} {
		if e, ok := listed(bots, want.subject); !ok || e.Via != want.via {
			t.Errorf("bot readers %+v: want %s via %s", bots.Subjects, want.subject, want.via)
		}
	}

	// Another organization: its owner, its members and its resources are
	// nothing here, whatever they are there.
	other, zed := h.createOrg("Other", "zed")
	h.addMember(other, zed, "ana", "owner")
	theirs := h.createKB(zed, "Theirs")
	now := moment(t)
	if a := h.reviewSubject(owner, "user:zed", now); a.Member || len(a.Roles)+len(a.Permissions)+len(a.Grants)+len(a.ServiceAccounts) != 0 {
		t.Errorf("another organization's owner: %+v", a)
	}
	if a := h.reviewSubject(owner, "user:ana", now); !slices.Equal(a.Roles, []string{"analyst"}) {
		t.Errorf("ana here is an analyst, whatever she is elsewhere: %+v", a)
	}
	if a := h.reviewResource(owner, "kb:"+theirs, now); len(a.Subjects) != 0 || len(a.Bots) != 0 {
		t.Errorf("another organization's base: %+v", a)
	}
	if a := h.reviewResource(zed, "datasource:"+source, now); len(a.Subjects) != 0 {
		t.Errorf("the other organization sees readers of this one's source: %+v", a)
	}

	// audit:read is needed; bad parameters are 400.
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/access?subject=user:alice", viewer, nil)
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/access?resource=bot:"+bot, ana, nil)
	for _, q := range []string{"", "?subject=alice", "?resource=doc:1", "?subject=user:alice&at=yesterday", "?subject=user:a&resource=kb:b"} {
		h.must(http.StatusBadRequest, http.MethodGet, "/v1/audit/access"+q, owner, nil)
	}
}

// onboardingNames are onboardingPermissions sorted, with or without
// members:manage.
func onboardingNames(manage bool) []string {
	names := slices.DeleteFunc(onboardingPermissions(), func(n string) bool { return !manage && n == "members:manage" })
	slices.Sort(names)
	return names
}
