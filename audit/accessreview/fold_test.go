package accessreview_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/accessreview"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

const (
	org   = "0198c0de-0000-7000-8000-0000000000a1"
	other = "0198c0de-0000-7000-8000-0000000000b2"
)

var base = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// at is minute n of the story below.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }

// memLog is a log in memory that reads like eventstore.Store.ReadAll.
type memLog struct{ envs []eventstore.Envelope }

func (l *memLog) ReadAll(_ context.Context, after uint64, f eventstore.Filter, limit int) ([]eventstore.Envelope, error) {
	var out []eventstore.Envelope
	for _, env := range l.envs {
		if env.Position > after && f.Match(env) && len(out) < limit {
			out = append(out, env)
		}
	}
	return out, nil
}

// add records e in stream {category}-{orgID}_{entity} at minute n.
func (l *memLog) add(t testing.TB, orgID, category, entity string, n int, e domain.Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := eventstore.NewStreamName(category, orgID, entity)
	if err != nil {
		t.Fatal(err)
	}
	l.envs = append(l.envs, eventstore.Envelope{
		ID: uuid.New(), Type: e.EventType(), Stream: stream, Position: uint64(len(l.envs) + 1), Data: data,
		Metadata: eventstore.Metadata{OrgID: orgID, OccurredAt: at(n)},
	})
}

// story is one organization's history, minute by minute, with another
// organization's events interleaved:
//
//	0  org created, owner alice; carol added as admin
//	1  bob added as member
//	2  kb-1 created and granted to user:bob (kb:read); ds-1 created and
//	   granted to role:analyst; bot-1 created with kb-1 and ds-1
//	3  carol creates sa-1 with kb:read and members:manage, expiring at 30;
//	   alice creates sa-2 with bots:read, expiring at 20
//	4  bob removed
//	5  carol demoted to viewer
//	6  bob added again, as analyst
//	7  sa-1 revoked
//	8  the other organization grants its own base to user:bob
//	40 the organization closed
func story(t testing.TB) *memLog {
	l := &memLog{}
	l.add(t, org, tenancy.Category, org, 0, &tenancy.OrganizationCreated{OrgID: org, Name: "Acme", OwnerSub: "alice"})
	l.add(t, other, tenancy.Category, other, 0, &tenancy.OrganizationCreated{OrgID: other, Name: "Other", OwnerSub: "bob"})
	l.add(t, org, tenancy.Category, org, 0, &tenancy.MemberAdded{Sub: "carol", Roles: []string{"admin"}})
	l.add(t, org, tenancy.Category, org, 1, &tenancy.MemberAdded{Sub: "bob", Roles: []string{"member"}})
	l.add(t, org, knowledge.KnowledgeBaseCategory, "kb-1", 2, &knowledge.KnowledgeBaseCreated{ID: "kb-1", Name: "Handbook"})
	l.add(t, org, knowledge.KnowledgeBaseCategory, "kb-1", 2, &knowledge.KnowledgeBaseGrantsSet{Grants: []knowledge.Grant{{Subject: "user:bob", Permissions: []string{"kb:read"}}}})
	l.add(t, org, datasources.Category, "ds-1", 2, &datasources.DataSourceCreated{ID: "ds-1", Name: "Sales", Kind: datasources.SQLite})
	l.add(t, org, datasources.Category, "ds-1", 2, &datasources.DataSourceGrantsSet{Grants: []datasources.Grant{{Subject: "role:analyst", Permissions: []string{"datasources:query"}}}})
	l.add(t, org, bots.Category, "bot-1", 2, &bots.BotCreated{ID: "bot-1", Name: "Helper", Grants: bots.Grants{KnowledgeBases: []string{"kb-1"}, DataSources: []string{"ds-1"}}})
	l.add(t, org, tenancy.Category, org, 3, &tenancy.ServiceAccountCreated{ID: "sa-1", Name: "sync", Permissions: []string{"kb:read", "members:manage"}, CreatedBy: "carol", ExpiresAt: at(30)})
	l.add(t, org, tenancy.Category, org, 3, &tenancy.ServiceAccountCreated{ID: "sa-2", Name: "bots", Permissions: []string{"bots:read"}, CreatedBy: "alice", ExpiresAt: at(20)})
	l.add(t, org, tenancy.Category, org, 4, &tenancy.MemberRemoved{Sub: "bob"})
	l.add(t, org, tenancy.Category, org, 5, &tenancy.MemberRolesChanged{Sub: "carol", Roles: []string{"viewer"}})
	l.add(t, org, tenancy.Category, org, 6, &tenancy.MemberAdded{Sub: "bob", Roles: []string{"analyst"}})
	l.add(t, org, tenancy.Category, org, 7, &tenancy.ServiceAccountRevoked{ID: "sa-1"})
	l.add(t, other, knowledge.KnowledgeBaseCategory, "kb-x", 8, &knowledge.KnowledgeBaseCreated{ID: "kb-x", Name: "Theirs"})
	l.add(t, other, knowledge.KnowledgeBaseCategory, "kb-x", 8, &knowledge.KnowledgeBaseGrantsSet{Grants: []knowledge.Grant{{Subject: "user:bob", Permissions: []string{"kb:read"}}}})
	l.add(t, org, tenancy.Category, org, 40, &tenancy.OrganizationClosed{})
	return l
}

