package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/domain/access"
)

// ---------------------------------------------------------------------------
// Routes: what the suite knows about every endpoint.

// isoVar says what a route's path variable names.
type isoVar int

const (
	isoNoVar isoVar = iota
	isoBotID
	isoMemberSub
	isoServiceAccountID
	isoKBID
	// isoDocument names a knowledge base and one of its documents ({id}
	// and {doc}).
	isoDocument
	// isoKBIDs names a list of knowledge bases (a search's
	// knowledge_base_ids).
	isoKBIDs
	// isoOrgID names an organization (the platform's quota route).
	isoOrgID
	// isoConversationID names a conversation with a bot.
	isoConversationID
	// isoBodyBotID names a bot in a body (a new conversation's bot_id).
	isoBodyBotID
	// isoDataSourceID names a data source.
	isoDataSourceID
	// isoAnalyticsJobID names an analytics job.
	isoAnalyticsJobID
	// isoBodySourceID names a data source in a body (a job's
	// data_source_id).
	isoBodySourceID
	// isoCorrelationID names a request (a narrative's correlation id).
	isoCorrelationID
	// isoJobID names a process job (an ingestion, an analytics query).
	isoJobID
)

// isoVarCount is how many path variables a value of kind fills.
func isoVarCount(kind isoVar) int {
	switch kind {
	case isoNoVar, isoKBIDs, isoBodyBotID, isoBodySourceID:
		return 0
	case isoDocument:
		return 2
	}
	return 1
}

// isoBody is one request body to try, with the permissions it needs on top
// of the route's.
type isoBody struct {
	v     any
	needs []access.Permission
}

// isoRoute is how the suite exercises one endpoint.
type isoRoute struct {
	// public routes live outside /v1 and need no token.
	public bool
	// perm is what the caller needs (access.OrgsCreate: the platform only).
	perm access.Permission
	// usersOnly: service accounts are refused even when they hold perm.
	usersOnly bool
	pathVar   isoVar
	// bodies returns the bodies to send as caller (nil: no body); they may
	// quote the victims' texts and identifiers (naming a victim's resource
	// where the route expects an identifier is bodyVar's business).
	bodies func(attacker *isoOrg, caller string, victims []*isoOrg) []isoBody
	// bodyVar says what identifiers the body names, and bodyWith returns
	// the body naming ids, for a route that takes them in its body.
	bodyVar  isoVar
	bodyWith func(attacker *isoOrg, caller string, ids []string) any
	// okStatus is what a permitted collection command answers (0: 201).
	okStatus int
	// queries returns query strings to try on a collection (or, for a
	// route with a path variable, on every value of it); namesVictim
	// marks the ones that name a victim's streams, actors or requests.
	queries func(victims []*isoOrg) []isoQuery
}

type isoQuery struct {
	q           string
	namesVictim bool
}

func isoNoBody(*isoOrg, string, []*isoOrg) []isoBody { return []isoBody{{}} }

// isoOwnersOnly is no body, for a route that needs owners:manage too.
func isoOwnersOnly(*isoOrg, string, []*isoOrg) []isoBody {
	return []isoBody{{needs: []access.Permission{access.OwnersManage}}}
}

