package app_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/identity"
)

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
	cfg := sqliteSales(t, w.h, o.id, 3)
	db, err := sql.Open("sqlite", filepath.Join(w.h.dataDir, "sqlite", o.id, cfg.Path))
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