func fold(t testing.TB, l *memLog, n int) *accessreview.Snapshot {
	t.Helper()
	snap, err := accessreview.Fold(context.Background(), l, events.NewRegistry(), org, at(n))
	if err != nil {
		t.Fatalf("fold at %d: %v", n, err)
	}
	return snap
}

func names(perms ...access.Permission) []string { return access.NewPermissionSet(perms...).Names() }

func TestSubjectAtEachMoment(t *testing.T) {
	t.Parallel()
	l := story(t)
	bobKB := []accessreview.ResourceGrant{{Resource: "kb:kb-1", Permissions: []string{"kb:read"}}}
	bobDS := accessreview.ResourceGrant{Resource: "datasource:ds-1", Permissions: []string{"datasources:query"}}
	viewer := access.RoleViewer.Permissions().Names()
	tests := []struct {
		name    string
		minute  int
		subject accessreview.Subject
		want    accessreview.SubjectAccess
	}{{
		name: "bob before he joined", minute: 0, subject: user("bob"),
		want: notMember("user:bob", 0),
	}, {
		name: "bob as member, before the base existed", minute: 1, subject: user("bob"),
		want: member("user:bob", 1, []string{"member"}, access.RoleMember.Permissions().Names(), nil, nil),
	}, {
		name: "bob granted the base", minute: 2, subject: user("bob"),
		want: member("user:bob", 2, []string{"member"}, access.RoleMember.Permissions().Names(), bobKB, nil),
	}, {
		name: "bob removed", minute: 4, subject: user("bob"),
		want: notMember("user:bob", 4),
	}, {
		name: "bob back as analyst: the base's grant names him again, the source's names his role", minute: 6, subject: user("bob"),
		want: member("user:bob", 6, []string{"analyst"}, access.RoleAnalyst.Permissions().Names(), append(slices.Clone(bobKB), bobDS), nil),
	}, {
		name: "the other organization's grant to bob is not this organization's", minute: 9, subject: user("bob"),
		want: member("user:bob", 9, []string{"analyst"}, access.RoleAnalyst.Permissions().Names(), append(slices.Clone(bobKB), bobDS), nil),
	}, {
		name: "carol as admin answers for sa-1 with all it lists", minute: 3, subject: user("carol"),
		want: member("user:carol", 3, []string{"admin"}, access.RoleAdmin.Permissions().Names(), nil,
			[]accessreview.ServiceAccountAccess{{ID: "sa-1", EffectivePermissions: names(access.KBRead, access.MembersManage)}}),
	}, {
		name: "carol demoted: sa-1 keeps only what a viewer holds", minute: 5, subject: user("carol"),
		want: member("user:carol", 5, []string{"viewer"}, viewer, nil,
			[]accessreview.ServiceAccountAccess{{ID: "sa-1", EffectivePermissions: names(access.KBRead)}}),
	}, {
		name: "sa-1 revoked: nothing", minute: 7, subject: user("carol"),
		want: member("user:carol", 7, []string{"viewer"}, viewer, nil,
			[]accessreview.ServiceAccountAccess{{ID: "sa-1", EffectivePermissions: []string{}}}),
	}, {
		name: "sa-1 under its admin creator", minute: 3, subject: service("sa-1"),
		want: account("service:sa-1", 3, "carol", names(access.KBRead, access.MembersManage)),
	}, {
		name: "sa-1 after its creator's demotion", minute: 5, subject: service("sa-1"),
		want: account("service:sa-1", 5, "carol", names(access.KBRead)),
	}, {
		name: "sa-1 revoked", minute: 7, subject: service("sa-1"),
		want: notMember("service:sa-1", 7),
	}, {
		name: "sa-2 before it expires", minute: 19, subject: service("sa-2"),
		want: account("service:sa-2", 19, "alice", names(access.BotsRead)),
	}, {
		name: "sa-2 at its expiry", minute: 20, subject: service("sa-2"),
		want: notMember("service:sa-2", 20),
	}, {
		name: "an account that never existed", minute: 9, subject: service("sa-9"),
		want: notMember("service:sa-9", 9),
	}, {
		name: "the owner once the organization closed", minute: 40, subject: user("alice"),
		want: notMember("user:alice", 40),
	}, {
		name: "a member of an issuer the organization never bound", minute: 9, subject: user("https://idp.example|bob"),
		want: notMember("user:https://idp.example|bob", 9),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fold(t, l, tt.minute).Subject(tt.subject)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResourceAtEachMoment(t *testing.T) {
	t.Parallel()
	l := story(t)
	kbPerms := []string{"kb:read"}
	tests := []struct {
		name     string
		minute   int
		resource accessreview.Resource
		want     []accessreview.SubjectVia
		bots     []string
	}{{
		name: "the base before it existed", minute: 1, resource: kb("kb-1"),
	}, {
		// Owners and admins manage a restricted base but do not read
		// its documents without a grant; sa-1 holds kb:read but no grant.
		name: "the base granted to bob", minute: 3, resource: kb("kb-1"),
		want: []accessreview.SubjectVia{{Subject: "user:bob", Via: "grant:user:bob", Permissions: kbPerms}},
		bots: []string{"bot-1"},
	}, {
		name: "bob removed", minute: 4, resource: kb("kb-1"),
		bots: []string{"bot-1"},
	}, {
		name: "bob back", minute: 6, resource: kb("kb-1"),
		want: []accessreview.SubjectVia{{Subject: "user:bob", Via: "grant:user:bob", Permissions: kbPerms}},
		bots: []string{"bot-1"},
	}, {
		name: "the source: managers only, until an analyst exists", minute: 3, resource: ds("ds-1"),
		want: []accessreview.SubjectVia{
			{Subject: "user:alice", Via: "role:owner", Permissions: names(access.DatasourcesQuery, access.DatasourcesManage)},
			{Subject: "user:carol", Via: "role:admin", Permissions: names(access.DatasourcesQuery, access.DatasourcesManage)},
		},
		bots: []string{"bot-1"},
	}, {
		name: "the source after bob came back as analyst and carol was demoted", minute: 6, resource: ds("ds-1"),
		want: []accessreview.SubjectVia{
			{Subject: "user:alice", Via: "role:owner", Permissions: names(access.DatasourcesQuery, access.DatasourcesManage)},
			{Subject: "user:bob", Via: "grant:role:analyst", Permissions: names(access.DatasourcesQuery)},
		},
		bots: []string{"bot-1"},
	}, {
		name: "the bot: members with bots:read, and sa-2 by its list", minute: 3, resource: bot("bot-1"),
		want: []accessreview.SubjectVia{
			{Subject: "user:alice", Via: "role:owner", Permissions: names(access.BotsRead, access.BotsRun, access.BotsManage)},
			{Subject: "user:bob", Via: "role:member", Permissions: names(access.BotsRead, access.BotsRun)},
			{Subject: "user:carol", Via: "role:admin", Permissions: names(access.BotsRead, access.BotsRun, access.BotsManage)},
			{Subject: "service:sa-2", Via: "service-account", Permissions: names(access.BotsRead)},
		},
	}, {
		name: "another organization's base is no base here", minute: 9, resource: kb("kb-x"),
	}, {
		name: "nobody once the organization closed", minute: 40, resource: bot("bot-1"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fold(t, l, tt.minute).Resource(tt.resource)
			want := accessreview.ResourceAccess{Resource: tt.resource.String(), At: at(tt.minute), Subjects: tt.want, Bots: tt.bots}
			if want.Subjects == nil {
				want.Subjects = []accessreview.SubjectVia{}
			}
			if want.Bots == nil {
				want.Bots = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestFoldStopsAtTheMoment: the fold takes every event up to and at the
// moment, none after, and never another organization's.
func TestFoldStopsAtTheMoment(t *testing.T) {
	t.Parallel()
	l := story(t)
	for _, tt := range []struct{ minute, events int }{{-1, 0}, {0, 2}, {2, 8}, {7, 14}, {100, 15}} {
		if got := fold(t, l, tt.minute).Events; got != tt.events {
			t.Errorf("at minute %d folded %d events, want %d", tt.minute, got, tt.events)
		}
	}
	snap := accessreview.NewSnapshot(org, at(9))
	if err := snap.Apply(l.envs[1], events.NewRegistry()); err == nil {
		t.Error("a snapshot folded another organization's event")
	}
}

func user(sub string) accessreview.Subject {
	return accessreview.Subject{Kind: access.KindUser, ID: sub}
}

func service(id string) accessreview.Subject {
	return accessreview.Subject{Kind: access.KindService, ID: id}
}

func kb(id string) accessreview.Resource {
	return accessreview.Resource{Kind: accessreview.KnowledgeBase, ID: id}
}
func ds(id string) accessreview.Resource {
	return accessreview.Resource{Kind: accessreview.DataSource, ID: id}
}
func bot(id string) accessreview.Resource {
	return accessreview.Resource{Kind: accessreview.Bot, ID: id}
}

func notMember(subject string, minute int) accessreview.SubjectAccess {
	return accessreview.SubjectAccess{Subject: subject, At: at(minute), Roles: []string{}, Permissions: []string{},
		Grants: []accessreview.ResourceGrant{}, ServiceAccounts: []accessreview.ServiceAccountAccess{}}
}

func member(subject string, minute int, roles, perms []string, grants []accessreview.ResourceGrant, sas []accessreview.ServiceAccountAccess) accessreview.SubjectAccess {
	a := notMember(subject, minute)
	a.Member, a.Roles, a.Permissions = true, roles, perms
	if grants != nil {
		a.Grants = grants
	}
	if sas != nil {
		a.ServiceAccounts = sas
	}
	return a
}

func account(subject string, minute int, createdBy string, perms []string) accessreview.SubjectAccess {
	a := notMember(subject, minute)
	a.Member, a.Permissions, a.CreatedBy = true, perms, createdBy
	return a
}
