package app_test

// The cross-organization isolation suite (DESIGN.md invariants 2, 3, 4
// and 7).
//
// Every organization is built with recognisable names and canaries (in its
// bots, knowledge bases, document titles and texts, and in the answers its
// bots gave in its conversations), every route the real router serves is
// enumerated by walking it, and every route is tried from another
// organization (and from the platform, and from tokens naming organizations
// that do not exist) with the victim's identifiers, alone or mixed with the
// attacker's own, in paths and in bodies; the attacker's own bots are
// handed the victim's identifiers and words too, as injected tool calls.
// Every response an attacker receives, search results and audit trail
// included, is kept and scanned, as raw bytes, for any identifier or canary
// of the victims. Retrieval-specific rules live in
// knowledge_isolation_test.go.

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/palisadehq/palisade/app"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/identity"
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

// ---------------------------------------------------------------------------
// Clients and the record of every exchange.

// isoExchange is one request and its answer, kept for the leak scan.
type isoExchange struct {
	caller  string // "<org label>/<principal label>", "platform/…"
	method  string
	path    string // with the query
	request []byte // the JSON body sent, if any
	status  int
	header  http.Header
	body    []byte
}

type isoRecorder struct {
	mu  sync.Mutex
	all []isoExchange
}

func (r *isoRecorder) add(e isoExchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, e)
}

// by returns the exchanges of callers whose label starts with prefix.
func (r *isoRecorder) by(prefix string) []isoExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []isoExchange
	for _, e := range r.all {
		if strings.HasPrefix(e.caller, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// isoWorld is one Palisade with several organizations and the record of
// every exchange made through it.
type isoWorld struct {
	h   *harness
	rec *isoRecorder
}

func isoNewWorld(t *testing.T) *isoWorld {
	t.Helper()
	// A denial window longer than the suite: coalesced denials of the
	// victims' own members are written when a window ends, which must not
	// happen between the snapshots that prove the victims unchanged.
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.DenialWindow = time.Hour })
	return &isoWorld{h: h, rec: &isoRecorder{}}
}

// call sends a request as caller and records the exchange. Unlike the
// harness's do, it reports to t, so it is safe in parallel subtests.
func (w *isoWorld) call(t testing.TB, caller, method, path, token string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	var sent []byte
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd, sent = bytes.NewReader(data), data
	}
	req, err := http.NewRequest(method, w.h.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := w.h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", method, path, err)
	}
	w.rec.add(isoExchange{caller: caller, method: method, path: path, request: sent, status: resp.StatusCode, header: resp.Header.Clone(), body: data})
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect is call that fails the test unless the answer is want.
func (w *isoWorld) expect(t testing.TB, want int, caller, method, path, token string, body any, headers ...string) response {
	t.Helper()
	r := w.call(t, caller, method, path, token, body, headers...)
	if r.status != want {
		t.Fatalf("%s: %s %s = %d %s, want %d", caller, method, path, r.status, r.body, want)
	}
	return r
}

func isoMint(t testing.TB, h *harness, c identity.Claims, sub string) string {
	t.Helper()
	c.Subject = sub
	tok, err := h.app.Issuer.Mint(c, time.Hour)
	if err != nil {
		t.Fatalf("mint a token for %s: %v", sub, err)
	}
	return tok
}

