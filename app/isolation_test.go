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
//
// This file holds the tests; isolation_routes_test.go what the suite knows
// of every route, isolation_world_test.go the clients and the
// organizations they build, isolation_leaks_test.go how answers are
// compared and scanned for the victims' bytes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
)

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
