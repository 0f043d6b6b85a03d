package accessreview

import (
	"slices"
	"time"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
)

// SubjectAccess is what one subject could do at a moment. A subject that
// could not act then (not a member, a member of an issuer no longer bound,
// a revoked or expired service account or one whose creator was not a
// member, any subject of a closed organization) has Member false and empty
// lists.
type SubjectAccess struct {
	Subject string    `json:"subject"`
	At      time.Time `json:"at"`
	Member  bool      `json:"member"`
	// Roles of a member; a service account has none.
	Roles []string `json:"roles"`
	// Permissions are the organization-wide ones: a member's roles', a
	// service account's list ∩ its creator's.
	Permissions []string `json:"permissions"`
	// Grants are the resource grants that name the subject (itself, one
	// of its roles, or the service account), with what they actually give
	// it: a grant never gives a permission the subject lacks org-wide.
	Grants []ResourceGrant `json:"grants"`
	// ServiceAccounts a member created (answers for), each with its
	// effective permissions then (none if revoked or expired).
	ServiceAccounts []ServiceAccountAccess `json:"service_accounts"`
	// CreatedBy is the member a service account answered to.
	CreatedBy string `json:"created_by,omitempty"`
}

// ResourceGrant is what the grants of one resource give a subject.
type ResourceGrant struct {
	Resource    string   `json:"resource"`
	Permissions []string `json:"permissions"`
}

// ServiceAccountAccess is one service account and what it could do.
type ServiceAccountAccess struct {
	ID                   string   `json:"id"`
	EffectivePermissions []string `json:"effective_permissions"`
}

// ResourceAccess is who could read one resource at a moment. A resource
// that did not exist then (or is another organization's) has no subjects.
type ResourceAccess struct {
	Resource string       `json:"resource"`
	At       time.Time    `json:"at"`
	Subjects []SubjectVia `json:"subjects"`
	// Bots whose grants name the resource: they read it only for a
	// subject listed above, within what that subject may do.
	Bots []string `json:"bots"`
}

// SubjectVia is one subject that could read a resource, what allowed it,
// and every permission it held on the resource.
type SubjectVia struct {
	Subject string `json:"subject"`
	// Via is "role:ROLE" (the role allowed it, or a manager's role kept
	// it on a restricted resource), "grant:SUBJECT" (the resource's grant
	// naming user:SUB, role:ROLE or service:ID) or "service-account" (the
	// account's own list).
	Via         string   `json:"via"`
	Permissions []string `json:"permissions"`
}

// Subject answers what s could do at the snapshot's moment.
func (s *Snapshot) Subject(sub Subject) SubjectAccess {
	out := SubjectAccess{
		Subject: sub.String(), At: s.At,
		Roles: []string{}, Permissions: []string{}, Grants: []ResourceGrant{}, ServiceAccounts: []ServiceAccountAccess{},
	}
	p, ok := s.principal(sub)
	if !ok {
		return out
	}
	out.Member = true
	out.Roles = access.RoleStrings(p.Roles)
	out.Permissions = p.Permissions.Names()
	out.CreatedBy = p.CreatedBy
	out.Grants = s.grantsNaming(p)
	if sub.Kind == access.KindUser {
		for _, id := range s.org.ServiceAccounts() {
			st, _ := s.org.ServiceAccountStanding(id, s.At)
			if st.CreatedBy == p.Subject {
				out.ServiceAccounts = append(out.ServiceAccounts, ServiceAccountAccess{ID: id, EffectivePermissions: st.Effective.Names()})
			}
		}
	}
	return out
}

// principal is the principal sub acted as then, and whether it could act.
func (s *Snapshot) principal(sub Subject) (access.Principal, bool) {
	switch sub.Kind {
	case access.KindUser:
		issuer, name := access.SplitPrincipalSubject(sub.ID)
		return s.org.UserPrincipal(tenancy.MemberID{Issuer: issuer, Sub: name})
	case access.KindService:
		return s.org.ServiceAccountPrincipal(sub.ID, s.At)
	}
	return access.Principal{}, false
}

// principals is every subject that could act then: members, then service
// accounts, each in order.
func (s *Snapshot) principals() []access.Principal {
	var out []access.Principal
	for _, id := range s.org.Members() {
		if p, ok := s.org.UserPrincipal(id); ok {
			out = append(out, p)
		}
	}
	for _, id := range s.org.ServiceAccounts() {
		if p, ok := s.org.ServiceAccountPrincipal(id, s.At); ok {
			out = append(out, p)
		}
	}
	return out
}

// grantsNaming lists, per knowledge base and data source that existed,
// what the grants naming p gave it.
func (s *Snapshot) grantsNaming(p access.Principal) []ResourceGrant {
	out := []ResourceGrant{}
	for _, id := range sortedKeys(s.bases) {
		if kb := s.bases[id]; kb.Exists() {
			if perms := grantedBy(p, knowledge.Resource(s.OrgID, kb.Grants())); perms != 0 {
				out = append(out, ResourceGrant{Resource: Resource{KnowledgeBase, id}.String(), Permissions: perms.Names()})
			}
		}
	}
	for _, id := range sortedKeys(s.sources) {
		if src := s.sources[id]; src.Exists() {
			if perms := grantedBy(p, datasources.Resource(s.OrgID, src.Grants())); perms != 0 {
				out = append(out, ResourceGrant{Resource: Resource{DataSource, id}.String(), Permissions: perms.Names()})
			}
		}
	}
	return out
}