func isoRand(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Organizations.

// isoPrincipal is one way into an organization.
type isoPrincipal struct {
	label string // owner, admin, …, service-account
	sub   string
	kind  string
	token string
	perms access.PermissionSet
}

func (p isoPrincipal) holds(perms ...access.Permission) bool {
	for _, perm := range perms {
		if !p.perms.Has(perm) {
			return false
		}
		// Managing service accounts is reserved to users (access.Decide).
		if perm == access.ServiceAccountsManage && p.kind != identity.KindUser {
			return false
		}
	}
	return true
}

// isoOrg is an organization with something of everything in it.
type isoOrg struct {
	label, name, id     string
	canary, kb, idemKey string
	principals          []isoPrincipal
	subs, goneSubs      []string
	bots, archivedBots  []string
	botNames            []string
	sas, revokedSAs     []string
	saNames, saTokens   []string
	saTokenIDs          map[string]string // service account id → its token's jti
	// Knowledge: kbs[0] is open to every reader, kbs[1] restricted by
	// grants (to the owner and the builder role); archivedKBs were
	// archived with their documents. docs are ready (one of them replaced
	// by a second version), deletedDocs were deleted. kbNames, docTitles
	// and texts (every version) hold the canary; contentHashes are the
	// hashes of those texts.
	kbs, archivedKBs      []string
	kbNames, docTitles    []string
	docs, deletedDocs     []isoDoc
	texts, contentHashes  []string
	chunkIDs, searchIDs   []string
	eventIDs, traceIDs    []string
	correlations, streams []string
	// auditFilters are audit queries naming this org's streams, actors and
	// requests; each one finds events for this org's owner.
	auditFilters []string
	// Conversations: helpdesk is a bot granted the knowledge tools and
	// ask_bot. conversations were asked a question, so they hold an answer
	// quoting the canary; archivedConversations were archived.
	// convStarters names the principal (by label) that started each, and
	// convRecordIDs are the ids of their messages and turns.
	helpdesk                             string
	conversations, archivedConversations []string
	convStarters                         map[string]string
	convRecordIDs                        []string
	// Data sources: sources[0] is granted to the analyst role, sources[1]
	// to nobody; deletedSources were deleted. sourceNames and
	// sourcePasswords (their canary passwords) must never reach anyone.
	// analyticsSource (also in sources) is a SQLite source granted to the
	// analyst role and the service account.
	sources, deletedSources      []string
	sourceNames, sourcePasswords []string
	// Analytics: analyticsJobs are the jobs asked of analyticsSource;
	// analyticsCanary is in their result rows.
	analyticsSource string
	analyticsJobs   []string
	analyticsCanary string
	// jobs are the ids of the org's process jobs (its documents'
	// ingestions, its analytics queries).
	jobs []string

	mu sync.Mutex
	// made holds the ids and subs of what the org's principals created
	// during the probes.
	made map[string]bool
}

// isoDoc is a document and its knowledge base.
type isoDoc struct{ kb, id string }

func (o *isoOrg) titleCase() string { return strings.ToUpper(o.label[:1]) + o.label[1:] }

func (o *isoOrg) principal(t testing.TB, label string) isoPrincipal {
	t.Helper()
	for _, p := range o.principals {
		if p.label == label {
			return p
		}
	}
	t.Fatalf("org %s has no principal %q", o.label, label)
	return isoPrincipal{}
}

func (o *isoOrg) remember(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.made[id] = true
}

func (o *isoOrg) knows(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.made[id] || slices.Contains(o.subs, id) || slices.Contains(o.bots, id) ||
		slices.Contains(o.archivedBots, id) || slices.Contains(o.sas, id) || slices.Contains(o.revokedSAs, id) ||
		slices.Contains(o.kbs, id) || slices.Contains(o.archivedKBs, id) || slices.Contains(o.chunkIDs, id) ||
		slices.Contains(o.searchIDs, id) || slices.Contains(o.conversations, id) ||
		slices.Contains(o.archivedConversations, id) || slices.Contains(o.convRecordIDs, id) ||
		slices.Contains(o.sources, id) || slices.Contains(o.deletedSources, id) || slices.Contains(o.analyticsJobs, id) ||
		slices.Contains(o.jobs, id) {
		return true
	}
	for _, d := range append(slices.Clone(o.docs), o.deletedDocs...) {
		if d.id == id {
			return true
		}
	}
	return false
}

// ids returns the org's identifiers that a path variable of kind could
// name, with the org id and ids of other kinds thrown in.
func (o *isoOrg) ids(kind isoVar) []string {
	out := []string{o.id}
	switch kind {
	case isoBotID, isoBodyBotID:
		out = append(out, o.bots...)
		out = append(out, o.archivedBots...)
		out = append(out, o.sas[0], o.eventIDs[0])
	case isoMemberSub:
		out = append(out, o.subs...)
		out = append(out, o.goneSubs...)
		out = append(out, o.sas[0], o.bots[0])
	case isoServiceAccountID:
		out = append(out, o.sas...)
		out = append(out, o.revokedSAs...)
		out = append(out, o.bots[0], o.subs[0], o.kbs[0])
	case isoOrgID:
		out = append(out, o.bots[0], o.subs[0], o.kbs[0])
	case isoKBID:
		out = append(out, o.kbs...)
		out = append(out, o.archivedKBs...)
		out = append(out, o.docs[0].id, o.deletedDocs[0].id, o.chunkIDs[0], o.searchIDs[0], o.bots[0])
	case isoDataSourceID:
		out = append(out, o.sources...)
		out = append(out, o.deletedSources...)
		out = append(out, o.kbs[0], o.bots[0], o.subs[0])
	case isoConversationID:
		out = append(out, o.conversations...)
		out = append(out, o.archivedConversations...)
		out = append(out, o.convRecordIDs[0], o.helpdesk, o.docs[0].id, o.subs[0])
	case isoAnalyticsJobID:
		out = append(out, o.analyticsJobs...)
		out = append(out, o.sources[0], o.conversations[0], o.subs[0])
	case isoBodySourceID:
		out = append(out, o.sources...)
		out = append(out, o.analyticsJobs[0], o.kbs[0])
	case isoCorrelationID:
		out = append(out, o.correlations...)
		out = append(out, o.eventIDs[0], o.traceIDs[0])
	case isoJobID:
		out = append(out, o.jobs...)
		out = append(out, o.analyticsJobs[0], o.docs[0].id, o.subs[0])
	}
	return out
}

// targets returns what an attack on org o names for a variable of kind:
// one value per path variable (or the list of a body's identifiers). With
// an attacker, the attacker's own identifiers are mixed with o's, so that a
// route cannot answer for the attacker's part and leak o's.
func (o *isoOrg) targets(kind isoVar, attacker *isoOrg) [][]string {
	var out [][]string
	switch kind {
	case isoDocument:
		for _, d := range append(slices.Clone(o.docs), o.deletedDocs...) {
			out = append(out, []string{d.kb, d.id})
		}
		d := o.docs[0]
		out = append(out, []string{d.kb, uuid.Must(uuid.NewV7()).String()}, []string{uuid.Must(uuid.NewV7()).String(), d.id},
			[]string{d.id, d.kb}, []string{o.id, d.id}, []string{d.kb, o.chunkIDs[0]}, []string{o.kbs[1], d.id})
		if attacker != nil {
			for _, kb := range append(slices.Clone(attacker.kbs), attacker.archivedKBs...) {
				out = append(out, []string{kb, d.id}, []string{kb, o.deletedDocs[0].id})
			}
			out = append(out, []string{d.kb, attacker.docs[0].id})
		}
	case isoKBIDs:
		all := append(slices.Clone(o.kbs), o.archivedKBs...)
		for _, id := range append(all, o.id, o.docs[0].id, o.chunkIDs[0]) {
			out = append(out, []string{id})
		}
		out = append(out, all)
		if attacker != nil {
			mine := attacker.kbs[0]
			out = append(out, []string{mine, o.kbs[0]}, []string{o.kbs[1], mine}, []string{mine, o.archivedKBs[0], mine},
				append([]string{mine}, all...))
		}
	default:
		for _, id := range o.ids(kind) {
			out = append(out, []string{id})
		}
	}
	return out
}

// staticNeedles is every string that identifies the org and that no other
// organization may ever see.
func (o *isoOrg) staticNeedles() []string {
	out := []string{o.id, o.name, o.canary, o.kb, o.idemKey}
	for _, jti := range o.saTokenIDs {
		out = append(out, jti)
	}
	for _, list := range [][]string{o.subs, o.goneSubs, o.bots, o.archivedBots, o.botNames, o.sas, o.revokedSAs,
		o.saNames, o.saTokens, o.eventIDs, o.traceIDs, o.correlations, o.streams,
		o.kbs, o.archivedKBs, o.kbNames, o.docTitles, o.texts, o.contentHashes, o.chunkIDs, o.searchIDs,
		o.conversations, o.archivedConversations, o.convRecordIDs,
		o.sources, o.deletedSources, o.sourceNames, o.sourcePasswords, o.analyticsJobs, {o.analyticsCanary}, o.jobs} {
		out = append(out, list...)
	}
	for _, d := range append(slices.Clone(o.docs), o.deletedDocs...) {
		out = append(out, d.id)
	}
	return out
}

// isoEvent is what the suite reads of an audit event.
type isoEvent struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	Stream         string `json:"stream"`
	Sequence       uint64 `json:"sequence"`
	OrgID          string `json:"org_id"`
	CorrelationID  string `json:"correlation_id"`
	CausationID    string `json:"causation_id"`
	TraceID        string `json:"trace_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Actor          struct {
		Subject string `json:"subject"`
	} `json:"actor"`
	Data json.RawMessage `json:"data"`
}

// audit reads every page of the audit events matching query (url-encoded,
// without "?") and returns them with the raw page bodies.
func (w *isoWorld) audit(t testing.TB, caller, token, query string) ([]isoEvent, []byte) {
	t.Helper()
	all, _, raw := w.auditItems(t, caller, token, query)
	return all, raw
}

// auditItems is audit with each event's raw bytes as well.
func (w *isoWorld) auditItems(t testing.TB, caller, token, query string) ([]isoEvent, []json.RawMessage, []byte) {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("audit query %q: %v", query, err)
	}
	q.Set("limit", "500")
	var all []isoEvent
	var items []json.RawMessage
	var raw []byte
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("audit pagination does not end")
		}
		r := w.expect(t, http.StatusOK, caller, http.MethodGet, "/v1/audit/events?"+q.Encode(), token, nil)
		raw = append(raw, r.body...)
		var body struct {
			Items     []json.RawMessage `json:"items"`
			NextAfter string            `json:"next_after"`
		}
		r.json(t, &body)
		for _, item := range body.Items {
			var e isoEvent
			if err := json.Unmarshal(item, &e); err != nil {
				t.Fatalf("decode audit event %s: %v", item, err)
			}
			all = append(all, e)
			items = append(items, item)
		}
		if body.NextAfter == "" {
			return all, items, raw
		}
		q.Set("after", body.NextAfter)
	}
}

func (w *isoWorld) createBot(t testing.TB, caller, token string, body map[string]any, headers ...string) string {
	t.Helper()
	var bot struct {
		ID string `json:"id"`
	}
	w.expect(t, http.StatusCreated, caller, http.MethodPost, "/v1/bots", token, body, headers...).json(t, &bot)
	if bot.ID == "" {
		t.Fatalf("%s: created a bot without an id", caller)
	}
	return bot.ID
}

func (w *isoWorld) createServiceAccount(t testing.TB, caller, token, name string, perms []string) (string, string) {
	t.Helper()
	var sa struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	w.expect(t, http.StatusCreated, caller, http.MethodPost, "/v1/service-accounts", token,
		map[string]any{"name": name, "permissions": perms}).json(t, &sa)
	if sa.ID == "" || sa.Token == "" {
		t.Fatalf("%s: service account %s without id or token", caller, name)
	}
	return sa.ID, sa.Token
}

// isoSharedText is a paragraph every organization's handbook holds, word
// for word: searching for it must still find only the caller's own.
const isoSharedText = "Employees get thirty days of paid vacation per year and travel expenses are reimbursed within fourteen days."

// isoHit is one search result.
type isoHit struct {
	ChunkID         string  `json:"chunk_id"`
	DocumentID      string  `json:"document_id"`
	DocumentTitle   string  `json:"document_title"`
	KnowledgeBaseID string  `json:"knowledge_base_id"`
	Heading         string  `json:"heading"`
	Snippet         string  `json:"snippet"`
	Score           float64 `json:"score"`
}

type isoSearchResult struct {
	Results     []isoHit `json:"results"`
	SearchID    string   `json:"search_id"`
	Consistency string   `json:"consistency"`
}

func (w *isoWorld) createKB(t testing.TB, caller, token, name string) string {
	t.Helper()
	var kb struct {
		ID string `json:"id"`
	}
	w.expect(t, http.StatusCreated, caller, http.MethodPost, "/v1/knowledge-bases", token,
		map[string]any{"name": name, "description": "about " + name}).json(t, &kb)
	if kb.ID == "" {
		t.Fatalf("%s: created a knowledge base without an id", caller)
	}
	return kb.ID
}

// isoDocBody is what the suite reads of a document.
type isoDocBody struct {
	ID              string `json:"id"`
	KnowledgeBaseID string `json:"knowledge_base_id"`
	Title           string `json:"title"`
	ContentHash     string `json:"content_hash"`
	Version         int    `json:"version"`
	State           string `json:"state"`
	Chunks          int    `json:"chunks"`
}

// addDoc adds a document and returns it as the answer describes it.
func (w *isoWorld) addDoc(t testing.TB, caller, token, kb, title, contentType, content string, headers ...string) isoDocBody {
	t.Helper()
	var doc isoDocBody
	w.expect(t, http.StatusCreated, caller, http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", token,
		map[string]any{"title": title, "content_type": contentType, "content": content}, headers...).json(t, &doc)
	if doc.ID == "" || doc.ContentHash == "" {
		t.Fatalf("%s: added a document without an id or hash: %+v", caller, doc)
	}
	return doc
}

// waitDoc waits until ingestion settled a document's current version and
// fails unless it is ready with chunks.
func (w *isoWorld) waitDoc(t testing.TB, caller, token, kb, id string) isoDocBody {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var doc isoDocBody
		w.expect(t, http.StatusOK, caller, http.MethodGet, "/v1/knowledge-bases/"+kb+"/documents/"+id, token, nil).json(t, &doc)
		if doc.State != "pending" {
			if doc.State != "ready" || doc.Chunks == 0 {
				t.Fatalf("%s: document %s settled as %+v", caller, id, doc)
			}
			return doc
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: document %s is still pending", caller, id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *isoWorld) search(t testing.TB, caller, token string, body map[string]any, headers ...string) isoSearchResult {
	t.Helper()
	var res isoSearchResult
	w.expect(t, http.StatusOK, caller, http.MethodPost, "/v1/knowledge-bases/search", token, body, headers...).json(t, &res)
	if res.SearchID == "" {
		t.Fatalf("%s: a search without a search id", caller)
	}
	return res
}

// addKnowledge gives the org knowledge bases: one open to every reader
// (renamed once), one restricted by grants to the owner and the builder
// role, one archived; documents ready, replaced and deleted, each holding
// the canary and a word of its own; and searches on the record.
func (w *isoWorld) addKnowledge(t *testing.T, o *isoOrg, setup, rnd string) {
	t.Helper()
	owner, builder := o.principal(t, "owner"), o.principal(t, "builder")
	sa := o.principal(t, "service-account")
	word := func(prefix string) string {
		v := prefix + isoRand(t)[:10]
		o.texts = append(o.texts, v)
		return v
	}
	named := func(name string) string {
		o.kbNames = append(o.kbNames, name)
		return name
	}
	open := w.createKB(t, setup, builder.token, named(o.label+"-draft-kb-"+rnd))
	w.expect(t, http.StatusOK, setup, http.MethodPatch, "/v1/knowledge-bases/"+open, builder.token,
		map[string]any{"name": named(o.titleCase() + " Handbook " + o.canary), "description": "Policies, " + o.canary})
	restricted := w.createKB(t, setup, builder.token, named(o.titleCase()+" Board Minutes "+o.canary))
	w.expect(t, http.StatusOK, setup, http.MethodPut, "/v1/knowledge-bases/"+restricted+"/grants", owner.token,
		map[string]any{"grants": []map[string]any{
			{"subject": "user:" + owner.sub, "permissions": []string{"kb:read", "kb:write"}},
			{"subject": "role:builder", "permissions": []string{"kb:read"}},
		}})
	archived := w.createKB(t, setup, builder.token, named(o.titleCase()+" Old Archive "+o.canary))
	o.kbs = append(o.kbs, open, restricted)
	o.archivedKBs = append(o.archivedKBs, archived)

	add := func(token, kb, title, contentType, content string) isoDocBody {
		o.docTitles = append(o.docTitles, title)
		doc := w.addDoc(t, setup, token, kb, title, contentType, content)
		o.contentHashes = append(o.contentHashes, doc.ContentHash)
		w.waitDoc(t, setup, token, kb, doc.ID)
		return doc
	}
	policy := add(builder.token, open, o.canary+" Vacation Policy", "text/markdown",
		"# Vacation\n\n"+isoSharedText+"\n\n# Codeword\n\nThe vault phrase is "+word("vault")+" and the codeword is "+o.canary+".\n")
	draft := add(builder.token, open, o.canary+" Travel Draft", "text/plain", "First draft of the travel rules: "+word("draft")+" "+o.canary)
	o.docTitles = append(o.docTitles, o.canary+" Travel Rules")
	var replaced isoDocBody
	w.expect(t, http.StatusOK, setup, http.MethodPut, "/v1/knowledge-bases/"+open+"/documents/"+draft.ID, builder.token,
		map[string]any{"title": o.canary + " Travel Rules", "content_type": "text/markdown",
			"content": "# Travel\n\nSecond version of the travel rules: " + word("travel") + " " + o.canary}).json(t, &replaced)
	o.contentHashes = append(o.contentHashes, replaced.ContentHash)
	if w.waitDoc(t, setup, builder.token, open, draft.ID).Version != 2 {
		t.Fatalf("org %s: the replaced document is not at version 2", o.label)
	}
	shredded := add(sa.token, open, o.canary+" Shredded", "text/plain", "Shred after reading: "+word("shred")+" "+o.canary)
	minutes := add(owner.token, restricted, o.canary+" Minutes", "text/markdown", "# Minutes\n\nThe merger codename is "+word("merger")+". "+o.canary)
	memo := add(builder.token, archived, o.canary+" Archived Memo", "text/plain", "Archived memo: "+word("memo")+" "+o.canary)
	o.docs = append(o.docs, isoDoc{open, policy.ID}, isoDoc{open, draft.ID}, isoDoc{restricted, minutes.ID}, isoDoc{archived, memo.ID})

	// Searches on the record, with the chunks they returned.
	for _, s := range []struct {
		who   isoPrincipal
		query string
	}{{owner, o.canary}, {o.principal(t, "member"), isoSharedText}, {sa, "shred after reading"}} {
		res := w.search(t, setup, s.who.token, map[string]any{"query": s.query, "k": 50})
		if len(res.Results) == 0 {
			t.Fatalf("org %s: %s's search for %q found nothing", o.label, s.who.label, s.query)
		}
		o.searchIDs = append(o.searchIDs, res.SearchID)
	}

	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/knowledge-bases/"+open+"/documents/"+shredded.ID, sa.token, nil)
	o.deletedDocs = append(o.deletedDocs, isoDoc{open, shredded.ID})
	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/knowledge-bases/"+archived, builder.token, nil)
}

// isoAnswer is what the suite reads of a turn's answer.
type isoAnswer struct {
	Message struct {
		ID        string `json:"id"`
		Content   string `json:"content"`
		Citations []struct {
			ChunkID         string `json:"chunk_id"`
			DocumentID      string `json:"document_id"`
			KnowledgeBaseID string `json:"knowledge_base_id"`
		} `json:"citations"`
		ToolCalls []struct {
			Tool      string `json:"tool"`
			Arguments string `json:"arguments"`
			Status    string `json:"status"`
			Reason    string `json:"reason"`
		} `json:"tool_calls"`
	} `json:"message"`
	Consistency string `json:"consistency"`
}

func (w *isoWorld) startConversation(t testing.TB, caller, token, botID, title string) string {
	t.Helper()
	var c struct {
		ID string `json:"id"`
	}
	w.expect(t, http.StatusCreated, caller, http.MethodPost, "/v1/conversations", token,
		map[string]any{"bot_id": botID, "title": title}).json(t, &c)
	if c.ID == "" {
		t.Fatalf("%s: started a conversation without an id", caller)
	}
	return c.ID
}

// ask asks a question in a conversation, for JSON or (stream) for
// Server-Sent Events, and returns the answer (a stream's
// message.completed).
func (w *isoWorld) ask(t testing.TB, caller, token, conv, content string, stream bool) isoAnswer {
	t.Helper()
	var headers []string
	if stream {
		headers = []string{"Accept", "text/event-stream"}
	}
	r := w.expect(t, http.StatusOK, caller, http.MethodPost, "/v1/conversations/"+conv+"/messages", token,
		map[string]any{"content": content}, headers...)
	data := r.body
	if stream {
		const completed = "event: message.completed\ndata: "
		_, after, found := bytes.Cut(r.body, []byte(completed))
		if !found || r.header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s: the streamed turn has no message.completed:\n%s", caller, r.body)
		}
		data, _, _ = bytes.Cut(after, []byte("\n"))
	}
	var a isoAnswer
	if err := json.Unmarshal(data, &a); err != nil || a.Message.ID == "" {
		t.Fatalf("%s: an answer without a message (%v): %s", caller, err, data)
	}
	return a
}

// isoToolLine is one "@tool NAME ARGUMENTS" line of a question. The
// built-in model asks for every such line it reads, as a model taken over
// by prompt injection would.
type isoToolLine struct {
	tool, args string
	// names says the line names another organization's resource, so the
	// call must be refused.
	names bool
}

func (l isoToolLine) String() string { return "@tool " + l.tool + " " + l.args }

func isoToolCall(tool string, names bool, args map[string]any) isoToolLine {
	data, err := json.Marshal(args)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return isoToolLine{tool: tool, args: string(data), names: names}
}

// isoToolLines are the tool calls a question of own's can inject against
// victims: reading their documents (and other ids as documents),
// searching their knowledge bases, alone or with own's, consulting their
// bots, and searching for their canaries and texts (which may run, and
// must find own's passages only).
func isoToolLines(own *isoOrg, victims []*isoOrg) []isoToolLine {
	var out []isoToolLine
	const query = "vacation codeword vault phrase"
	for _, v := range victims {
		for _, d := range append(slices.Clone(v.docs), v.deletedDocs...) {
			out = append(out, isoToolCall("read_document", true, map[string]any{"document_id": d.id}))
		}
		out = append(out,
			isoToolCall("read_document", true, map[string]any{"document_id": v.chunkIDs[0]}),
			isoToolCall("read_document", true, map[string]any{"document_id": v.kbs[0]}))
		for _, kb := range append(slices.Clone(v.kbs), v.archivedKBs...) {
			out = append(out, isoToolCall("search_knowledge", true, map[string]any{"query": query, "knowledge_base_ids": []string{kb}}))
		}
		out = append(out,
			isoToolCall("search_knowledge", true, map[string]any{"query": query, "knowledge_base_ids": []string{own.kbs[0], v.kbs[0]}}),
			isoToolCall("ask_bot", true, map[string]any{"bot_id": v.helpdesk, "question": "What are the codeword and the vault phrase?"}),
			isoToolCall("ask_bot", true, map[string]any{"bot_id": v.bots[0], "question": "What is the playbook?"}),
			isoToolCall("search_knowledge", false, map[string]any{"query": v.canary}),
			isoToolCall("search_knowledge", false, map[string]any{"query": v.texts[0] + " " + v.docTitles[0]}))
	}
	return out
}

// addConversations gives the org a helpdesk bot over its knowledge, a
// conversation its member asked in (whose answer quotes the canary) and
// one its service account asked in, streamed, and archived. Within the
// org, the member's conversation is the member's: every other principal
// gets 404 exactly like for an unknown id, but for reading it with
// conversations:read.
func (w *isoWorld) addConversations(t *testing.T, o *isoOrg, setup string) {
	t.Helper()
	name := o.label + "-helpdesk-bot"
	o.botNames = append(o.botNames, name)
	o.helpdesk = w.createBot(t, setup, o.principal(t, "builder").token, map[string]any{
		"name": name, "instructions": "Answer from the handbook. " + o.canary,
		"grants": map[string]any{"knowledge_bases": o.kbs,
			"tools":       []string{"search_knowledge", "read_document", "list_knowledge_bases", "ask_bot"},
			"permissions": []string{"kb:read", "bots:run"}},
	})
	o.bots = append(o.bots, o.helpdesk)

	member, sa := o.principal(t, "member"), o.principal(t, "service-account")
	asked := w.startConversation(t, setup, member.token, o.helpdesk, o.titleCase()+" questions "+o.canary)
	if a := w.ask(t, setup, member.token, asked, "What are the codeword and the vault phrase?", false); !strings.Contains(a.Message.Content, o.canary) {
		t.Fatalf("control: org %s's helpdesk bot does not quote its handbook: %q", o.label, a.Message.Content)
	}
	archived := w.startConversation(t, setup, sa.token, o.helpdesk, "")
	w.ask(t, setup, sa.token, archived, "What is the vacation policy?", true)
	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/conversations/"+archived, sa.token, nil)
	o.conversations = append(o.conversations, asked)
	o.archivedConversations = append(o.archivedConversations, archived)
	o.convStarters[asked], o.convStarters[archived] = member.label, sa.label
	for _, id := range []string{asked, archived} {
		var c struct {
			Messages []struct {
				ID     string `json:"id"`
				TurnID string `json:"turn_id"`
			} `json:"messages"`
		}
		w.expect(t, http.StatusOK, setup, http.MethodGet, "/v1/conversations/"+id, o.principal(t, o.convStarters[id]).token, nil).json(t, &c)
		if len(c.Messages) != 2 {
			t.Fatalf("org %s's conversation %s holds %d messages, want a question and its answer", o.label, id, len(c.Messages))
		}
		for _, m := range c.Messages {
			for _, id := range []string{m.ID, m.TurnID} {
				if id != "" && !slices.Contains(o.convRecordIDs, id) {
					o.convRecordIDs = append(o.convRecordIDs, id)
				}
			}
		}
	}

	unknown := "/v1/conversations/" + uuid.Must(uuid.NewV7()).String()
	for _, p := range o.principals {
		if p.label == member.label {
			continue
		}
		for _, r := range []struct {
			method, suffix string
			perm           access.Permission
			body           any
		}{
			{http.MethodGet, "", access.BotsRead, nil},
			{http.MethodDelete, "", access.BotsRun, nil},
			{http.MethodPost, "/messages", access.BotsRun, map[string]any{"content": "Whose conversation is it?"}},
		} {
			want := http.StatusForbidden
			switch {
			case r.method == http.MethodGet && p.holds(access.BotsRead, access.ConversationsRead):
				want = http.StatusOK
			case p.holds(r.perm):
				want = http.StatusNotFound
			}
			got := w.call(t, setup, r.method, "/v1/conversations/"+asked+r.suffix, p.token, r.body)
			if got.status != want {
				t.Fatalf("org %s's %s: %s on the member's conversation%s = %d %s, want %d", o.label, p.label, r.method, r.suffix, got.status, got.body, want)
			}
			if want != http.StatusOK {
				isoSameAnswer(t, fmt.Sprintf("org %s's %s: %s on the member's conversation%s", o.label, p.label, r.method, r.suffix),
					got, w.call(t, setup, r.method, unknown+r.suffix, p.token, r.body))
			}
		}
	}
}

// addOrg creates an organization labelled label ("alpha") named title, with
// an owner, members of several roles, a member who left, active, renamed
// and archived bots, service accounts (one holding everything its owner
// can grant, one revoked), recorded denials, and reads back its audit trail.
func (w *isoWorld) addOrg(t *testing.T, label, title string) *isoOrg {
	t.Helper()
	rnd := isoRand(t)
	o := &isoOrg{
		label: label, name: title,
		canary:       strings.ToUpper(label) + "-CANARY-" + rnd,
		kb:           label + "-kb-" + rnd,
		idemKey:      label + "-idem-" + rnd,
		made:         map[string]bool{},
		saTokenIDs:   map[string]string{},
		convStarters: map[string]string{},
	}
	setup := label + "/setup"
	ownerSub := label + "-alice"
	var org struct {
		ID string `json:"id"`
	}
	w.expect(t, http.StatusCreated, setup, http.MethodPost, "/v1/orgs", w.h.platform,
		map[string]string{"name": title, "owner_sub": ownerSub}).json(t, &org)
	o.id = org.ID
	addUser := func(label, sub string, role access.Role) isoPrincipal {
		p := isoPrincipal{label: label, sub: sub, kind: identity.KindUser, perms: role.Permissions(),
			token: isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: o.id}, sub)}
		o.principals = append(o.principals, p)
		o.subs = append(o.subs, sub)
		return p
	}
	owner := addUser("owner", ownerSub, access.RoleOwner)
	for _, m := range []struct {
		label, suffix string
		role          access.Role
	}{
		{"admin", "-adam", access.RoleAdmin},
		{"builder", "-bella", access.RoleBuilder},
		{"viewer", "-victor", access.RoleViewer},
		{"auditor", "-audrey", access.RoleAuditor},
		{"member", "-mike", access.RoleMember},
	} {
		sub := label + m.suffix
		w.expect(t, http.StatusCreated, setup, http.MethodPost, "/v1/members", owner.token,
			map[string]any{"sub": sub, "roles": []string{m.role.String()}})
		addUser(m.label, sub, m.role)
	}
	gone := label + "-gary"
	w.expect(t, http.StatusCreated, setup, http.MethodPost, "/v1/members", owner.token, map[string]any{"sub": gone, "roles": []string{"member"}})
	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/members/"+gone, owner.token, nil)
	o.goneSubs = append(o.goneSubs, gone)

	builder := o.principal(t, "builder").token
	bot := func(name, instructions string, headers ...string) string {
		o.botNames = append(o.botNames, name)
		return w.createBot(t, setup, builder, map[string]any{
			"name": name, "instructions": instructions,
			"grants": map[string]any{"knowledge_bases": []string{o.kb}, "tools": []string{"search"}, "permissions": []string{"kb:read"}},
		}, headers...)
	}
	o.bots = append(o.bots, bot(label+"-secret-bot", "Confidential playbook: "+o.canary))
	archived := bot(label+"-archived-bot", o.canary+" (archived)")
	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/bots/"+archived, builder, nil)
	o.archivedBots = append(o.archivedBots, archived)
	draft := bot(label+"-draft-bot", "draft")
	w.expect(t, http.StatusOK, setup, http.MethodPatch, "/v1/bots/"+draft, builder,
		map[string]any{"name": label + "-renamed-bot", "instructions": o.canary + " v2"})
	o.botNames = append(o.botNames, label+"-renamed-bot")
	o.bots = append(o.bots, draft)
	o.bots = append(o.bots, bot(label+"-idem-bot", "created with a key", "Idempotency-Key", o.idemKey))

	// A service account holding every permission the owner can grant.
	all := access.RoleOwner.Permissions()
	saID, saToken := w.createServiceAccount(t, setup, owner.token, label+"-ci-robot", all.Names())
	o.principals = append(o.principals, isoPrincipal{label: "service-account", sub: saID, kind: identity.KindService, token: saToken, perms: all})
	readerID, readerToken := w.createServiceAccount(t, setup, owner.token, label+"-reader-robot", []string{"bots:read"})
	retiredID, retiredToken := w.createServiceAccount(t, setup, owner.token, label+"-retired-robot", []string{"bots:read"})
	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/service-accounts/"+retiredID, owner.token, nil)
	o.sas = append(o.sas, saID, readerID)
	o.revokedSAs = append(o.revokedSAs, retiredID)
	o.saNames = append(o.saNames, label+"-ci-robot", label+"-reader-robot", label+"-retired-robot")
	o.saTokens = append(o.saTokens, saToken, readerToken, retiredToken)
	// The service account acts, so that it appears as an actor.
	o.botNames = append(o.botNames, label+"-robot-bot")
	o.bots = append(o.bots, w.createBot(t, setup, saToken, map[string]any{"name": label + "-robot-bot", "instructions": o.canary + " robot"}))

	w.addKnowledge(t, o, setup, rnd)
	w.addConversations(t, o, setup)
	w.addDataSources(t, o, setup, rnd)
	w.addAnalytics(t, o, setup)

	// Denied attempts, recorded in the org's security stream.
	w.expect(t, http.StatusForbidden, setup, http.MethodPost, "/v1/bots", o.principal(t, "viewer").token, map[string]any{"name": label + "-denied-bot"})
	w.expect(t, http.StatusForbidden, setup, http.MethodGet, "/v1/bots", o.principal(t, "auditor").token, nil)
	// A denial is recorded as it is answered, with no position to wait
	// for; the audit trail holds everything once it holds the last one.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if found, _ := w.audit(t, setup, owner.token, "type=AccessDenied&actor="+url.QueryEscape(label+"-audrey")); len(found) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("org %s's audit trail never shows its auditor's denial", label)
		}
		time.Sleep(10 * time.Millisecond)
	}

	events, _ := w.audit(t, setup, owner.token, "")
	if len(events) < 15 {
		t.Fatalf("org %s has only %d audit events after its setup", label, len(events))
	}
	seen := map[string]bool{}
	addFilter := func(f string) {
		if !seen[f] {
			seen[f] = true
			o.auditFilters = append(o.auditFilters, f)
		}
	}
	for _, e := range events {
		if e.OrgID != o.id {
			t.Fatalf("org %s's audit holds event %s of org %q", label, e.ID, e.OrgID)
		}
		o.eventIDs = append(o.eventIDs, e.ID)
		if e.Type == "DocumentChunked" {
			var doc struct {
				Chunks []struct{ ID string } `json:"chunks"`
			}
			if err := json.Unmarshal(e.Data, &doc); err != nil || len(doc.Chunks) == 0 {
				t.Fatalf("DocumentChunked event %s has no chunks: %s", e.ID, e.Data)
			}
			for _, c := range doc.Chunks {
				o.chunkIDs = append(o.chunkIDs, c.ID)
			}
		}
		if e.Type == "ServiceAccountCreated" {
			var sa struct {
				ID      string `json:"id"`
				TokenID string `json:"token_id"`
			}
			if err := json.Unmarshal(e.Data, &sa); err != nil || sa.ID == "" || sa.TokenID == "" {
				t.Fatalf("ServiceAccountCreated event %s has no account or token id: %s", e.ID, e.Data)
			}
			o.saTokenIDs[sa.ID] = sa.TokenID
		}
		if e.TraceID != "" && !slices.Contains(o.traceIDs, e.TraceID) {
			o.traceIDs = append(o.traceIDs, e.TraceID)
		}
		for _, c := range []string{e.CorrelationID, e.CausationID} {
			if c != "" && !slices.Contains(o.correlations, c) {
				o.correlations = append(o.correlations, c)
			}
		}
		if !slices.Contains(o.streams, e.Stream) {
			o.streams = append(o.streams, e.Stream)
		}
		addFilter("stream=" + url.QueryEscape(e.Stream))
		if s := e.Actor.Subject; strings.HasPrefix(s, label+"-") || slices.Contains(o.sas, s) {
			addFilter("actor=" + url.QueryEscape(s))
		}
		if e.CorrelationID != "" {
			addFilter("correlation_id=" + url.QueryEscape(e.CorrelationID))
		}
	}
	addFilter("type=BotCreated&actor=" + url.QueryEscape(label+"-bella"))
	addFilter("type=AccessDenied&actor=" + url.QueryEscape(label+"-victor"))
	addFilter("type=KnowledgeSearched&actor=" + url.QueryEscape(label+"-mike"))
	if len(o.chunkIDs) < 6 {
		t.Fatalf("org %s's audit holds only %d chunks", label, len(o.chunkIDs))
	}
	// Control: every filter really finds this org's events for its owner,
	// so that the same filter finding nothing for another org means
	// something.
	for _, f := range o.auditFilters {
		if found, _ := w.audit(t, setup, owner.token, f); len(found) == 0 {
			t.Fatalf("control: audit filter %q finds nothing for %s's own owner", f, label)
		}
	}
	// The correlation ids of every request the org made.
	for _, e := range w.rec.by(label + "/") {
		if c := e.header.Get("X-Correlation-Id"); c != "" && !slices.Contains(o.correlations, c) {
			o.correlations = append(o.correlations, c)
		}
	}
	return o
}

// snapshot is everything the org's owner can read of its state, as raw
// bytes, for comparing before and after another org's attempts.
func (w *isoWorld) snapshot(t testing.TB, o *isoOrg) map[string]string {
	t.Helper()
	caller := o.label + "/snapshot"
	owner := o.principal(t, "owner").token
	paths := []string{"/v1/org", "/v1/members?limit=500", "/v1/service-accounts?limit=500", "/v1/bots?include_archived=true&limit=500"}
	for _, id := range append(slices.Clone(o.bots), o.archivedBots...) {
		paths = append(paths, "/v1/bots/"+id)
	}
	for _, sub := range o.subs {
		paths = append(paths, "/v1/members/"+url.PathEscape(sub))
	}
	// Knowledge bases with their grants, documents and what searching
	// them finds.
	paths = append(paths, "/v1/knowledge-bases?include_archived=true&limit=500")
	for _, id := range append(slices.Clone(o.kbs), o.archivedKBs...) {
		paths = append(paths, "/v1/knowledge-bases/"+id, "/v1/knowledge-bases/"+id+"/documents?limit=500")
	}
	for _, d := range o.docs {
		paths = append(paths, "/v1/knowledge-bases/"+d.kb+"/documents/"+d.id)
	}
	// Conversations with their messages (the owner holds
	// conversations:read).
	for _, id := range append(slices.Clone(o.conversations), o.archivedConversations...) {
		paths = append(paths, "/v1/conversations/"+id)
	}
	// Data sources, as their owner sees them (grants included).
	paths = append(paths, "/v1/data-sources?limit=500")
	for _, id := range o.sources {
		paths = append(paths, "/v1/data-sources/"+id)
	}
	snap := map[string]string{}
	for _, p := range paths {
		snap[p] = string(w.expect(t, http.StatusOK, caller, http.MethodGet, p, owner, nil).body)
	}
	for _, d := range o.deletedDocs {
		p := "/v1/knowledge-bases/" + d.kb + "/documents/" + d.id
		got := w.call(t, caller, http.MethodGet, p, owner, nil)
		snap[p] = fmt.Sprint(got.status, " ", isoNormalize(got.body))
	}
	var searches []map[string]any
	for _, q := range append([]string{o.canary, isoSharedText}, o.texts...) {
		searches = append(searches, map[string]any{"query": q, "k": 50})
	}
	for _, kb := range o.kbs {
		searches = append(searches, map[string]any{"query": o.canary, "knowledge_base_ids": []string{kb}, "k": 50})
	}
	// Searches of one organization are recorded in order, so waiting for
	// the last one's token waits for all of them.
	var last string
	for _, body := range searches {
		var res struct {
			Results     json.RawMessage `json:"results"`
			Consistency string          `json:"consistency"`
		}
		w.expect(t, http.StatusOK, caller, http.MethodPost, "/v1/knowledge-bases/search", owner, body).json(t, &res)
		snap[fmt.Sprintf("search %v", body)] = string(res.Results)
		last = res.Consistency
	}
	// The audit trail, less the record of the snapshots' own searches and
	// of their own reads of audit content (the owner holds
	// audit:read-content, so each snapshot's audit read is recorded).
	mine := map[string]bool{}
	myReads := map[string]bool{}
	for _, e := range w.rec.by(caller) {
		if e.path == "/v1/knowledge-bases/search" {
			mine[e.header.Get("X-Correlation-Id")] = true
		}
		if strings.HasPrefix(e.path, "/v1/audit/events?") {
			myReads[e.header.Get("X-Correlation-Id")] = true
		}
	}
	events, items, _ := w.auditItems(t, caller, owner, "consistency="+url.QueryEscape(last))
	var kept []string
	for i, e := range events {
		if e.Type == "KnowledgeSearched" && mine[e.CorrelationID] {
			continue
		}
		if e.Type == "AuditContentRead" && myReads[e.CorrelationID] {
			continue
		}
		kept = append(kept, string(items[i]))
	}
	if len(mine) == 0 || len(kept) == len(events) {
		t.Fatalf("control: the snapshot of org %s does not recognise its own searches in the audit trail", o.label)
	}
	snap["audit events"] = strings.Join(kept, "\n")
	snap["audit event count"] = fmt.Sprint(len(kept))
	// Every live credential of the org still works.
	for _, p := range o.principals {
		snap["GET /v1/org as "+p.label] = fmt.Sprint(w.call(t, caller, http.MethodGet, "/v1/org", p.token, nil).status)
	}
	return snap
}

func isoSameSnapshot(t testing.TB, o *isoOrg, who string, before, after map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(before))
	for k := range before {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if after[k] != before[k] {
			t.Errorf("%s changed org %s: %s\nbefore: %s\nafter:  %s", who, o.label, k, before[k], after[k])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%s changed the shape of org %s's snapshot: %d entries, then %d", who, o.label, len(before), len(after))
	}
}

// ---------------------------------------------------------------------------
// Comparing answers and scanning for leaks.

var isoCorrelationField = regexp.MustCompile(`,?"correlation_id":"[^"]*"`)