// isoRoutes is every endpoint the suite can exercise, keyed "METHOD
// /template". A route the router serves that is missing here fails
// TestIsolationRouteCoverage and every probing test: add it here, with the
// identifier its path variable names, when adding an endpoint.
func isoRoutes() map[string]isoRoute {
	return map[string]isoRoute{
		"GET /healthz":               {public: true},
		"GET /readyz":                {public: true},
		"GET /metrics":               {public: true},
		"GET /openapi.json":          {public: true},
		"GET /.well-known/jwks.json": {public: true},

		"POST /v1/orgs": {perm: access.OrgsCreate, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]string{"name": o.titleCase() + " Shadow Org", "owner_sub": o.label + "-shadow-" + caller}}}
		}},
		"PUT /v1/orgs/{id}/quotas": {perm: access.OrgsCreate, pathVar: isoOrgID, bodies: func(*isoOrg, string, []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"max_bots": 1}}}
		}},
		// Closing an organization: tried with a confirmation that is not
		// the victim's name, so even a hole would close nothing (and show
		// as 422 where 403 is expected). TestCloseOrganization closes for real.
		"DELETE /v1/orgs/{id}": {perm: access.OrgsCreate, pathVar: isoOrgID, bodies: func(*isoOrg, string, []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"confirm": "not the name"}}}
		}},
		"GET /v1/org": {perm: access.OrgRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}}
			for _, v := range victims {
				// Parameters naming another org are ignored, never obeyed.
				out = append(out, isoQuery{q: "?org=" + v.id + "&org_id=" + v.id})
			}
			return out
		}},

		// Binding issuers: the issuer is in the query, so a bare collection
		// command is refused (403) or, when permitted, invalid (422).
		"GET /v1/org/issuers": {perm: access.MembersRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?org=" + v.id})
			}
			return out
		}},
		"PUT /v1/org/issuers":    {perm: access.MembersManage, okStatus: http.StatusUnprocessableEntity, bodies: isoOwnersOnly},
		"DELETE /v1/org/issuers": {perm: access.MembersManage, okStatus: http.StatusUnprocessableEntity, bodies: isoOwnersOnly},

		"POST /v1/members": {perm: access.MembersManage, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"sub": o.label + "-new-" + caller, "roles": []string{"viewer"}}}}
		}},
		"GET /v1/members": {perm: access.MembersRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?after=" + url.QueryEscape(v.subs[0])})
			}
			return out
		}},
		"GET /v1/members/{sub}": {perm: access.MembersRead, pathVar: isoMemberSub},
		"PUT /v1/members/{sub}": {perm: access.MembersManage, pathVar: isoMemberSub, bodies: func(*isoOrg, string, []*isoOrg) []isoBody {
			return []isoBody{
				{v: map[string]any{"roles": []string{"viewer"}}},
				{v: map[string]any{"roles": []string{"owner"}}, needs: []access.Permission{access.OwnersManage}},
			}
		}},
		"DELETE /v1/members/{sub}": {perm: access.MembersManage, pathVar: isoMemberSub},

		"POST /v1/service-accounts": {perm: access.ServiceAccountsManage, usersOnly: true, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-probe-robot-" + caller, "permissions": []string{"bots:read"}},
				needs: []access.Permission{access.BotsRead}}}
		}},
		"GET /v1/service-accounts": {perm: access.ServiceAccountsManage, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?after=" + v.sas[0]})
			}
			return out
		}},
		"DELETE /v1/service-accounts/{id}": {perm: access.ServiceAccountsManage, pathVar: isoServiceAccountID},
		"PUT /v1/service-accounts/{id}/creator": {perm: access.ServiceAccountsManage, pathVar: isoServiceAccountID, bodies: func(o *isoOrg, _ string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"sub": o.subs[0]}}}
		}},

		"POST /v1/bots": {perm: access.BotsManage, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-probe-bot-" + caller, "instructions": "probe"}}}
		}},
		"GET /v1/bots": {perm: access.BotsRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?include_archived=true&limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?include_archived=true&after=" + v.bots[0]})
			}
			return out
		}},
		"GET /v1/bots/{id}": {perm: access.BotsRead, pathVar: isoBotID},
		"PATCH /v1/bots/{id}": {perm: access.BotsManage, pathVar: isoBotID, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-hijacked", "instructions": "hijacked by " + caller}}}
		}},
		"DELETE /v1/bots/{id}": {perm: access.BotsManage, pathVar: isoBotID},

		"POST /v1/knowledge-bases": {perm: access.KBManage, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-probe-kb-" + caller, "description": "probe"}}}
		}},
		"GET /v1/knowledge-bases": {perm: access.KBRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}, {q: "?include_archived=true&limit=500"}}
			for _, v := range victims {
				for _, id := range append(slices.Clone(v.kbs), v.archivedKBs...) {
					out = append(out, isoQuery{q: "?include_archived=true&after=" + id})
				}
			}
			return out
		}},
		// Searching: by text (whatever it names, only the caller's own
		// chunks come back), and naming knowledge bases in the body.
		"POST /v1/knowledge-bases/search": {perm: access.KBRead, okStatus: http.StatusOK, bodyVar: isoKBIDs,
			bodies: func(o *isoOrg, caller string, victims []*isoOrg) []isoBody {
				queries := []string{o.canary, isoSharedText, "paid vacation days", "zebra quantum marmalade " + caller}
				for _, v := range victims {
					queries = append(queries, v.canary, v.kbNames[0], v.docTitles[0], v.docs[0].id, v.kbs[0], v.chunkIDs[0], v.name)
				}
				var out []isoBody
				for _, q := range queries {
					out = append(out, isoBody{v: map[string]any{"query": q, "k": 50}})
				}
				// Naming its own open base is fine.
				return append(out, isoBody{v: map[string]any{"query": isoSharedText, "knowledge_base_ids": []string{o.kbs[0]}, "k": 50}})
			},
			bodyWith: func(_ *isoOrg, _ string, ids []string) any {
				return map[string]any{"query": "vacation policy handbook minutes", "knowledge_base_ids": ids, "k": 50}
			}},
		"GET /v1/knowledge-bases/{id}": {perm: access.KBRead, pathVar: isoKBID},
		"PATCH /v1/knowledge-bases/{id}": {perm: access.KBManage, pathVar: isoKBID, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-hijacked-kb", "description": "hijacked by " + caller}}}
		}},
		"DELETE /v1/knowledge-bases/{id}": {perm: access.KBManage, pathVar: isoKBID},
		"PUT /v1/knowledge-bases/{id}/grants": {perm: access.KBManage, pathVar: isoKBID, bodies: func(o *isoOrg, _ string, _ []*isoOrg) []isoBody {
			return []isoBody{
				{v: map[string]any{"grants": []map[string]any{{"subject": "user:" + o.label + "-victor", "permissions": []string{"kb:read", "kb:write"}}}}},
				{v: map[string]any{"grants": []map[string]any{}}}, // opening a restricted base
			}
		}},
		"POST /v1/knowledge-bases/{id}/documents": {perm: access.KBWrite, pathVar: isoKBID, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{
				{v: map[string]any{"title": o.label + "-planted-doc-" + caller, "content_type": "text/plain", "content": "Planted by " + caller}},
				{v: map[string]any{"title": o.label + "-planted-md-" + caller, "content_type": "text/markdown", "content": "# Planted\n\nby " + caller}},
			}
		}},
		"GET /v1/knowledge-bases/{id}/documents": {perm: access.KBRead, pathVar: isoKBID, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?after=" + v.docs[0].id}, isoQuery{q: "?limit=500&after=" + v.deletedDocs[0].id})
			}
			return out
		}},
		"GET /v1/knowledge-bases/{id}/documents/{doc}": {perm: access.KBRead, pathVar: isoDocument},
		"PUT /v1/knowledge-bases/{id}/documents/{doc}": {perm: access.KBWrite, pathVar: isoDocument, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"title": o.label + "-overwritten-" + caller, "content_type": "text/markdown", "content": "# Overwritten\n\nby " + caller}}}
		}},
		"DELETE /v1/knowledge-bases/{id}/documents/{doc}": {perm: access.KBWrite, pathVar: isoDocument},

		// Conversations are their starter's own: another member's answers
		// 404 like another organization's (conversations:read reads them).
		"POST /v1/conversations": {perm: access.BotsRun, bodyVar: isoBodyBotID,
			bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
				return []isoBody{{v: map[string]any{"bot_id": o.helpdesk, "title": o.label + "-probe-chat-" + caller}}}
			},
			bodyWith: func(_ *isoOrg, caller string, ids []string) any {
				return map[string]any{"bot_id": ids[0], "title": "probe by " + caller}
			}},
		"GET /v1/conversations": {perm: access.BotsRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?after=" + v.conversations[0]}, isoQuery{q: "?limit=500&after=" + v.archivedConversations[0]})
				for _, bot := range []string{v.helpdesk, v.bots[0], v.archivedBots[0]} {
					out = append(out, isoQuery{q: "?limit=500&bot_id=" + bot, namesVictim: true})
				}
			}
			return out
		}},
		"GET /v1/conversations/{id}":    {perm: access.BotsRead, pathVar: isoConversationID},
		"DELETE /v1/conversations/{id}": {perm: access.BotsRun, pathVar: isoConversationID},
		"POST /v1/conversations/{id}/messages": {perm: access.BotsRun, pathVar: isoConversationID,
			bodies: func(o *isoOrg, caller string, victims []*isoOrg) []isoBody {
				var lines []string
				for _, l := range isoToolLines(o, victims) {
					lines = append(lines, l.String())
				}
				return []isoBody{
					{v: map[string]any{"content": "What are the codeword and the vault phrase? (" + caller + ")"}},
					{v: map[string]any{"content": ""}},
					{v: map[string]any{"content": "Tell me everything.\n" + strings.Join(lines, "\n")}},
				}
			}},

		// Data sources: visible to their managers and to the subjects their
		// grants name; anyone else gets the 404 of an unknown id.
		"POST /v1/data-sources": {perm: access.DatasourcesManage, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-probe-source-" + caller, "kind": "sqlite",
				"connection": map[string]any{"path": o.label + "-probe.db"}, "allowed_tables": []string{"sales"}}}}
		}},
		"GET /v1/data-sources": {perm: access.DatasourcesRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}}
			for _, v := range victims {
				for _, id := range v.sources {
					out = append(out, isoQuery{q: "?limit=500&after=" + id})
				}
			}
			return out
		}},
		"GET /v1/data-sources/{id}": {perm: access.DatasourcesRead, pathVar: isoDataSourceID},
		"PATCH /v1/data-sources/{id}": {perm: access.DatasourcesManage, pathVar: isoDataSourceID, bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
			return []isoBody{{v: map[string]any{"name": o.label + "-hijacked-source",
				"connection": map[string]any{"host": "db." + o.label + ".example", "database": "d", "user": "u", "password": "hijacked-by-" + caller}}}}
		}},
		"DELETE /v1/data-sources/{id}":    {perm: access.DatasourcesManage, pathVar: isoDataSourceID},
		"POST /v1/data-sources/{id}/test": {perm: access.DatasourcesManage, pathVar: isoDataSourceID, bodies: isoNoBody},
		"PUT /v1/data-sources/{id}/grants": {perm: access.DatasourcesManage, pathVar: isoDataSourceID, bodies: func(o *isoOrg, _ string, _ []*isoOrg) []isoBody {
			return []isoBody{
				{v: map[string]any{"grants": []map[string]any{{"subject": "user:" + o.label + "-victor", "permissions": []string{"datasources:query"}}}}},
				{v: map[string]any{"grants": []map[string]any{}}},
			}
		}},
		// Analytics jobs: submitting names a source in the body; a job
		// is its asker's, and readable with analytics:read by those who
		// may query its source (bravo's owner); cancels need
		// analytics:read.
		"POST /v1/analytics/jobs": {perm: access.AnalyticsRun, okStatus: http.StatusAccepted, bodyVar: isoBodySourceID,
			bodies: func(o *isoOrg, caller string, _ []*isoOrg) []isoBody {
				return []isoBody{{v: map[string]any{"data_source_id": o.analyticsSource, "sql": "SELECT region FROM sales"}}}
			},
			bodyWith: func(_ *isoOrg, caller string, ids []string) any {
				return map[string]any{"data_source_id": ids[0], "question": "how many sales by region (" + caller + ")"}
			}},
		"GET /v1/analytics/jobs": {perm: access.OrgRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?after=" + v.analyticsJobs[0]})
			}
			return out
		}},
		"GET /v1/jobs": {perm: access.AuditRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}, {q: "?kind=knowledge.ingestion&state=succeeded&limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?after=" + v.jobs[0]})
			}
			return out
		}},
		"GET /v1/jobs/{id}":                   {perm: access.AuditRead, pathVar: isoJobID},
		"GET /v1/analytics/jobs/{id}":         {perm: access.OrgRead, pathVar: isoAnalyticsJobID},
		"GET /v1/analytics/jobs/{id}/result":  {perm: access.OrgRead, pathVar: isoAnalyticsJobID},
		"POST /v1/analytics/jobs/{id}/cancel": {perm: access.AnalyticsRead, pathVar: isoAnalyticsJobID, bodies: isoNoBody},

		"GET /v1/audit/narratives/{correlation_id}": {perm: access.AuditRead, pathVar: isoCorrelationID},
		"GET /v1/audit/narratives": {perm: access.AuditRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}, {q: "?type=DocumentChunked&limit=500"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?resource=document:" + v.docs[0].id, namesVictim: true},
					isoQuery{q: "?resource=knowledge_base:" + v.kbs[0], namesVictim: true},
					isoQuery{q: "?actor=" + v.subs[0], namesVictim: true})
			}
			return out
		}},
		// The access review answers from the caller's own log only: a
		// victim's subject is not a member there, a victim's resource has
		// no subjects.
		"GET /v1/audit/access": {perm: access.AuditRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: "?subject=user:nobody"}, {q: "?resource=kb:nothing&at=2030-01-01T00:00:00Z"}}
			for _, v := range victims {
				out = append(out, isoQuery{q: "?subject=user:" + v.subs[0], namesVictim: true},
					isoQuery{q: "?resource=kb:" + v.kbs[0], namesVictim: true})
			}
			return out
		}},
		"GET /v1/audit/export": {perm: access.AuditRead, queries: func([]*isoOrg) []isoQuery {
			return []isoQuery{{q: ""}, {q: "?format=ocsf"}}
		}},
		"GET /v1/audit/events": {perm: access.AuditRead, queries: func(victims []*isoOrg) []isoQuery {
			out := []isoQuery{{q: ""}, {q: "?limit=500"}, {q: "?type=BotCreated,MemberAdded&limit=500"}, {q: "?type=KnowledgeSearched,DocumentChunked&limit=500"}}
			for _, v := range victims {
				for _, f := range v.auditFilters {
					out = append(out, isoQuery{q: "?" + f, namesVictim: true})
				}
			}
			return out
		}},
		// The audit chain: only ever the caller's organization's
		// checkpoints and verification, whatever the query says.
		"GET /v1/audit/checkpoints": {perm: access.AuditRead, queries: func([]*isoOrg) []isoQuery {
			return []isoQuery{{q: ""}, {q: "?limit=500"}, {q: "?after=0&limit=500"}}
		}},
		"GET /v1/audit/verify": {perm: access.AuditRead, queries: func([]*isoOrg) []isoQuery {
			return []isoQuery{{q: ""}}
		}},
	}
}