// grantedBy is what the grants of res give p, each grant decided alone
// by access.Decide.
func grantedBy(p access.Principal, res access.Resource) access.PermissionSet {
	var perms access.PermissionSet
	for _, g := range res.Grants {
		for _, perm := range g.Permissions.Permissions() {
			if d := access.Decide(p, perm, onlyGrant(res, g)); d.Allowed && d.Code == access.ReasonGrantAllows {
				perms |= access.NewPermissionSet(perm)
			}
		}
	}
	return perms
}

func onlyGrant(res access.Resource, g access.Grant) access.Resource {
	return access.Resource{OrgID: res.OrgID, Restricted: true, Grants: []access.Grant{g}}
}

// rule is how the server decides reading one kind of resource, and which
// permissions on it a review reports.
type rule struct {
	read   func(access.Principal, access.Resource) access.Decision
	decide func(access.Principal, access.Permission, access.Resource) access.Decision
	perms  []access.Permission
}

// rules: a knowledge base's documents and search need kb:read on the base
// (its grants, when it has some); a data source's data, datasources.DecideQuery
// (default deny: a grant, or managing sources); a bot, bots:read on the
// organization.
var rules = map[ResourceKind]rule{
	KnowledgeBase: {
		read: func(p access.Principal, res access.Resource) access.Decision {
			return access.Decide(p, access.KBRead, res)
		},
		decide: access.Decide,
		perms:  []access.Permission{access.KBRead, access.KBWrite, access.KBManage},
	},
	DataSource: {
		read: datasources.DecideQuery,
		decide: func(p access.Principal, perm access.Permission, res access.Resource) access.Decision {
			if perm == access.DatasourcesQuery {
				return datasources.DecideQuery(p, res)
			}
			return access.Decide(p, perm, res)
		},
		perms: []access.Permission{access.DatasourcesQuery, access.DatasourcesManage},
	},
	Bot: {
		read: func(p access.Principal, res access.Resource) access.Decision {
			return access.Decide(p, access.BotsRead, res)
		},
		decide: access.Decide,
		perms:  []access.Permission{access.BotsRead, access.BotsRun, access.BotsManage},
	},
}

// Resource answers who could read r at the snapshot's moment.
func (s *Snapshot) Resource(r Resource) ResourceAccess {
	out := ResourceAccess{Resource: r.String(), At: s.At, Subjects: []SubjectVia{}, Bots: []string{}}
	res, ok := s.resource(r)
	if !ok {
		return out
	}
	rl := rules[r.Kind]
	for _, p := range s.principals() {
		d := rl.read(p, res)
		if !d.Allowed {
			continue
		}
		var perms access.PermissionSet
		for _, perm := range rl.perms {
			if rl.decide(p, perm, res).Allowed {
				perms |= access.NewPermissionSet(perm)
			}
		}
		out.Subjects = append(out.Subjects, SubjectVia{Subject: subjectName(p), Via: via(p, d, res), Permissions: perms.Names()})
	}
	if r.Kind != Bot {
		for _, id := range sortedKeys(s.bots) {
			b := s.bots[id]
			g := b.Grants()
			list := g.KnowledgeBases
			if r.Kind == DataSource {
				list = g.DataSources
			}
			if b.Exists() && !b.Archived() && slices.Contains(list, r.ID) {
				out.Bots = append(out.Bots, id)
			}
		}
	}
	return out
}

// resource is what access.Decide needs of r as it was, and whether r
// existed.
func (s *Snapshot) resource(r Resource) (access.Resource, bool) {
	switch r.Kind {
	case KnowledgeBase:
		if kb := s.bases[r.ID]; kb != nil && kb.Exists() {
			return knowledge.Resource(s.OrgID, kb.Grants()), true
		}
	case DataSource:
		if src := s.sources[r.ID]; src != nil && src.Exists() {
			return datasources.Resource(s.OrgID, src.Grants()), true
		}
	case Bot:
		if b := s.bots[r.ID]; b != nil && b.Exists() {
			return access.OrgResource(s.OrgID), true
		}
	}
	return access.Resource{}, false
}

// via names what allowed decision d of p on res.
func via(p access.Principal, d access.Decision, res access.Resource) string {
	switch d.Code {
	case access.ReasonRoleAllows, access.ReasonManagerOverride:
		return "role:" + d.Role.String()
	case access.ReasonServiceAccountAllows:
		return "service-account"
	case access.ReasonGrantAllows:
		for _, g := range res.Grants {
			if e := access.Decide(p, d.Permission, onlyGrant(res, g)); e.Allowed && e.Code == access.ReasonGrantAllows {
				return "grant:" + g.Subject()
			}
		}
	}
	return "decision:" + d.Reason()
}

func subjectName(p access.Principal) string {
	return Subject{Kind: p.Kind, ID: p.Subject}.String()
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