// isoNormalize removes the correlation_id field, which differs per request.
func isoNormalize(b []byte) string { return string(isoCorrelationField.ReplaceAll(b, nil)) }

// isoHeadersDiffer lists the headers that differ, ignoring the ones that
// differ per request.
func isoHeadersDiffer(a, b http.Header) []string {
	var diff []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		if k == "Date" || k == "X-Correlation-Id" {
			continue
		}
		if !slices.Equal(a.Values(k), b.Values(k)) {
			diff = append(diff, fmt.Sprintf("%s: %q vs %q", k, a.Values(k), b.Values(k)))
		}
	}
	sort.Strings(diff)
	return diff
}

// isoSameAnswer fails unless got answers exactly like base (an unknown id).
func isoSameAnswer(t testing.TB, what string, got, base response) {
	t.Helper()
	if got.status != base.status || isoNormalize(got.body) != isoNormalize(base.body) {
		t.Errorf("existence oracle: %s answers %d %s\nbut the same call with an unknown id answers %d %s",
			what, got.status, bytes.TrimSpace(got.body), base.status, bytes.TrimSpace(base.body))
		return
	}
	if d := isoHeadersDiffer(got.header, base.header); len(d) > 0 {
		t.Errorf("existence oracle: %s answers with other headers than for an unknown id: %v", what, d)
	}
}