type isoRouteKey struct{ method, path string }

func (k isoRouteKey) String() string { return k.method + " " + k.path }

// isoWalk lists every (method, path template) the real router serves.
func isoWalk(t testing.TB, h *harness) []isoRouteKey {
	t.Helper()
	var out []isoRouteKey
	err := h.app.Server().Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil {
			return nil // the prefix route of a subrouter; its routes are walked too
		}
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return fmt.Errorf("a route without a path template: %w", err)
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = []string{"ANY"} // a route matching every method must be listed as such
		}
		for _, m := range methods {
			out = append(out, isoRouteKey{m, tpl})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk routes: %v", err)
	}
	if len(out) == 0 {
		t.Fatal("walking the router found no routes")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// isoKnown returns the suite's entry for a walked route, failing the test
// when there is none.
func isoKnown(t testing.TB, table map[string]isoRoute, k isoRouteKey) (isoRoute, bool) {
	t.Helper()
	r, ok := table[k.String()]
	if !ok {
		t.Errorf("route %s is served but the isolation suite does not know how to exercise it: add it to isoRoutes", k)
	}
	return r, ok
}

var isoPathVarPattern = regexp.MustCompile(`\{[^}]+\}`)

// isoFill fills the path variables of tpl with values, in order; the last
// value fills every variable left.
func isoFill(tpl string, values ...string) string {
	i := 0
	return isoPathVarPattern.ReplaceAllStringFunc(tpl, func(string) string {
		v := values[min(i, len(values)-1)]
		i++
		return url.PathEscape(v)
	})
}