// isoEchoField matches the fields of an audit event that record what the
// caller itself sent: the path and resource of an AccessDenied event, the
// query of a KnowledgeSearched event.
// isoAuditRecord reports whether path reads the audit record (events,
// narratives, the export), which holds the caller's own requests.
func isoAuditRecord(path string) bool {
	return strings.HasPrefix(path, "/v1/audit/events") || strings.HasPrefix(path, "/v1/audit/narratives") ||
		strings.HasPrefix(path, "/v1/audit/export")
}

var isoEchoField = regexp.MustCompile(`"(?:path|resource|query)":"[^"]*"`)

// isoEchoText and isoEchoArgs match the fields of conversations and of
// audit events that record what the caller wrote to a bot: a question's
// content, and the arguments its model took from it (a JSON string, or in
// a stream's tool.call event a JSON object).
var (
	isoEchoText = regexp.MustCompile(`"(?:content|arguments)":"(?:[^"\\]|\\.)*"`)
	isoEchoArgs = regexp.MustCompile(`"arguments":\{[^{}]*\}`)
)

type isoLeak struct {
	ex      isoExchange
	needle  string
	excerpt string
}

// isoFindLeaks scans the raw headers and bodies of exchanges for needles.
// The only bytes it skips are, inside audit responses, the path and
// resource fields of the callers' own denied attempts that record a path
// the same callers requested, and the query of their own searches; and,
// inside audit and conversation responses, the content of the callers'
// own questions to their bots and the tool arguments taken from them
// (echoes holds those paths, queries, questions and arguments): an org's
// record may say which path its own member asked for, what it searched
// for and what it wrote to a bot, identifiers of other orgs included.
func isoFindLeaks(exchanges []isoExchange, needles []string, echoes map[string]bool) []isoLeak {
	var leaks []isoLeak
	for _, ex := range exchanges {
		var hay bytes.Buffer
		keys := make([]string, 0, len(ex.header))
		for k := range ex.header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range ex.header[k] {
				fmt.Fprintf(&hay, "%s: %s\n", k, v)
			}
		}
		body := ex.body
		if p, q, ok := strings.Cut(ex.path, "?"); ok && p == "/v1/audit/access" {
			// The access review names what it was asked about (the
			// subject or the resource of the query): an echo, not a leak.
			body = isoAccessEchoes(body, q)
		}
		if isoAuditRecord(ex.path) && len(echoes) > 0 {
			body = isoEchoField.ReplaceAllFunc(body, func(m []byte) []byte {
				_, v, _ := strings.Cut(string(m), `":"`)
				v = strings.TrimSuffix(v, `"`)
				if echoes[v] || echoes["/v1/"+v] {
					return []byte(`"echo":"-"`)
				}
				return m
			})
		}
		if len(echoes) > 0 && (isoAuditRecord(ex.path) || strings.HasPrefix(ex.path, "/v1/conversations")) {
			echoed := func(m []byte, decode bool) []byte {
				_, raw, _ := bytes.Cut(m, []byte(":"))
				v := string(raw)
				if decode && json.Unmarshal(raw, &v) != nil {
					return m
				}
				if echoes[v] {
					return []byte(`"echo":"-"`)
				}
				return m
			}
			body = isoEchoText.ReplaceAllFunc(body, func(m []byte) []byte { return echoed(m, true) })
			body = isoEchoArgs.ReplaceAllFunc(body, func(m []byte) []byte { return echoed(m, false) })
		}
		hay.Write(body)
		data := hay.Bytes()
		for _, n := range needles {
			if i := bytes.Index(data, []byte(n)); i >= 0 {
				lo, hi := max(0, i-80), min(len(data), i+len(n)+80)
				leaks = append(leaks, isoLeak{ex: ex, needle: n, excerpt: string(data[lo:hi])})
			}
		}
	}
	return leaks
}

// isoAccessEchoes blanks, in an access review's answer, the subject and
// the resource the query asked about.
func isoAccessEchoes(body []byte, rawQuery string) []byte {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return body
	}
	for _, name := range []string{"subject", "resource"} {
		if v := q.Get(name); v != "" {
			asked, _ := json.Marshal(v)
			body = bytes.Replace(body, []byte(`{"`+name+`":`+string(asked)), []byte(`{"`+name+`":"echo"`), 1)
		}
	}
	return body
}

func isoReportLeaks(t testing.TB, who string, leaks []isoLeak) {
	t.Helper()
	for i, l := range leaks {
		if i == 25 {
			t.Errorf("… and %d more leaks", len(leaks)-i)
			return
		}
		t.Errorf("LEAK to %s: %s %s (%d, caller %s) contains %q:\n…%s…", who, l.ex.method, l.ex.path, l.ex.status, l.ex.caller, l.needle, l.excerpt)
	}
}

// isoNeedles is every identifier of the victims, with the correlation ids
// of every request they made so far.
func isoNeedles(t testing.TB, w *isoWorld, victims ...*isoOrg) []string {
	t.Helper()
	var out []string
	for _, v := range victims {
		out = append(out, v.staticNeedles()...)
		out = append(out, "Secret Corp", strings.ToUpper(v.label)+"-CANARY")
		for _, e := range w.rec.by(v.label + "/") {
			if c := e.header.Get("X-Correlation-Id"); c != "" {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	for _, n := range out {
		if len(n) < 8 {
			t.Fatalf("needle %q is too short to scan for reliably", n)
		}
	}
	return out
}

// isoEchoes is every URL path the exchanges requested, every search query
// they sent, and what they wrote to bots: each question, each tool line's
// arguments, the values those name and the resources a refusal of them
// records, and the bots they started conversations with.
func isoEchoes(exchanges []isoExchange) map[string]bool {
	out := map[string]bool{}
	for _, e := range exchanges {
		p, _, _ := strings.Cut(e.path, "?")
		out[p] = true
		if strings.HasPrefix(p, "/v1/conversations") && e.method == http.MethodPost && e.request != nil {
			isoBotEchoes(e.request, out)
		}
		if p == "/v1/knowledge-bases/search" && e.request != nil {
			var body struct {
				Query string `json:"query"`
			}
			if json.Unmarshal(e.request, &body) == nil && body.Query != "" {
				out[strings.TrimSpace(body.Query)] = true
			}
		}
	}
	return out
}

// isoBotEchoes adds to out what a request body wrote to a bot.
func isoBotEchoes(request []byte, out map[string]bool) {
	var body struct {
		BotID   string `json:"bot_id"`
		Content string `json:"content"`
	}
	if json.Unmarshal(request, &body) != nil {
		return
	}
	if body.BotID != "" {
		out["bots/"+body.BotID] = true
	}
	if body.Content == "" {
		return
	}
	out[body.Content] = true
	for line := range strings.SplitSeq(body.Content, "\n") {
		rest, ok := strings.CutPrefix(line, "@tool ")
		if !ok {
			continue
		}
		_, args, _ := strings.Cut(rest, " ")
		out[args] = true
		var named map[string]any
		if json.Unmarshal([]byte(args), &named) != nil {
			continue
		}
		for _, v := range named {
			values, _ := v.([]any)
			if s, ok := v.(string); ok {
				values = []any{s}
			}
			for _, x := range values {
				if s, ok := x.(string); ok {
					out[s] = true
					for _, resource := range []string{"knowledge-bases/", "documents/", "bots/"} {
						out[resource+s] = true
					}
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// The tests.

// TestIsolationRouteCoverage: the suite knows every route the router serves
// and serves no stale entry, so that a new endpoint cannot be forgotten.
func TestIsolationRouteCoverage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	table := isoRoutes()
	walked := map[string]bool{}
	for _, k := range isoWalk(t, h) {
		walked[k.String()] = true
		r, ok := isoKnown(t, table, k)
		if !ok {
			continue
		}
		hasVar := strings.Contains(k.path, "{")
		switch {
		case hasVar && r.pathVar == isoNoVar:
			t.Errorf("route %s has a path variable but isoRoutes does not say what it names", k)
		case !hasVar && r.pathVar != isoNoVar:
			t.Errorf("isoRoutes gives route %s a path variable it does not have", k)
		case strings.Count(k.path, "{") != isoVarCount(r.pathVar):
			t.Errorf("route %s has %d path variables but its pathVar names %d; teach isoFill and targets about it", k, strings.Count(k.path, "{"), isoVarCount(r.pathVar))
		case r.pathVar == isoKBIDs || (r.bodyVar != isoNoVar && isoVarCount(r.bodyVar) != 0):
			t.Errorf("route %s: a list of identifiers goes in a body (bodyVar), one identifier in the path (pathVar)", k)
		case (r.bodyVar != isoNoVar) != (r.bodyWith != nil):
			t.Errorf("route %s: bodyVar and bodyWith go together", k)
		case r.public == strings.HasPrefix(k.path, "/v1/"):
			t.Errorf("route %s: public=%v, but only routes outside /v1 are public", k, r.public)
		case !r.public && r.perm == access.PermissionUnknown:
			t.Errorf("route %s: isoRoutes does not say which permission it needs", k)
		case k.method != http.MethodGet && !r.public && k.method != http.MethodDelete && r.bodies == nil:
			t.Errorf("route %s takes a body but isoRoutes gives none", k)
		case k.method == http.MethodGet && !r.public && r.pathVar == isoNoVar && r.queries == nil:
			t.Errorf("collection %s has no queries in isoRoutes", k)
		}
	}
	for k := range table {
		if !walked[k] {
			t.Errorf("isoRoutes lists %s, which the router does not serve", k)
		}
	}
}

// TestIsolationAcrossOrganizations: org B's owner, admin, builder, viewer,
// auditor, member and all-permission service account try every route with
// the identifiers of orgs A and C. Every id-addressed call answers exactly
// like the same call with an unknown id; collections hold only B's data;
// A and C are unchanged afterwards; and no byte of A or C reaches B.
func TestIsolationAcrossOrganizations(t *testing.T) {
	t.Parallel()
	w := isoNewWorld(t)
	a := w.addOrg(t, "alpha", "Alpha Secret Corp")
	b := w.addOrg(t, "bravo", "Bravo Rival Inc")
	c := w.addOrg(t, "charlie", "Charlie Hidden Secret Corp")
	victims := []*isoOrg{a, c}
	before := map[*isoOrg]map[string]string{a: w.snapshot(t, a), c: w.snapshot(t, c)}
	table := isoRoutes()
	routes := isoWalk(t, w.h)

	// Identifiers of A and C, alone or mixed with B's own, in paths and in
	// bodies: every answer is the answer for an unknown identifier.
	t.Run("path variables", func(t *testing.T) {
		for _, k := range routes {
			r, ok := isoKnown(t, table, k)
			if !ok || (r.pathVar == isoNoVar && r.bodyVar == isoNoVar) {
				continue
			}
			kind := r.pathVar
			if kind == isoNoVar {
				kind = r.bodyVar
			}
			for _, p := range b.principals {
				t.Run(k.String()+" as "+p.label, func(t *testing.T) {
					t.Parallel()
					caller := b.label + "/" + p.label
					bodies := []isoBody{{}}
					if r.bodies != nil && r.bodyVar == isoNoVar {
						bodies = r.bodies(b, p.label, victims)
					}
					queries := []isoQuery{{}}
					if r.queries != nil {
						queries = r.queries(victims)
					}
					unknown := func() string {
						if kind == isoMemberSub {
							return "zulu-" + isoRand(t)
						}
						return uuid.Must(uuid.NewV7()).String()
					}
					// standIn is values with every identifier that is not
					// bravo's own replaced by an unknown one; mixed says
					// whether bravo's own identifiers are left.
					standIn := func(values []string) (_ []string, shape string, mixed bool) {
						out := slices.Clone(values)
						parts := make([]string, len(out))
						for i, v := range out {
							if b.knows(v) {
								parts[i], mixed = v, true
							} else {
								out[i], parts[i] = unknown(), "?"
							}
						}
						return out, strings.Join(parts, ","), mixed
					}
					send := func(body isoBody, q isoQuery, values []string) response {
						path, payload := k.path, body.v
						if r.pathVar != isoNoVar {
							path = isoFill(k.path, values...)
						}
						if r.bodyVar != isoNoVar {
							payload = r.bodyWith(b, p.label, values)
						}
						return w.call(t, caller, k.method, path+q.q, p.token, payload)
					}
					allUnknown := func() []string {
						out := make([]string, max(1, isoVarCount(kind)))
						for i := range out {
							out[i] = unknown()
						}
						return out
					}
					for _, body := range bodies {
						want := http.StatusForbidden
						if p.holds(append([]access.Permission{r.perm}, body.needs...)...) {
							want = http.StatusNotFound
						}
						for _, q := range queries {
							base := send(body, q, allUnknown())
							again := send(body, q, allUnknown())
							isoSameAnswer(t, fmt.Sprintf("control: %s%s with two unknown ids", k, q.q), again, base)
							if base.status != want {
								t.Errorf("%s %s%s with an unknown id as %s = %d %s, want %d", k.method, k.path, q.q, caller, base.status, base.body, want)
							}
							bases := map[string]response{}
							for _, v := range victims {
								for _, values := range v.targets(kind, b) {
									stand, shape, mixed := standIn(values)
									sb, seen := bases[shape]
									if !seen {
										sb = send(body, q, stand)
										bases[shape] = sb
									}
									got := send(body, q, values)
									what := fmt.Sprintf("%s %s%s with org %s's %q, as %s", k.method, k.path, q.q, v.label, values, caller)
									isoSameAnswer(t, what, got, sb)
									// Bravo's own base may refuse the action (403)
									// where an unknown one is not found.
									if got.status != want && (!mixed || got.status != http.StatusForbidden) {
										t.Errorf("%s = %d %s, want %d", what, got.status, got.body, want)
									}
								}
							}
						}
					}
				})
			}
		}
	})

	t.Run("methods the router does not serve", func(t *testing.T) {
		owner := b.principal(t, "owner")
		for _, tpl := range []string{"/v1/bots/{id}", "/v1/members/{sub}", "/v1/service-accounts/{id}", "/v1/knowledge-bases/{id}",
			"/v1/knowledge-bases/{id}/grants", "/v1/knowledge-bases/{id}/documents", "/v1/knowledge-bases/{id}/documents/{doc}",
			"/v1/conversations/{id}", "/v1/conversations/{id}/messages",
			"/v1/data-sources/{id}", "/v1/data-sources/{id}/test", "/v1/data-sources/{id}/grants"} {
			kind := isoBotID
			switch {
			case strings.Contains(tpl, "{doc}"):
				kind = isoDocument
			case strings.HasPrefix(tpl, "/v1/knowledge-bases/"):
				kind = isoKBID
			case strings.HasPrefix(tpl, "/v1/conversations/"):
				kind = isoConversationID
			case strings.HasPrefix(tpl, "/v1/data-sources/"):
				kind = isoDataSourceID
			}
			for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet, http.MethodDelete} {
				served := false
				for _, k := range routes {
					served = served || (k.method == m && k.path == tpl)
				}
				if served {
					continue
				}
				base := w.call(t, "bravo/owner", m, isoFill(tpl, uuid.Must(uuid.NewV7()).String()), owner.token, nil)
				for _, v := range victims {
					for _, values := range v.targets(kind, nil) {
						got := w.call(t, "bravo/owner", m, isoFill(tpl, values...), owner.token, nil)
						isoSameAnswer(t, fmt.Sprintf("%s %s with org %s's %q", m, tpl, v.label, values), got, base)
					}
				}
			}
		}
	})

	// Commands without path variables act on B only.
	t.Run("collection commands", func(t *testing.T) {
		for _, k := range routes {
			r, ok := isoKnown(t, table, k)
			if !ok || r.public || r.pathVar != isoNoVar || k.method == http.MethodGet {
				continue
			}
			for _, p := range b.principals {
				t.Run(k.String()+" as "+p.label, func(t *testing.T) {
					t.Parallel()
					caller := b.label + "/" + p.label
					for _, body := range r.bodies(b, p.label, victims) {
						want := http.StatusForbidden
						if p.holds(append([]access.Permission{r.perm}, body.needs...)...) && (!r.usersOnly || p.kind == identity.KindUser) {
							want = http.StatusCreated
							if r.okStatus != 0 {
								want = r.okStatus
							}
						}
						got := w.call(t, caller, k.method, k.path, p.token, body.v)
						if got.status != want {
							t.Errorf("%s as %s = %d %s, want %d", k, caller, got.status, got.body, want)
							continue
						}
						if got.status == http.StatusOK {
							sent, _ := json.Marshal(body.v)
							isoCheckOwnView(t, k, isoQuery{q: " " + string(sent)}, caller, got, b, victims)
						}
						if got.status != http.StatusCreated {
							continue
						}
						var created struct {
							ID  string `json:"id"`
							Sub string `json:"sub"`
						}
						got.json(t, &created)
						id := created.ID + created.Sub
						for _, v := range victims {
							if v.knows(id) || id == v.id {
								t.Errorf("%s as %s created %q, which is org %s's", k, caller, id, v.label)
							}
						}
						b.remember(id)
					}
				})
			}
		}
	})

	// Queries without path variables see B only, whatever they name.
	t.Run("collection queries", func(t *testing.T) {
		for _, k := range routes {
			r, ok := isoKnown(t, table, k)
			if !ok || r.public || r.pathVar != isoNoVar || k.method != http.MethodGet {
				continue
			}
			for _, p := range b.principals {
				t.Run(k.String()+" as "+p.label, func(t *testing.T) {
					t.Parallel()
					caller := b.label + "/" + p.label
					for _, q := range r.queries(victims) {
						want := http.StatusForbidden
						if p.holds(r.perm) {
							want = http.StatusOK
						}
						got := w.call(t, caller, k.method, k.path+q.q, p.token, nil)
						if got.status != want {
							t.Errorf("%s%s as %s = %d %s, want %d", k, q.q, caller, got.status, got.body, want)
							continue
						}
						if got.status == http.StatusOK {
							isoCheckOwnView(t, k, q, caller, got, b, victims)
						}
					}
				})
			}
		}
	})

	// Bravo's bots are given the victims' identifiers and words, as tool
	// calls injected into questions that the built-in model obeys: every
	// call naming another organization's resource is refused, searching
	// for their words finds only bravo's passages, and no byte of theirs
	// reaches bravo (the scan below reads these answers, the
	// conversations and bravo's audit trail of them).
	t.Run("bots given another organization's identifiers", func(t *testing.T) {
		foreign := func(id string) bool {
			for _, v := range victims {
				if v.knows(id) || id == v.id {
					return true
				}
			}
			return false
		}
		lines := isoToolLines(b, victims)
		// A turn makes at most 8 tool calls: 6 probes and a control.
		control := isoToolCall("search_knowledge", false, map[string]any{"query": isoSharedText})
		askers := []string{"owner", "member", "service-account"}
		convs, last := map[string]string{}, map[string]string{}
		for _, label := range askers {
			convs[label] = w.startConversation(t, "bravo/"+label, b.principal(t, label).token, b.helpdesk, "probe")
			b.remember(convs[label])
		}
		for i := 0; i*6 < len(lines); i++ {
			batch := append(slices.Clone(lines[i*6:min(len(lines), (i+1)*6)]), control)
			label := askers[i%len(askers)]
			content := []string{"What is the vacation policy?"}
			for _, l := range batch {
				content = append(content, l.String())
			}
			caller := "bravo/" + label
			a := w.ask(t, caller, b.principal(t, label).token, convs[label], strings.Join(content, "\n"), i%2 == 1)
			last[label] = a.Consistency
			calls := map[string]string{}
			for _, c := range a.Message.ToolCalls {
				calls[c.Tool+" "+c.Arguments] = c.Status + " (" + c.Reason + ")"
			}
			for _, l := range batch {
				status, asked := calls[l.tool+" "+l.args]
				switch {
				case !asked:
					t.Errorf("%s: the model did not ask for %s; it asked for %v", caller, l, calls)
				case l.names && !strings.HasPrefix(status, "denied"):
					t.Errorf("%s: %s, naming another organization's resource, was %s", caller, l, status)
				case !l.names && !strings.HasPrefix(status, "ok"):
					t.Errorf("%s: %s did not run: %s", caller, l, status)
				}
			}
			cited := false
			for _, c := range a.Message.Citations {
				for _, id := range []string{c.ChunkID, c.DocumentID, c.KnowledgeBaseID} {
					if foreign(id) || !b.knows(id) {
						t.Errorf("%s: the answer cites %q (chunk %s of document %s in base %s), which is not bravo's", caller, id, c.ChunkID, c.DocumentID, c.KnowledgeBaseID)
					}
				}
				cited = cited || c.DocumentID == b.docs[0].id
			}
			if !cited {
				t.Errorf("control: %s: the answer does not cite bravo's own handbook: %q %+v", caller, a.Message.Content, a.Message.Citations)
			}
		}
		for label, conv := range convs {
			w.expect(t, http.StatusOK, "bravo/"+label, http.MethodGet, "/v1/conversations/"+conv, b.principal(t, label).token, nil,
				"Palisade-Consistency", last[label])
		}
	})

	t.Run("victims unchanged", func(t *testing.T) {
		for _, v := range victims {
			isoSameSnapshot(t, v, "org bravo's attempts", before[v], w.snapshot(t, v))
		}
	})

	t.Run("public routes", func(t *testing.T) {
		for _, k := range routes {
			r, ok := isoKnown(t, table, k)
			if !ok || !r.public {
				continue
			}
			w.expect(t, http.StatusOK, "bravo/owner", k.method, k.path, b.principal(t, "owner").token, nil)
			w.expect(t, http.StatusOK, "bravo/anonymous", k.method, k.path, "", nil)
		}
	})

	// B reads its whole audit trail, now holding its attempts, last.
	t.Run("audit trail", func(t *testing.T) {
		for _, label := range []string{"owner", "service-account", "auditor", "admin"} {
			events, _ := w.audit(t, "bravo/"+label, b.principal(t, label).token, "")
			for _, e := range events {
				if e.OrgID != b.id || !strings.Contains(e.Stream, "-"+b.id+"_") {
					t.Errorf("org bravo's audit trail, read by its %s, holds event %s (%s) of org %q in stream %s", label, e.ID, e.Type, e.OrgID, e.Stream)
				}
			}
		}
	})

	t.Run("no victim byte reaches bravo", func(t *testing.T) {
		got := w.rec.by("bravo/")
		if len(got) < 500 {
			t.Fatalf("only %d exchanges of bravo were recorded", len(got))
		}
		isoReportLeaks(t, "org bravo", isoFindLeaks(got, isoNeedles(t, w, victims...), isoEchoes(got)))
	})

	// Control: the scanner finds the victims' identifiers in their own
	// answers, so that finding none in bravo's means something.
	t.Run("control: the scanner finds what it looks for", func(t *testing.T) {
		for _, v := range victims {
			leaks := isoFindLeaks(w.rec.by(v.label+"/"), isoNeedles(t, w, v), nil)
			found := map[string]bool{}
			for _, l := range leaks {
				found[l.needle] = true
			}
			for _, n := range []string{v.id, v.name, v.canary, v.bots[0], v.sas[0], v.subs[0], v.eventIDs[0], v.kb,
				v.kbs[0], v.kbs[1], v.archivedKBs[0], v.kbNames[1], v.docs[0].id, v.deletedDocs[0].id, v.docTitles[0],
				v.texts[0], v.contentHashes[0], v.chunkIDs[0], v.searchIDs[0],
				v.helpdesk, v.conversations[0], v.archivedConversations[0], v.convRecordIDs[0],
				v.sources[0], v.sources[1], v.deletedSources[0], v.sourceNames[0]} {
				if !found[n] {
					t.Errorf("control: the scanner does not find %q in org %s's own answers", n, v.label)
				}
			}
			// And it would see an echo that is not the caller's own.
			fake := isoExchange{path: "/v1/audit/events", header: http.Header{},
				body: []byte(`{"items":[{"data":{"path":"/v1/bots/` + v.bots[0] + `","resource":"bots/` + v.bots[0] + `"}}]}`)}
			if len(isoFindLeaks([]isoExchange{fake}, []string{v.bots[0]}, map[string]bool{"/v1/bots/other": true})) == 0 {
				t.Error("control: the scanner skips an audit path the caller did not request")
			}
		}
	})

	// No answer of any route, to any caller, carries the global log
	// position: commands answer an opaque consistency token instead, and
	// the audit API numbers each organization's events by its own
	// sequence.
	t.Run("no answer carries a global position", func(t *testing.T) {
		tokens := 0
		for _, e := range w.rec.by("") {
			if e.header.Get("Palisade-Position") != "" {
				t.Errorf("%s %s %s answered Palisade-Position", e.caller, e.method, e.path)
			}
			if e.header.Get("Palisade-Consistency") != "" {
				tokens++
			}
			var body any
			if json.Unmarshal(e.body, &body) == nil && isoHasKey(body, "position") {
				t.Errorf("%s %s %s answered a position field: %.300s", e.caller, e.method, e.path, e.body)
			}
		}
		if tokens == 0 {
			t.Error("control: no command answered a Palisade-Consistency token")
		}
	})
}

// isoHasKey reports whether key names a field anywhere in a decoded JSON
// value.
func isoHasKey(v any, key string) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == key || isoHasKey(x, key) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if isoHasKey(x, key) {
				return true
			}
		}
	}
	return false
}

// isoCheckOwnView checks that a 200 answer to a collection query holds the
// attacker's own data only.
func isoCheckOwnView(t testing.TB, k isoRouteKey, q isoQuery, caller string, got response, own *isoOrg, victims []*isoOrg) {
	t.Helper()
	where := fmt.Sprintf("%s%s as %s", k, q.q, caller)
	foreign := func(id string) bool {
		for _, v := range victims {
			if v.knows(id) || id == v.id {
				return true
			}
		}
		return false
	}
	switch k.path {
	case "/v1/audit/access":
		// Nothing of another org, and nobody of the caller's org for a
		// subject or resource it does not hold.
		var answer struct {
			Member   bool
			Roles    []string
			Subjects []struct{ Subject string }
		}
		got.json(t, &answer)
		if answer.Member || len(answer.Roles) > 0 || len(answer.Subjects) > 0 {
			t.Errorf("%s = %s, want no member and no subjects", where, got.body)
		}
	case "/v1/org":
		var org struct{ ID, Name string }
		got.json(t, &org)
		if org.ID != own.id || org.Name != own.name {
			t.Errorf("%s = org %q %q, want its own %q %q", where, org.ID, org.Name, own.id, own.name)
		}
	case "/v1/org/issuers":
		// The suite's deployment trusts no external issuer, so no
		// organization binds one: the list is empty, whoever else binds.
		var list struct{ Items []json.RawMessage }
		got.json(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("%s lists issuers %s, but none is bound", where, list.Items)
		}
	case "/v1/members":
		var list struct{ Items []struct{ Sub string } }
		got.json(t, &list)
		subs := map[string]bool{}
		for _, m := range list.Items {
			subs[m.Sub] = true
			if foreign(m.Sub) || !own.knows(m.Sub) {
				t.Errorf("%s lists member %q, which is not its org's", where, m.Sub)
			}
		}
		if q.q == "?limit=500" {
			for _, s := range own.subs {
				if !subs[s] {
					t.Errorf("%s misses its own member %q", where, s)
				}
			}
		}
	case "/v1/service-accounts":
		var list struct{ Items []struct{ ID string } }
		got.json(t, &list)
		ids := map[string]bool{}
		for _, sa := range list.Items {
			ids[sa.ID] = true
			if foreign(sa.ID) || !own.knows(sa.ID) {
				t.Errorf("%s lists service account %q, which is not its org's", where, sa.ID)
			}
		}
		if q.q == "?limit=500" {
			for _, id := range append(slices.Clone(own.sas), own.revokedSAs...) {
				if !ids[id] {
					t.Errorf("%s misses its own service account %q", where, id)
				}
			}
		}
	case "/v1/bots":
		var list struct{ Items []struct{ ID string } }
		got.json(t, &list)
		ids := map[string]bool{}
		for _, bot := range list.Items {
			ids[bot.ID] = true
			if foreign(bot.ID) || !own.knows(bot.ID) {
				t.Errorf("%s lists bot %q, which is not its org's", where, bot.ID)
			}
		}
		if q.q == "?include_archived=true&limit=500" {
			for _, id := range append(slices.Clone(own.bots), own.archivedBots...) {
				if !ids[id] {
					t.Errorf("%s misses its own bot %q", where, id)
				}
			}
		}
	case "/v1/knowledge-bases":
		var list struct{ Items []struct{ ID string } }
		got.json(t, &list)
		ids := map[string]bool{}
		for _, kb := range list.Items {
			ids[kb.ID] = true
			if foreign(kb.ID) || !own.knows(kb.ID) {
				t.Errorf("%s lists knowledge base %q, which is not its org's", where, kb.ID)
			}
		}
		// The open bases, archived or not, are every reader's; archived
		// ones are listed when asked for.
		switch q.q {
		case "?limit=500":
			if !ids[own.kbs[0]] {
				t.Errorf("%s misses its own knowledge base %q", where, own.kbs[0])
			}
			for _, id := range own.archivedKBs {
				if ids[id] {
					t.Errorf("%s lists archived knowledge base %q unasked", where, id)
				}
			}
		case "?include_archived=true&limit=500":
			for _, id := range append([]string{own.kbs[0]}, own.archivedKBs...) {
				if !ids[id] {
					t.Errorf("%s misses its own knowledge base %q", where, id)
				}
			}
		}
	case "/v1/knowledge-bases/search":
		var res isoSearchResult
		got.json(t, &res)
		for _, hit := range res.Results {
			for _, id := range []string{hit.ChunkID, hit.DocumentID, hit.KnowledgeBaseID} {
				if foreign(id) || !own.knows(id) {
					t.Errorf("%s returns %q (chunk %s of document %s in base %s), which is not its org's", where, id, hit.ChunkID, hit.DocumentID, hit.KnowledgeBaseID)
				}
			}
			if slices.Contains(own.archivedKBs, hit.KnowledgeBaseID) {
				t.Errorf("%s returns chunk %s of an archived base", where, hit.ChunkID)
			}
			for _, d := range own.deletedDocs {
				if hit.DocumentID == d.id {
					t.Errorf("%s returns chunk %s of a deleted document", where, hit.ChunkID)
				}
			}
		}
		if res.SearchID == "" {
			t.Errorf("%s has no search id", where)
		}
		// Control: the caller's own handbook is found.
		if strings.Contains(q.q, isoSharedText) || strings.Contains(q.q, own.canary) {
			found := false
			for _, hit := range res.Results {
				found = found || hit.DocumentID == own.docs[0].id
			}
			if !found {
				t.Errorf("control: %s does not find its own handbook: %s", where, got.body)
			}
		}
	case "/v1/analytics/jobs":
		// The caller's own jobs and, with analytics:read, those of the
		// sources it may query: never a job or source of another org.
		var list struct {
			Items []struct {
				ID           string `json:"id"`
				DataSourceID string `json:"data_source_id"`
			}
		}
		got.json(t, &list)
		ids := map[string]bool{}
		for _, j := range list.Items {
			ids[j.ID] = true
			if foreign(j.ID) || foreign(j.DataSourceID) || !own.knows(j.DataSourceID) {
				t.Errorf("%s lists job %q of source %q, which is not its org's", where, j.ID, j.DataSourceID)
			}
		}
		if q.q == "?limit=500" && strings.HasSuffix(caller, "/owner") && !ids[own.analyticsJobs[0]] {
			t.Errorf("%s misses its own job %q", where, own.analyticsJobs[0])
		}
	case "/v1/conversations":
		// Only the caller's own conversations, whatever its roles.
		var list struct {
			Items []struct {
				ID        string `json:"id"`
				BotID     string `json:"bot_id"`
				StartedBy string `json:"started_by"`
			}
		}
		got.json(t, &list)
		_, label, _ := strings.Cut(caller, "/")
		me := own.principal(t, label)
		ids := map[string]bool{}
		for _, c := range list.Items {
			ids[c.ID] = true
			if foreign(c.ID) || !own.knows(c.ID) || foreign(c.BotID) || !own.knows(c.BotID) {
				t.Errorf("%s lists conversation %q with bot %q, which is not its org's", where, c.ID, c.BotID)
			}
			if c.StartedBy != me.sub {
				t.Errorf("%s lists conversation %q started by %q, not by the caller", where, c.ID, c.StartedBy)
			}
		}
		if q.namesVictim && len(list.Items) > 0 {
			t.Errorf("%s names another org's bot but lists %d conversations", where, len(list.Items))
		}
		if q.q == "?limit=500" {
			for id, starter := range own.convStarters {
				if starter == label && !ids[id] {
					t.Errorf("%s misses its own conversation %q", where, id)
				}
			}
		}
	case "/v1/jobs":
		// Every job of the caller's org, none of another's.
		var list struct {
			Items []struct {
				ID      string `json:"id"`
				Subject string `json:"subject"`
			}
		}
		got.json(t, &list)
		ids := map[string]bool{}
		for _, j := range list.Items {
			ids[j.ID] = true
			// Jobs the probes caused are not in own.jobs; every job's
			// subject is a stream of the caller's org.
			if foreign(j.ID) || foreign(j.Subject) || !strings.Contains(j.Subject, "-"+own.id+"_") {
				t.Errorf("%s lists job %q on %q, which is not its org's", where, j.ID, j.Subject)
			}
		}
		if q.q == "?limit=500" {
			for _, id := range own.jobs {
				if !ids[id] {
					t.Errorf("%s misses its own job %q", where, id)
				}
			}
		}
	case "/v1/data-sources":
		var list struct{ Items []struct{ ID string } }
		got.json(t, &list)
		ids := map[string]bool{}
		for _, d := range list.Items {
			ids[d.ID] = true
			if foreign(d.ID) || !own.knows(d.ID) {
				t.Errorf("%s lists data source %q, which is not its org's", where, d.ID)
			}
		}
		// Managers see every source; an analyst the granted one.
		label := caller[strings.Index(caller, "/")+1:]
		if q.q == "?limit=500" && (label == "owner" || label == "admin") {
			for _, id := range own.sources {
				if !ids[id] {
					t.Errorf("%s misses its own data source %q", where, id)
				}
			}
		}
	case "/v1/audit/events":
		var list struct{ Items []isoEvent }
		got.json(t, &list)
		for _, e := range list.Items {
			if e.OrgID != own.id || !strings.Contains(e.Stream, "-"+own.id+"_") {
				t.Errorf("%s returns event %s (%s) of org %q in stream %s", where, e.ID, e.Type, e.OrgID, e.Stream)
			}
		}
		if q.namesVictim && len(list.Items) > 0 {
			t.Errorf("%s names another org's streams, actors or requests but returns %d events", where, len(list.Items))
		}
		if !q.namesVictim && len(list.Items) == 0 {
			t.Errorf("%s returns no events, though the org has some", where)
		}
	case "/v1/audit/checkpoints":
		// The chain runs behind the log, so a page may still be empty;
		// whatever it holds is the caller's organization's.
		var list struct{ Items []struct{ Org string } }
		got.json(t, &list)
		for _, c := range list.Items {
			if c.Org != own.id {
				t.Errorf("%s returns a checkpoint of org %q", where, c.Org)
			}
		}
	case "/v1/audit/verify":
		var report struct {
			Org      string
			Findings []struct {
				EventID string `json:"event_id"`
			}
		}
		got.json(t, &report)
		if report.Org != own.id {
			t.Errorf("%s verifies org %q, not its own", where, report.Org)
		}
		for _, f := range report.Findings {
			if foreign(f.EventID) {
				t.Errorf("%s names another org's event %s", where, f.EventID)
			}
		}
	case "/v1/audit/narratives":
		var list struct {
			Items []struct {
				CorrelationID string `json:"correlation_id"`
			}
		}
		got.json(t, &list)
		for _, n := range list.Items {
			for _, v := range victims {
				if slices.Contains(v.correlations, n.CorrelationID) {
					t.Errorf("%s returns the narrative of org %s's request %s", where, v.label, n.CorrelationID)
				}
			}
		}
		if q.namesVictim && len(list.Items) > 0 {
			t.Errorf("%s names another org's resources or actors but returns %d narratives", where, len(list.Items))
		}
		if !q.namesVictim && len(list.Items) == 0 {
			t.Errorf("%s returns no narratives, though the org has some", where)
		}
	case "/v1/audit/export":
		lines := bytes.Split(bytes.TrimSpace(got.body), []byte("\n"))
		for _, line := range lines {
			var e struct {
				OrgID    string `json:"org_id"`
				Stream   string `json:"stream"`
				Metadata struct {
					TenantUID string `json:"tenant_uid"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("%s: line %s: %v", where, line, err)
			}
			if e.OrgID+e.Metadata.TenantUID != own.id || (e.Stream != "" && !strings.Contains(e.Stream, "-"+own.id+"_")) {
				t.Errorf("%s exports an event of org %q%q in stream %s", where, e.OrgID, e.Metadata.TenantUID, e.Stream)
			}
		}
		if len(lines) < 15 {
			t.Errorf("%s exports %d events, though the org has more", where, len(lines))
		}
	default:
		t.Errorf("%s: the suite has no check of what this collection returns; add one to isoCheckOwnView", where)
	}
}

// TestIsolationPlatformToken: the platform operator can create
// organizations and nothing else: every org route answers 403 or 404,
// never content, whatever ids or parameters it names, and changes nothing.
func TestIsolationPlatformToken(t *testing.T) {
	t.Parallel()
	w := isoNewWorld(t)
	a := w.addOrg(t, "alpha", "Alpha Secret Corp")
	c := w.addOrg(t, "charlie", "Charlie Hidden Secret Corp")
	victims := []*isoOrg{a, c}
	before := map[*isoOrg]map[string]string{a: w.snapshot(t, a), c: w.snapshot(t, c)}
	table := isoRoutes()
	platform := w.h.platform
	const caller = "platform/ops"

	for _, k := range isoWalk(t, w.h) {
		r, ok := isoKnown(t, table, k)
		if !ok {
			continue
		}
		switch {
		case r.public:
			w.expect(t, http.StatusOK, caller, k.method, k.path, platform, nil)
		case k.String() == "POST /v1/orgs":
			// Its one power: the new organization is new, and empty.
			var org struct{ ID string }
			w.expect(t, http.StatusCreated, caller, k.method, k.path, platform,
				map[string]string{"name": "Platform Probe Org", "owner_sub": "platform-probe-owner"}).json(t, &org)
			for _, v := range victims {
				if org.ID == v.id {
					t.Errorf("POST /v1/orgs by the platform returned org %s's id", v.label)
				}
			}
			tok := isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: org.ID}, "platform-probe-owner")
			var bots struct{ Items []struct{ ID string } }
			w.expect(t, http.StatusOK, "platform/new-org-owner", http.MethodGet, "/v1/bots?include_archived=true", tok, nil).json(t, &bots)
			if len(bots.Items) != 0 {
				t.Errorf("a new organization starts with %d bots", len(bots.Items))
			}
		case k.String() == "DELETE /v1/orgs/{id}":
			// The platform may close any organization, but only with its
			// name as confirmation: a wrong one is 422 and closes nothing.
			for _, v := range victims {
				w.expect(t, http.StatusUnprocessableEntity, caller, k.method, isoFill(k.path, v.id), platform, map[string]any{"confirm": "not the name"})
			}
		case k.String() == "PUT /v1/orgs/{id}/quotas":
			// Its one power over an existing organization; tried with a
			// value it refuses (422), so the victims' records stay as
			// they were. TestQuotasArePlatformOnly sets quotas for real.
			for _, v := range victims {
				w.expect(t, http.StatusUnprocessableEntity, caller, k.method, isoFill(k.path, v.id), platform, map[string]any{"max_bots": -1})
			}
		default:
			var paths []string
			if r.pathVar == isoNoVar {
				paths = append(paths, k.path)
				for _, v := range victims {
					paths = append(paths, k.path+"?org="+v.id+"&org_id="+v.id)
					if r.queries != nil {
						for _, q := range r.queries([]*isoOrg{v}) {
							paths = append(paths, k.path+q.q)
						}
					}
				}
			} else {
				for _, v := range victims {
					for _, values := range v.targets(r.pathVar, nil) {
						paths = append(paths, isoFill(k.path, values...))
					}
				}
			}
			bodies := []isoBody{{}}
			if r.bodies != nil {
				bodies = r.bodies(a, "platform", victims)
			}
			if r.bodyVar != isoNoVar {
				for _, v := range victims {
					for _, values := range v.targets(r.bodyVar, nil) {
						bodies = append(bodies, isoBody{v: r.bodyWith(a, "platform", values)})
					}
				}
			}
			for _, p := range paths {
				for _, body := range bodies {
					got := w.call(t, caller, k.method, p, platform, body.v)
					if got.status != http.StatusForbidden && got.status != http.StatusNotFound {
						t.Errorf("platform token: %s %s = %d %s, want 403 or 404", k.method, p, got.status, got.body)
					}
				}
			}
		}
	}

	for _, v := range victims {
		isoSameSnapshot(t, v, "the platform token", before[v], w.snapshot(t, v))
	}
	got := w.rec.by("platform/")
	isoReportLeaks(t, "the platform", isoFindLeaks(got, isoNeedles(t, w, victims...), nil))
}

// TestIsolationMembershipIsPerOrganization: the same subject in two orgs
// with different roles gets, with each org's token, that org's view and
// that org's roles only; changing or ending one membership leaves the other
// alone; and a subject of one org is nobody in another.
func TestIsolationMembershipIsPerOrganization(t *testing.T) {
	t.Parallel()
	w := isoNewWorld(t)
	a := w.addOrg(t, "alpha", "Alpha Secret Corp")
	b := w.addOrg(t, "bravo", "Bravo Rival Inc")
	aOwner, bOwner := a.principal(t, "owner").token, b.principal(t, "owner").token
	const sam = "shared-sam"
	w.expect(t, http.StatusCreated, "alpha/owner", http.MethodPost, "/v1/members", aOwner, map[string]any{"sub": sam, "roles": []string{"builder"}})
	w.expect(t, http.StatusCreated, "bravo/owner", http.MethodPost, "/v1/members", bOwner, map[string]any{"sub": sam, "roles": []string{"owner"}})
	samA := isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: a.id}, sam)
	samB := isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: b.id}, sam)

	view := func(t *testing.T, who, token string, o *isoOrg, wantRoles []string) {
		t.Helper()
		var org struct{ ID, Name string }
		w.expect(t, http.StatusOK, who, http.MethodGet, "/v1/org", token, nil).json(t, &org)
		if org.ID != o.id || org.Name != o.name {
			t.Errorf("%s sees org %q %q, want %q %q", who, org.ID, org.Name, o.id, o.name)
		}
		if wantRoles != nil {
			var m struct{ Roles []string }
			w.expect(t, http.StatusOK, who, http.MethodGet, "/v1/members/"+sam, token, nil).json(t, &m)
			if !slices.Equal(m.Roles, wantRoles) {
				t.Errorf("%s has roles %v in org %s, want %v", who, m.Roles, o.label, wantRoles)
			}
		}
		var bots struct{ Items []struct{ ID string } }
		w.expect(t, http.StatusOK, who, http.MethodGet, "/v1/bots?include_archived=true&limit=500", token, nil).json(t, &bots)
		for _, bot := range bots.Items {
			if !o.knows(bot.ID) {
				t.Errorf("%s lists bot %q, which is not org %s's", who, bot.ID, o.label)
			}
		}
	}

	t.Run("each token sees its own org with that org's roles", func(t *testing.T) {
		view(t, "alpha/sam", samA, a, []string{"builder"})
		view(t, "bravo/sam", samB, b, []string{"owner"})
		// Builder in alpha: no member management, no audit, no owners.
		w.expect(t, http.StatusForbidden, "alpha/sam", http.MethodPost, "/v1/members", samA, map[string]any{"sub": "alpha-eve", "roles": []string{"viewer"}})
		w.expect(t, http.StatusForbidden, "alpha/sam", http.MethodGet, "/v1/audit/events", samA, nil)
		w.expect(t, http.StatusForbidden, "alpha/sam", http.MethodDelete, "/v1/members/alpha-adam", samA, nil)
		w.expect(t, http.StatusForbidden, "alpha/sam", http.MethodPost, "/v1/service-accounts", samA, map[string]any{"name": "x", "permissions": []string{"bots:read"}})
		// Owner in bravo: everything there.
		w.expect(t, http.StatusOK, "bravo/sam", http.MethodGet, "/v1/audit/events", samB, nil)
		w.expect(t, http.StatusCreated, "bravo/sam", http.MethodPost, "/v1/members", samB, map[string]any{"sub": "bravo-eve", "roles": []string{"viewer"}})
		b.remember("bravo-eve")
	})

	t.Run("resources follow the token's org", func(t *testing.T) {
		aBot := w.createBot(t, "alpha/sam", samA, map[string]any{"name": "sam-in-alpha"})
		bBot := w.createBot(t, "bravo/sam", samB, map[string]any{"name": "sam-in-bravo"})
		a.remember(aBot)
		b.remember(bBot)
		unknownA := w.call(t, "alpha/sam", http.MethodGet, "/v1/bots/"+uuid.Must(uuid.NewV7()).String(), samA, nil)
		unknownB := w.call(t, "bravo/sam", http.MethodGet, "/v1/bots/"+uuid.Must(uuid.NewV7()).String(), samB, nil)
		isoSameAnswer(t, "alpha's token for sam reading bravo's bot", w.call(t, "alpha/sam", http.MethodGet, "/v1/bots/"+bBot, samA, nil), unknownA)
		isoSameAnswer(t, "bravo's token for sam reading alpha's bot", w.call(t, "bravo/sam", http.MethodGet, "/v1/bots/"+aBot, samB, nil), unknownB)
		if unknownA.status != http.StatusNotFound || unknownB.status != http.StatusNotFound {
			t.Errorf("unknown bots answer %d and %d, want 404", unknownA.status, unknownB.status)
		}
		view(t, "alpha/sam", samA, a, []string{"builder"})
		view(t, "bravo/sam", samB, b, []string{"owner"})
	})

	t.Run("an Idempotency-Key is per org", func(t *testing.T) {
		body := map[string]any{"name": "same-request"}
		first := w.expect(t, http.StatusCreated, "alpha/sam", http.MethodPost, "/v1/bots", samA, body, "Idempotency-Key", "iso-shared-key")
		other := w.expect(t, http.StatusCreated, "bravo/sam", http.MethodPost, "/v1/bots", samB, body, "Idempotency-Key", "iso-shared-key")
		var x, y struct{ ID string }
		first.json(t, &x)
		other.json(t, &y)
		a.remember(x.ID)
		b.remember(y.ID)
		if other.header.Get("Idempotent-Replayed") != "" || x.ID == y.ID || bytes.Contains(other.body, []byte(x.ID)) {
			t.Errorf("the same key and request in another org replayed the first org's answer: %s (replayed=%q)", other.body, other.header.Get("Idempotent-Replayed"))
		}
		// Control: within alpha the key does replay.
		again := w.expect(t, http.StatusCreated, "alpha/sam", http.MethodPost, "/v1/bots", samA, body, "Idempotency-Key", "iso-shared-key")
		if again.header.Get("Idempotent-Replayed") != "true" || !bytes.Contains(again.body, []byte(x.ID)) {
			t.Errorf("control: the key did not replay within alpha: %s", again.body)
		}
		view(t, "alpha/sam", samA, a, []string{"builder"})
		view(t, "bravo/sam", samB, b, []string{"owner"})
	})

	t.Run("changing one membership leaves the other alone", func(t *testing.T) {
		w.expect(t, http.StatusOK, "bravo/owner", http.MethodPut, "/v1/members/"+sam, bOwner, map[string]any{"roles": []string{"auditor"}})
		view(t, "alpha/sam", samA, a, []string{"builder"})
		var m struct{ Roles []string }
		w.expect(t, http.StatusOK, "bravo/sam", http.MethodGet, "/v1/members/"+sam, samB, nil).json(t, &m)
		if !slices.Equal(m.Roles, []string{"auditor"}) {
			t.Errorf("sam's roles in bravo = %v, want [auditor]", m.Roles)
		}
		a.remember(w.createBot(t, "alpha/sam", samA, map[string]any{"name": "still-a-builder"}))
		w.expect(t, http.StatusForbidden, "bravo/sam", http.MethodPost, "/v1/bots", samB, map[string]any{"name": "no-longer-allowed"})

		w.expect(t, http.StatusNoContent, "alpha/owner", http.MethodDelete, "/v1/members/"+sam, aOwner, nil)
		w.expect(t, http.StatusUnauthorized, "alpha/sam", http.MethodGet, "/v1/org", samA, nil)
		w.expect(t, http.StatusOK, "bravo/sam", http.MethodGet, "/v1/org", samB, nil)
	})

	t.Run("a subject of one org is nobody in another", func(t *testing.T) {
		for _, tc := range []struct {
			org  *isoOrg
			sub  string
			from string
		}{
			{a, b.principal(t, "builder").sub, "bravo's builder"},
			{a, b.principal(t, "owner").sub, "bravo's owner"},
			{a, b.principal(t, "viewer").sub, "bravo's viewer"},
			{a, "bravo-eve", "bravo's new member"},
			{b, a.principal(t, "owner").sub, "alpha's owner"},
			{b, a.principal(t, "admin").sub, "alpha's admin"},
			{b, a.goneSubs[0], "alpha's former member"},
		} {
			tok := isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: tc.org.id}, tc.sub)
			for _, p := range []string{"/v1/org", "/v1/bots", "/v1/members"} {
				w.expect(t, http.StatusUnauthorized, tc.org.label+"/foreign", http.MethodGet, p, tok, nil)
			}
		}
		// A service account token names its org: alpha's account, even with
		// its real token id, presented under bravo's org claim (as an
		// external issuer with a wrong org claim could) is nobody in bravo.
		if len(a.saTokenIDs) != 3 {
			t.Fatalf("alpha has %d service account token ids, want 3", len(a.saTokenIDs))
		}
		for id, jti := range a.saTokenIDs {
			tok, err := w.h.app.Issuer.MintServiceToken(b.id, id, jti, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatalf("mint: %v", err)
			}
			for _, p := range []string{"/v1/org", "/v1/bots", "/v1/members", "/v1/audit/events"} {
				w.expect(t, http.StatusUnauthorized, "bravo/foreign-sa", http.MethodGet, p, tok, nil)
			}
			// Control: the same account and token id under alpha's claim is
			// alpha's account (refused only once revoked).
			own, err := w.h.app.Issuer.MintServiceToken(a.id, id, jti, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatalf("mint: %v", err)
			}
			want := http.StatusOK
			if slices.Contains(a.revokedSAs, id) {
				want = http.StatusUnauthorized
			}
			w.expect(t, want, "alpha/own-sa", http.MethodGet, "/v1/bots", own, nil)
		}
	})

	t.Run("an org created for the same owner sub is a separate org", func(t *testing.T) {
		var org struct{ ID string }
		w.expect(t, http.StatusCreated, "platform/ops", http.MethodPost, "/v1/orgs", w.h.platform,
			map[string]string{"name": "Lookalike", "owner_sub": a.principal(t, "owner").sub}).json(t, &org)
		tok := isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: org.ID}, a.principal(t, "owner").sub)
		var bots struct{ Items []struct{ ID string } }
		w.expect(t, http.StatusOK, "lookalike/owner", http.MethodGet, "/v1/bots?include_archived=true", tok, nil).json(t, &bots)
		if len(bots.Items) != 0 {
			t.Errorf("a new org owned by alpha's owner's sub lists %d bots", len(bots.Items))
		}
		var members struct{ Items []struct{ Sub string } }
		w.expect(t, http.StatusOK, "lookalike/owner", http.MethodGet, "/v1/members", tok, nil).json(t, &members)
		if len(members.Items) != 1 {
			t.Errorf("a new org lists %d members, want its owner only", len(members.Items))
		}
		events, _ := w.audit(t, "lookalike/owner", tok, "")
		for _, e := range events {
			if e.OrgID != org.ID {
				t.Errorf("the new org's audit holds event %s of org %q", e.ID, e.OrgID)
			}
		}
		unknown := w.call(t, "lookalike/owner", http.MethodGet, "/v1/bots/"+uuid.Must(uuid.NewV7()).String(), tok, nil)
		got := w.call(t, "lookalike/owner", http.MethodGet, "/v1/bots/"+a.bots[0], tok, nil)
		isoSameAnswer(t, "the lookalike org's owner reading alpha's bot", got, unknown)
		// Alpha's own token for the same sub still sees alpha.
		view(t, "alpha/owner", aOwner, a, nil)
	})
}

// TestIsolationTokenForUnknownOrganization: a well-signed token whose org
// claim names no organization is refused (401) on every /v1 route, with the
// same answer as a garbage token, and changes nothing anywhere.
func TestIsolationTokenForUnknownOrganization(t *testing.T) {
	t.Parallel()
	w := isoNewWorld(t)
	a := w.addOrg(t, "alpha", "Alpha Secret Corp")
	before := w.snapshot(t, a)
	table := isoRoutes()
	missing := uuid.Must(uuid.NewV7()).String()
	tokens := map[string]string{
		"user of a missing org, with alpha's owner's sub": isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: missing}, a.principal(t, "owner").sub),
		"service of a missing org, with alpha's account":  isoMint(t, w.h, identity.Claims{Kind: identity.KindService, Org: missing}, a.sas[0]),
		"user of alpha's id in upper case":                isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: strings.ToUpper(a.id)}, a.principal(t, "owner").sub),
		"user of alpha's id with a suffix":                isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: a.id + ":x"}, a.principal(t, "owner").sub),
		"user of a prefix of alpha's id":                  isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: a.id[:8]}, a.principal(t, "owner").sub),
	}
	names := make([]string, 0, len(tokens))
	for n := range tokens {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, k := range isoWalk(t, w.h) {
		r, ok := isoKnown(t, table, k)
		if !ok || r.public {
			continue
		}
		path := k.path
		if r.pathVar != isoNoVar {
			path = isoFill(k.path, a.targets(r.pathVar, nil)[1]...)
		}
		bodies := []isoBody{{}}
		if r.bodies != nil {
			bodies = r.bodies(a, "unknown", []*isoOrg{a})
		}
		if r.bodyVar != isoNoVar {
			bodies = append(bodies, isoBody{v: r.bodyWith(a, "unknown", a.targets(r.bodyVar, nil)[0])})
		}
		for _, body := range bodies {
			garbage := w.call(t, "nobody/garbage", k.method, path, "not-a-token", body.v)
			if garbage.status != http.StatusUnauthorized {
				t.Fatalf("control: %s %s with a garbage token = %d", k.method, path, garbage.status)
			}
			for _, n := range names {
				got := w.call(t, "nobody/"+n, k.method, path, tokens[n], body.v)
				if got.status != http.StatusUnauthorized {
					t.Errorf("%s: %s %s = %d %s, want 401", n, k.method, path, got.status, got.body)
					continue
				}
				isoSameAnswer(t, fmt.Sprintf("%s: %s %s (compared with a garbage token)", n, k.method, path), got, garbage)
			}
		}
	}
	isoSameSnapshot(t, a, "tokens naming missing organizations", before, w.snapshot(t, a))
	got := w.rec.by("nobody/")
	isoReportLeaks(t, "tokens of missing organizations", isoFindLeaks(got, isoNeedles(t, w, a), isoEchoes(got)))
}

// addDataSources gives o two data sources with canary passwords (one
// changed through PATCH), one granted to the analyst role and tested, and
// a deleted one.
func (w *isoWorld) addDataSources(t *testing.T, o *isoOrg, setup, rnd string) {
	t.Helper()
	owner := o.principal(t, "owner").token
	create := func(name, password string) string {
		var v struct{ ID string }
		o.sourceNames = append(o.sourceNames, name)
		o.sourcePasswords = append(o.sourcePasswords, password)
		w.expect(t, http.StatusCreated, setup, http.MethodPost, "/v1/data-sources", owner, map[string]any{
			"name": name, "kind": "postgres", "allowed_tables": []string{"sales"},
			"connection": map[string]any{"host": "169.254.169.254", "database": "sales", "user": "reader", "password": password},
		}).json(t, &v)
		return v.ID
	}
	granted := create(o.label+"-sales-source", strings.ToUpper(o.label)+"-PW-ONE-"+rnd)
	hidden := create(o.label+"-payroll-source", strings.ToUpper(o.label)+"-PW-TWO-"+rnd)
	gone := create(o.label+"-gone-source", strings.ToUpper(o.label)+"-PW-GONE-"+rnd)
	patched := strings.ToUpper(o.label) + "-PW-PATCHED-" + rnd
	o.sourcePasswords = append(o.sourcePasswords, patched)
	w.expect(t, http.StatusOK, setup, http.MethodPatch, "/v1/data-sources/"+hidden, owner, map[string]any{
		"connection": map[string]any{"host": "169.254.169.254", "database": "payroll", "user": "reader", "password": patched}})
	w.expect(t, http.StatusOK, setup, http.MethodPut, "/v1/data-sources/"+granted+"/grants", owner, map[string]any{
		"grants": []map[string]any{{"subject": "role:analyst", "permissions": []string{"datasources:query"}}}})
	w.expect(t, http.StatusOK, setup, http.MethodPost, "/v1/data-sources/"+granted+"/test", owner, nil)
	w.expect(t, http.StatusNoContent, setup, http.MethodDelete, "/v1/data-sources/"+gone, owner, nil)
	o.sources = append(o.sources, granted, hidden)
	o.deletedSources = append(o.deletedSources, gone)
}

// addAnalytics gives o a SQLite data source whose rows hold a canary, and
// a job asked of it by its owner that succeeded.
func (w *isoWorld) addAnalytics(t *testing.T, o *isoOrg, setup string) {
	t.Helper()
	o.analyticsCanary = strings.ToUpper(o.label) + "-ROWS-" + isoRand(t)
	cfg := sqliteSales(t, w.h, 3)
	db, err := sql.Open("sqlite", filepath.Join(w.h.dataDir, "sqlite", cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE sales SET region = ?`, o.analyticsCanary); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	sa := o.principal(t, "service-account")
	owner := o.principal(t, "owner")
	id := createSource(t, w.h, owner.token, cfg, []string{"sales"},
		datasources.Grant{Subject: "role:analyst", Permissions: queryGrant},
		datasources.Grant{Subject: "service:" + sa.sub, Permissions: queryGrant})
	o.sources = append(o.sources, id)
	o.analyticsSource = id
	var accepted struct {
		ID string `json:"id"`
	}
	w.expect(t, http.StatusAccepted, setup, http.MethodPost, "/v1/analytics/jobs", owner.token,
		map[string]any{"data_source_id": id, "sql": "SELECT region, amount FROM sales"}).json(t, &accepted)
	if job := awaitJob(t, w.h, owner.token, accepted.ID); job.State != "succeeded" {
		t.Fatalf("org %s's analytics job = %+v", o.label, job)
	}
	o.analyticsJobs = append(o.analyticsJobs, accepted.ID)

	// The org's process jobs: its documents' ingestions and the query.
	var jobs struct {
		Items []struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
		} `json:"items"`
	}
	w.expect(t, http.StatusOK, setup, http.MethodGet, "/v1/jobs?limit=500", owner.token, nil).json(t, &jobs)
	kinds := map[string]bool{}
	for _, j := range jobs.Items {
		o.jobs = append(o.jobs, j.ID)
		kinds[j.Kind] = true
	}
	if !kinds["knowledge.ingestion"] || !kinds["analytics.query"] {
		t.Fatalf("org %s's jobs = %+v, want its ingestions and its analytics query", o.label, jobs.Items)
	}
}
