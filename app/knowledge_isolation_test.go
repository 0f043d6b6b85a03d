package app_test

// Retrieval isolation (DESIGN.md invariants 2, 3 and 7), end to end.
//
// Two organizations ingest the same paragraph word for word, and
// paragraphs that differ from it by a few words; alpha also ingests a
// canary only it has. Whatever bravo's principals search for and whichever
// knowledge bases they name, nothing of alpha comes back; within bravo,
// grants decide who reads a restricted base; deleted documents, replaced
// versions and archived bases never come back. Every rule is checked live
// and again after a restart rebuilt the read models from the log.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/identity"
)

// kiShared is a paragraph both organizations ingest word for word.
const kiShared = "Quarterly travel reimbursements are approved by the finance desk within ten working days of submission. Receipts older than ninety days are rejected."

// kiNearAlpha and kiNearBravo differ from kiShared, and from each other, by
// a few words; kiAlphaOnly is the words only alpha's holds.
const (
	kiNearAlpha = "Quarterly travel reimbursements are approved by the finance desk within ten working days after the submission. Receipts older than ninety days are rejected."
	kiNearBravo = "Quarterly travel reimbursements are approved by the finance office within ten working days of submission. Receipts older than sixty days are rejected."
	kiAlphaOnly = "after the submission"
)

// kiFixture is what the retrieval tests built, and what must hold of it.
type kiFixture struct {
	a, b *isoOrg
	// The open bases holding the shared and near-identical paragraphs.
	aKB, bKB         string
	aShared, bShared isoDoc
	aWord            string // alpha's canary document holds it
	// desk is bravo's base restricted by grants, deskDoc its document,
	// deskWord a word only deskDoc holds, deskReaders the labels of the
	// bravo principals its grants let read it now.
	desk        string
	deskDoc     isoDoc
	deskWord    string
	deskReaders []string
	// What no search may ever return again, with why: chunks of deleted
	// documents and of replaced versions, deleted documents, archived
	// bases, and words only those held.
	neverChunks, neverDocs, neverKBs, neverWords map[string]string
	// live are documents that replaced or re-added content: their current
	// chunks must be found.
	live []kiLive
}

type kiLive struct {
	doc  isoDoc
	word string
}

func kiPermissions(t testing.TB, names ...string) access.PermissionSet {
	t.Helper()
	var perms []access.Permission
	for _, n := range names {
		p, ok := access.ParsePermission(n)
		if !ok {
			t.Fatalf("unknown permission %q", n)
		}
		perms = append(perms, p)
	}
	return access.NewPermissionSet(perms...)
}

// kiAddMember adds a member of role to o, as a principal labelled label.
func kiAddMember(t *testing.T, w *isoWorld, o *isoOrg, label, sub string, role access.Role) {
	t.Helper()
	w.expect(t, http.StatusCreated, o.label+"/setup", http.MethodPost, "/v1/members", o.principal(t, "owner").token,
		map[string]any{"sub": sub, "roles": []string{role.String()}})
	o.principals = append(o.principals, isoPrincipal{label: label, sub: sub, kind: identity.KindUser, perms: role.Permissions(),
		token: isoMint(t, w.h, identity.Claims{Kind: identity.KindUser, Org: o.id}, sub)})
	o.subs = append(o.subs, sub)
}

// kiChunks returns the chunk ids recorded for each version of a document,
// read from its stream in the audit trail by the org's owner, once the
// trail holds those of version (the audit read model may lag behind the
// document's state).
func kiChunks(t testing.TB, w *isoWorld, o *isoOrg, docID string, version int) map[int][]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var events []isoEvent
	for {
		events, _ = w.audit(t, o.label+"/setup", o.principal(t, "owner").token,
			"type=DocumentChunked&stream="+url.QueryEscape("doc-"+o.id+"_"+docID))
		if slices.ContainsFunc(events, func(e isoEvent) bool { return bytes.Contains(e.Data, []byte(fmt.Sprintf(`"version":%d,`, version))) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit trail holds no chunks of version %d of document %s", version, docID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := map[int][]string{}
	for _, e := range events {
		var chunked struct {
			Version int `json:"version"`
			Chunks  []struct {
				ID string `json:"id"`
			} `json:"chunks"`
		}
		if err := json.Unmarshal(e.Data, &chunked); err != nil {
			t.Fatalf("decode DocumentChunked %s: %v", e.ID, err)
		}
		for _, c := range chunked.Chunks {
			out[chunked.Version] = append(out[chunked.Version], c.ID)
			if !slices.Contains(o.chunkIDs, c.ID) {
				o.chunkIDs = append(o.chunkIDs, c.ID)
			}
		}
	}
	return out
}

// kiIngest adds a document to o's base kb as caller, waits until it is
// ready and records it: its id and chunks as o's, and, unless the other
// organization holds the same title and text (shared), its title and hash.
func kiIngest(t *testing.T, w *isoWorld, o *isoOrg, who isoPrincipal, kb, title, contentType, content string, shared ...bool) isoDoc {
	t.Helper()
	caller := o.label + "/setup"
	doc := w.addDoc(t, caller, who.token, kb, title, contentType, content)
	w.waitDoc(t, caller, who.token, kb, doc.ID)
	if len(shared) == 0 || !shared[0] {
		o.docTitles = append(o.docTitles, title)
		o.contentHashes = append(o.contentHashes, doc.ContentHash)
	}
	d := isoDoc{kb, doc.ID}
	o.docs = append(o.docs, d)
	kiChunks(t, w, o, doc.ID, 1)
	return d
}

func kiSearchBody(query string, kbIDs []string) map[string]any {
	body := map[string]any{"query": query, "k": 10}
	if kbIDs != nil {
		body["knowledge_base_ids"] = kbIDs
	}
	return body
}

// kiSetup gives alpha and bravo the bases and documents the retrieval
// tests need, on top of everything isoWorld.addOrg made.
func kiSetup(t *testing.T, w *isoWorld, a, b *isoOrg) *kiFixture {
	t.Helper()
	f := &kiFixture{a: a, b: b,
		neverChunks: map[string]string{}, neverDocs: map[string]string{}, neverKBs: map[string]string{}, neverWords: map[string]string{}}
	for _, o := range []*isoOrg{a, b} {
		for _, d := range o.deletedDocs {
			f.neverDocs[d.id] = o.label + "'s document deleted at setup"
		}
		for _, kb := range o.archivedKBs {
			f.neverKBs[kb] = o.label + "'s base archived at setup"
		}
	}
	// Bravo's principals of every role that reads, and a service account
	// holding kb:read only.
	kiAddMember(t, w, b, "analyst", "bravo-ana", access.RoleAnalyst)
	kiAddMember(t, w, b, "agent", "bravo-agnes", access.RoleAgent)
	id, tok := w.createServiceAccount(t, "bravo/setup", b.principal(t, "owner").token, "bravo-kb-reader", []string{"kb:read"})
	b.principals = append(b.principals, isoPrincipal{label: "kb-reader", sub: id, kind: identity.KindService, token: tok, perms: kiPermissions(t, "kb:read")})
	b.sas = append(b.sas, id)
	b.saTokens = append(b.saTokens, tok)

	// The same paragraph in both, paragraphs that differ by a few words,
	// and alpha's canary.
	f.aKB = w.createKB(t, "alpha/setup", a.principal(t, "builder").token, "Alpha Retrieval "+a.canary)
	f.bKB = w.createKB(t, "bravo/setup", b.principal(t, "builder").token, "Bravo Retrieval Desk")
	a.kbs, a.kbNames = append(a.kbs, f.aKB), append(a.kbNames, "Alpha Retrieval "+a.canary)
	b.kbs = append(b.kbs, f.bKB)
	f.aWord = "nightjar" + isoRand(t)[:10]
	a.texts = append(a.texts, f.aWord, kiAlphaOnly)
	aBuilder, bBuilder := a.principal(t, "builder"), b.principal(t, "builder")
	f.aShared = kiIngest(t, w, a, aBuilder, f.aKB, "Travel reimbursement policy", "text/plain", kiShared, true)
	kiIngest(t, w, a, aBuilder, f.aKB, "Travel reimbursement draft", "text/markdown", "# Travel\n\n"+kiNearAlpha, true)
	kiIngest(t, w, a, aBuilder, f.aKB, a.canary+" Launch plan", "text/markdown",
		"# Launch\n\nProject "+f.aWord+" launches next quarter; the access phrase is "+a.canary+".\n\n"+kiShared)
	f.bShared = kiIngest(t, w, b, bBuilder, f.bKB, "Travel reimbursement policy", "text/plain", kiShared, true)
	kiIngest(t, w, b, bBuilder, f.bKB, "Travel reimbursement draft", "text/markdown", "# Travel\n\n"+kiNearBravo, true)
	// The same content twice in one base is refused, in another org it is not.
	w.expect(t, http.StatusConflict, "bravo/setup", http.MethodPost, "/v1/knowledge-bases/"+f.bKB+"/documents", bBuilder.token,
		map[string]any{"title": "Again", "content_type": "text/plain", "content": kiShared})

	// Bravo's restricted desk: one user named, one role named, a service
	// account named as if it were a user, an auditor named (who lacks
	// kb:read in the org).
	f.desk = w.createKB(t, "bravo/setup", bBuilder.token, "Bravo Restricted Desk")
	b.kbs = append(b.kbs, f.desk)
	f.deskWord = "deskword" + isoRand(t)[:10]
	f.deskDoc = kiIngest(t, w, b, bBuilder, f.desk, "Desk notes", "text/plain", "Only the desk may read "+f.deskWord+". "+kiShared)
	f.setDesk(t, w, []map[string]any{
		{"subject": "user:bravo-mike", "permissions": []string{"kb:read"}},
		{"subject": "role:analyst", "permissions": []string{"kb:read"}},
		{"subject": "user:" + id, "permissions": []string{"kb:read", "kb:write"}},
		{"subject": "user:bravo-audrey", "permissions": []string{"kb:read"}},
	}, "member", "analyst")
	return f
}

func (f *kiFixture) setDesk(t testing.TB, w *isoWorld, grants []map[string]any, readers ...string) {
	t.Helper()
	w.expect(t, http.StatusOK, "bravo/setup", http.MethodPut, "/v1/knowledge-bases/"+f.desk+"/grants", f.b.principal(t, "owner").token,
		map[string]any{"grants": grants})
	f.deskReaders = readers
}

// ownHits fails unless every result of a 200 search is own's (and, when
// kbIDs is given, in one of them), never one of others', and nothing the
// fixture says must never come back; it returns the results.
func (f *kiFixture) ownHits(t testing.TB, where string, got response, kbIDs []string, own *isoOrg, others ...*isoOrg) []isoHit {
	t.Helper()
	if got.status != http.StatusOK {
		t.Errorf("%s = %d %s, want 200", where, got.status, got.body)
		return nil
	}
	var res isoSearchResult
	got.json(t, &res)
	if res.SearchID == "" {
		t.Errorf("%s has no search id", where)
	}
	for _, hit := range res.Results {
		for _, id := range []string{hit.ChunkID, hit.DocumentID, hit.KnowledgeBaseID} {
			if !own.knows(id) {
				t.Errorf("%s returns %q, which is not org %s's (chunk %s, document %s, base %s)", where, id, own.label, hit.ChunkID, hit.DocumentID, hit.KnowledgeBaseID)
			}
			for _, o := range others {
				if o.knows(id) {
					t.Errorf("LEAK: %s returns org %s's %q", where, o.label, id)
				}
			}
		}
		if kbIDs != nil && !slices.Contains(kbIDs, hit.KnowledgeBaseID) {
			t.Errorf("%s names bases %v but returns chunk %s of base %s", where, kbIDs, hit.ChunkID, hit.KnowledgeBaseID)
		}
		for id, why := range map[string]string{hit.ChunkID: f.neverChunks[hit.ChunkID], hit.DocumentID: f.neverDocs[hit.DocumentID], hit.KnowledgeBaseID: f.neverKBs[hit.KnowledgeBaseID]} {
			if why != "" {
				t.Errorf("%s returns %q, of %s", where, id, why)
			}
		}
	}
	for word, why := range f.neverWords {
		if bytes.Contains(got.body, []byte(word)) {
			t.Errorf("%s returns %q, a word of %s", where, word, why)
		}
	}
	return res.Results
}

// kiStandIn returns ids with every identifier that is not own's replaced
// by an unknown one.
func kiStandIn(own *isoOrg, ids []string) []string {
	out := slices.Clone(ids)
	for i, id := range out {
		if !own.knows(id) {
			out[i] = uuid.Must(uuid.NewV7()).String()
		}
	}
	return out
}

// notFound fails unless got is the 404 of the same call with every foreign
// or unreadable identifier replaced by an unknown one.
func kiNotFound(t testing.TB, what string, got, base response) {
	t.Helper()
	if got.status != http.StatusNotFound {
		t.Errorf("%s = %d %s, want 404", what, got.status, got.body)
	}
	isoSameAnswer(t, what, got, base)
}

// checkAcrossOrganizations: no search by any bravo principal returns
// anything of alpha, whatever it asks for and whichever bases it names.
func (f *kiFixture) checkAcrossOrganizations(t *testing.T, w *isoWorld) {
	a, b := f.a, f.b
	queries := []string{a.canary, f.aWord, kiAlphaOnly, kiShared, kiNearAlpha, kiNearBravo, "marmalade zeppelin " + isoRand(t),
		a.docs[0].id, f.aShared.id, f.aKB, a.chunkIDs[0], a.kbNames[1], a.docTitles[0], a.id}
	aKBs := append(slices.Clone(a.kbs), a.archivedKBs...)
	for _, p := range b.principals {
		caller := "bravo/" + p.label
		search := func(query string, kbIDs []string) response {
			return w.call(t, caller, http.MethodPost, "/v1/knowledge-bases/search", p.token, kiSearchBody(query, kbIDs))
		}
		if !p.holds(access.KBRead) {
			for _, q := range queries[:3] {
				if got := search(q, nil); got.status != http.StatusForbidden {
					t.Errorf("%s without kb:read searches: %d %s, want 403", caller, got.status, got.body)
				}
			}
			continue
		}
		// Its own bases, alone or together, and every base it may read.
		for _, q := range queries {
			for _, kbIDs := range [][]string{nil, {f.bKB}, {b.kbs[0], f.bKB}} {
				f.ownHits(t, fmt.Sprintf("%s searching %q in %v", caller, q, kbIDs), search(q, kbIDs), kbIDs, b, a)
			}
		}
		// Alpha's bases, alone or mixed with its own: not found, exactly
		// like unknown ones, never a partial result.
		choices := [][]string{aKBs, {f.bKB, f.aKB}, {f.aKB, f.bKB}, {f.bKB, a.kbs[1], b.kbs[0]}, {f.bKB, a.archivedKBs[0]},
			{f.aShared.id}, {a.chunkIDs[0]}, {a.id}}
		for _, kb := range aKBs {
			choices = append(choices, []string{kb})
		}
		for _, kbIDs := range choices {
			for _, q := range []string{kiShared, a.canary} {
				base := search(q, kiStandIn(b, kbIDs))
				kiNotFound(t, fmt.Sprintf("%s searching %q in %v", caller, q, kbIDs), search(q, kbIDs), base)
			}
		}
	}

	// Controls: the identical paragraph ranks high in each org, each
	// finding its own copy, so that bravo never finding alpha's means
	// something.
	for _, c := range []struct {
		o   *isoOrg
		doc isoDoc
	}{{a, f.aShared}, {b, f.bShared}} {
		hits := f.ownHits(t, c.o.label+"'s owner searching the shared paragraph",
			w.call(t, c.o.label+"/owner", http.MethodPost, "/v1/knowledge-bases/search", c.o.principal(t, "owner").token, kiSearchBody(kiShared, nil)), nil, c.o)
		found := false
		for _, h := range hits[:min(3, len(hits))] {
			found = found || h.DocumentID == c.doc.id
		}
		if !found {
			t.Errorf("control: org %s's own copy of the shared paragraph is not among its top results: %+v", c.o.label, hits)
		}
	}
	aHits := f.ownHits(t, "alpha's owner searching its canary",
		w.call(t, "alpha/owner", http.MethodPost, "/v1/knowledge-bases/search", a.principal(t, "owner").token, kiSearchBody(f.aWord, []string{f.aKB})), []string{f.aKB}, a)
	if len(aHits) == 0 || !strings.Contains(aHits[0].Snippet, f.aWord) {
		t.Errorf("control: alpha's owner does not find its canary first: %+v", aHits)
	}

	// The record: bravo's searches hold bravo's chunks only, and alpha's
	// trail holds nothing of bravo's principals.
	// Searches answer without waiting for the audit trail; its
	// consistency token is bravo's last search's.
	last := w.search(t, "bravo/owner", b.principal(t, "owner").token, kiSearchBody(a.canary, nil))
	events, _ := w.audit(t, "bravo/auditor", b.principal(t, "auditor").token, "type=KnowledgeSearched&consistency="+url.QueryEscape(last.Consistency))
	if len(events) == 0 {
		t.Error("bravo's audit trail holds no searches")
	}
	for _, e := range events {
		var searched struct {
			KnowledgeBaseIDs []string `json:"knowledge_base_ids"`
			Hits             []struct {
				ChunkID         string `json:"chunk_id"`
				DocumentID      string `json:"document_id"`
				KnowledgeBaseID string `json:"knowledge_base_id"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(e.Data, &searched); err != nil {
			t.Fatalf("decode KnowledgeSearched %s: %v", e.ID, err)
		}
		ids := slices.Clone(searched.KnowledgeBaseIDs)
		for _, h := range searched.Hits {
			ids = append(ids, h.ChunkID, h.DocumentID, h.KnowledgeBaseID)
		}
		for _, id := range ids {
			if a.knows(id) || !b.knows(id) {
				t.Errorf("bravo's search record %s names %q, which is not bravo's", e.ID, id)
			}
		}
	}
	alpha, _ := w.audit(t, "alpha/auditor", a.principal(t, "auditor").token, "")
	for _, e := range alpha {
		if b.knows(e.Actor.Subject) || e.OrgID != a.id {
			t.Errorf("alpha's audit trail holds event %s (%s) of %q in org %q", e.ID, e.Type, e.Actor.Subject, e.OrgID)
		}
	}
}

// checkDesk: within bravo, the restricted desk is read by the principals
// its grants name (by user or by role) and by nobody else, not even by
// naming it; owners and admins may see that it exists, to manage it.
func (f *kiFixture) checkDesk(t *testing.T, w *isoWorld) {
	b := f.b
	unknownKB := uuid.Must(uuid.NewV7()).String()
	for _, p := range b.principals {
		caller := "bravo/" + p.label
		reads := slices.Contains(f.deskReaders, p.label)
		manages := p.kind == identity.KindUser && (p.label == "owner" || p.label == "admin")
		where := func(s string) string { return fmt.Sprintf("%s (reads the desk: %v) %s", caller, reads, s) }
		search := func(query string, kbIDs []string) response {
			return w.call(t, caller, http.MethodPost, "/v1/knowledge-bases/search", p.token, kiSearchBody(query, kbIDs))
		}
		get := func(path string) response { return w.call(t, caller, http.MethodGet, path, p.token, nil) }
		if !p.holds(access.KBRead) {
			for _, kbIDs := range [][]string{nil, {f.desk}} {
				if got := search(f.deskWord, kbIDs); got.status != http.StatusForbidden {
					t.Errorf("%s = %d %s, want 403", where(fmt.Sprintf("searching %v", kbIDs)), got.status, got.body)
				}
			}
			continue
		}

		for _, q := range []string{f.deskWord, kiShared, "desk notes"} {
			hits := f.ownHits(t, where(fmt.Sprintf("searching %q", q)), search(q, nil), nil, b)
			found := false
			for _, h := range hits {
				found = found || h.DocumentID == f.deskDoc.id
				if !reads && (h.KnowledgeBaseID == f.desk || h.DocumentID == f.deskDoc.id) {
					t.Errorf("%s returns chunk %s of the restricted desk", where(fmt.Sprintf("searching %q", q)), h.ChunkID)
				}
			}
			if reads && q == f.deskWord && !found {
				t.Errorf("%s does not find the desk's document", where(fmt.Sprintf("searching %q", q)))
			}
		}
		if got := search(f.deskWord, nil); !reads && bytes.Contains(got.body, []byte(f.deskWord)) {
			t.Errorf("%s returns the desk's text", where("searching the desk's word"))
		}
		for _, kbIDs := range [][]string{{f.desk}, {f.bKB, f.desk}, {f.desk, f.bKB}} {
			got := search(f.deskWord, kbIDs)
			if reads {
				if hits := f.ownHits(t, where(fmt.Sprintf("naming %v", kbIDs)), got, kbIDs, b); len(hits) == 0 || hits[0].DocumentID != f.deskDoc.id {
					t.Errorf("%s does not find the desk's document first: %+v", where(fmt.Sprintf("naming %v", kbIDs)), hits)
				}
				continue
			}
			stand := slices.Clone(kbIDs)
			stand[slices.Index(stand, f.desk)] = unknownKB
			kiNotFound(t, where(fmt.Sprintf("naming %v", kbIDs)), got, search(f.deskWord, stand))
		}

		// Reading the base and its documents.
		paths := []string{"", "/documents", "/documents/" + f.deskDoc.id}
		for i, suffix := range paths {
			got := get("/v1/knowledge-bases/" + f.desk + suffix)
			want := http.StatusNotFound
			switch {
			case reads:
				want = http.StatusOK
			case manages && i == 0:
				want = http.StatusOK // it exists for those who manage it
			case manages:
				want = http.StatusForbidden
			}
			if got.status != want {
				t.Errorf("%s = %d %s, want %d", where("GET "+f.desk+suffix), got.status, got.body, want)
			}
			if want == http.StatusNotFound {
				isoSameAnswer(t, where("GET "+suffix+" of the desk"), got, get("/v1/knowledge-bases/"+unknownKB+suffix))
			}
			if want != http.StatusOK && bytes.Contains(got.body, []byte("Desk notes")) {
				t.Errorf("%s shows the desk's document", where("GET "+suffix))
			}
		}
		var list struct{ Items []struct{ ID string } }
		w.expect(t, http.StatusOK, caller, http.MethodGet, "/v1/knowledge-bases?limit=500", p.token, nil).json(t, &list)
		listed := slices.ContainsFunc(list.Items, func(kb struct{ ID string }) bool { return kb.ID == f.desk })
		if listed != (reads || manages) {
			t.Errorf("%s: the desk listed = %v, want %v", where("listing bases"), listed, reads || manages)
		}
	}
}

// checkNeverAgain: deleted documents, replaced versions and archived bases
// never come back to anybody in alpha, and the current versions do.
func (f *kiFixture) checkNeverAgain(t *testing.T, w *isoWorld) {
	a := f.a
	var words []string
	for word := range f.neverWords {
		words = append(words, word)
	}
	slices.Sort(words)
	words = append(words, a.canary, kiShared)
	for _, label := range []string{"owner", "member", "viewer", "service-account"} {
		p := a.principal(t, label)
		caller := "alpha/" + p.label
		for _, q := range words {
			for _, kbIDs := range [][]string{nil, {f.aKB}, {a.kbs[0], f.aKB}} {
				f.ownHits(t, fmt.Sprintf("%s searching %q in %v", caller, q, kbIDs),
					w.call(t, caller, http.MethodPost, "/v1/knowledge-bases/search", p.token, kiSearchBody(q, kbIDs)), kbIDs, a, f.b)
			}
		}
		for kb := range f.neverKBs {
			if !a.knows(kb) {
				continue
			}
			unknown := uuid.Must(uuid.NewV7()).String()
			for _, ids := range [][2][]string{{{kb}, {unknown}}, {{f.aKB, kb}, {f.aKB, unknown}}} {
				got := w.call(t, caller, http.MethodPost, "/v1/knowledge-bases/search", p.token, kiSearchBody(kiShared, ids[0]))
				kiNotFound(t, fmt.Sprintf("%s naming an archived base in %v", caller, ids[0]), got,
					w.call(t, caller, http.MethodPost, "/v1/knowledge-bases/search", p.token, kiSearchBody(kiShared, ids[1])))
			}
		}
		for _, l := range f.live {
			hits := f.ownHits(t, fmt.Sprintf("%s searching the current %q", caller, l.word),
				w.call(t, caller, http.MethodPost, "/v1/knowledge-bases/search", p.token, kiSearchBody(l.word, []string{l.doc.kb})), []string{l.doc.kb}, a)
			if len(hits) == 0 || hits[0].DocumentID != l.doc.id || !strings.Contains(hits[0].Snippet, l.word) {
				t.Errorf("control: %s does not find the current version of %s first: %+v", caller, l.doc.id, hits)
			}
		}
	}
	owner := a.principal(t, "owner").token
	for id := range f.neverDocs {
		for _, d := range a.deletedDocs {
			if d.id != id {
				continue
			}
			got := w.call(t, "alpha/owner", http.MethodGet, "/v1/knowledge-bases/"+d.kb+"/documents/"+d.id, owner, nil)
			kiNotFound(t, "alpha's owner reading a deleted document", got,
				w.call(t, "alpha/owner", http.MethodGet, "/v1/knowledge-bases/"+d.kb+"/documents/"+uuid.Must(uuid.NewV7()).String(), owner, nil))
		}
	}
}

// deleteAndReplace deletes, re-adds, replaces and archives in alpha, and
// checks at once (without waiting for anything) that what went is gone.
func (f *kiFixture) deleteAndReplace(t *testing.T, w *isoWorld) {
	a := f.a
	owner, builder := a.principal(t, "owner"), a.principal(t, "builder")
	never := func(t *testing.T, why string, chunks map[int][]string, versions ...int) {
		t.Helper()
		for _, v := range versions {
			if len(chunks[v]) == 0 {
				t.Fatalf("%s: version %d has no chunks on record", why, v)
			}
			for _, c := range chunks[v] {
				f.neverChunks[c] = why
			}
		}
	}
	word := func(t *testing.T, prefix string) string {
		v := prefix + isoRand(t)[:10]
		a.texts = append(a.texts, v)
		return v
	}
	// found reports whether a search by the owner for q right now returns
	// a chunk of doc.
	found := func(t *testing.T, q string, doc isoDoc, headers ...string) bool {
		t.Helper()
		res := w.search(t, "alpha/owner", owner.token, kiSearchBody(q, nil), headers...)
		for _, h := range res.Results {
			if h.DocumentID == doc.id {
				return true
			}
		}
		return false
	}
	del := func(t *testing.T, doc isoDoc, headers ...string) response {
		return w.expect(t, http.StatusNoContent, "alpha/owner", http.MethodDelete, "/v1/knowledge-bases/"+doc.kb+"/documents/"+doc.id, builder.token, nil, headers...)
	}

	t.Run("a deleted document's chunks leave retrieval before the delete answers", func(t *testing.T) {
		gone := word(t, "goneword")
		content := "Retired procedure " + gone + ": " + a.canary
		doc := kiIngest(t, w, a, builder, f.aKB, "Retired procedure", "text/plain", content)
		if !found(t, gone, doc) {
			t.Fatal("control: the document is not found before it is deleted")
		}
		first := kiChunks(t, w, a, doc.id, 1)
		del(t, doc)
		never(t, "a deleted document", first, 1)
		f.neverWords[gone] = "a deleted document"
		if found(t, gone, doc) {
			t.Error("the deleted document is found right after DELETE answered")
		}
		// The same content added again is a new version with new chunks;
		// the old ones stay gone.
		again := w.addDoc(t, "alpha/owner", builder.token, f.aKB, "Retired procedure", "text/plain", content)
		if again.ID != doc.id {
			t.Fatalf("the same content in the same base got a new id %s (was %s)", again.ID, doc.id)
		}
		if w.waitDoc(t, "alpha/owner", builder.token, f.aKB, doc.id).Version != 2 {
			t.Fatal("the re-added document is not at version 2")
		}
		readded := kiChunks(t, w, a, doc.id, 2)
		if slices.ContainsFunc(readded[2], func(c string) bool { return slices.Contains(first[1], c) }) {
			t.Fatalf("the re-added version reuses chunk ids of the deleted one: %v %v", first[1], readded[2])
		}
		delete(f.neverWords, gone)
		f.live = append(f.live, kiLive{doc, gone})

		// Deleting without waiting, then searching with the delete's token.
		async := word(t, "asyncword")
		doc2 := kiIngest(t, w, a, builder, f.aKB, "Async procedure", "text/plain", "Asynchronous "+async+" "+a.canary)
		chunks2 := kiChunks(t, w, a, doc2.id, 1)
		r := del(t, doc2, "Prefer", "respond-async")
		token := r.header.Get("Palisade-Consistency")
		if token == "" || r.header.Get("Palisade-Position") != "" {
			t.Fatalf("DELETE with respond-async gave no consistency token: %v", r.header)
		}
		if found(t, async, doc2, "Palisade-Consistency", token) {
			t.Error("the deleted document is found by a search with the delete's token")
		}
		never(t, "a deleted document", chunks2, 1)
		f.neverDocs[doc2.id] = "a deleted document"
		f.neverWords[async] = "a deleted document"
		a.deletedDocs = append(a.deletedDocs, doc2)
		a.docs = slices.DeleteFunc(a.docs, func(d isoDoc) bool { return d == doc2 })
		w.expect(t, http.StatusNotFound, "alpha/owner", http.MethodGet, "/v1/knowledge-bases/"+doc2.kb+"/documents/"+doc2.id, owner.token, nil)
	})

	t.Run("a replaced document's old version never comes back", func(t *testing.T) {
		old, current := word(t, "oldword"), word(t, "newword")
		doc := kiIngest(t, w, a, builder, f.aKB, "Expense rules", "text/plain", "Expense rules, first edition: "+old+" "+a.canary)
		if !found(t, old, doc) {
			t.Fatal("control: the first version is not found")
		}
		first := kiChunks(t, w, a, doc.id, 1)
		w.expect(t, http.StatusOK, "alpha/owner", http.MethodPut, "/v1/knowledge-bases/"+doc.kb+"/documents/"+doc.id, builder.token,
			map[string]any{"title": "Expense rules", "content_type": "text/markdown", "content": "# Expenses\n\nSecond edition: " + current + " " + a.canary})
		never(t, "a replaced version", first, 1)
		f.neverWords[old] = "a replaced version"
		right := w.call(t, "alpha/owner", http.MethodPost, "/v1/knowledge-bases/search", owner.token, kiSearchBody(old, nil))
		w.waitDoc(t, "alpha/owner", builder.token, doc.kb, doc.id)
		if second := kiChunks(t, w, a, doc.id, 2)[2]; len(second) == 0 || slices.ContainsFunc(second, func(c string) bool { return slices.Contains(first[1], c) }) {
			t.Fatalf("the second version's chunks %v are none or reuse the first's %v", second, first[1])
		}
		f.ownHits(t, "searching the old version right after PUT answered", right, nil, a)
		if !found(t, current, doc) {
			t.Error("the second version is not found once ingested")
		}
		f.live = append(f.live, kiLive{doc, current})

		// Replaced without waiting, then searched at the replacement's
		// position: the old chunks are gone, whether or not the new ones
		// are there yet.
		stale, fresh := word(t, "staleword"), word(t, "freshword")
		memo := kiIngest(t, w, a, builder, f.aKB, "Office memo", "text/plain", "Office memo, draft: "+stale+" "+a.canary)
		staleChunks := kiChunks(t, w, a, memo.id, 1)
		r := w.expect(t, http.StatusOK, "alpha/owner", http.MethodPut, "/v1/knowledge-bases/"+memo.kb+"/documents/"+memo.id, builder.token,
			map[string]any{"title": "Office memo", "content_type": "text/plain", "content": "Office memo, final: " + fresh + " " + a.canary},
			"Prefer", "respond-async")
		never(t, "a replaced version", staleChunks, 1)
		f.neverWords[stale] = "a replaced version"
		at := w.call(t, "alpha/owner", http.MethodPost, "/v1/knowledge-bases/search", owner.token, kiSearchBody(stale, nil),
			"Palisade-Consistency", r.header.Get("Palisade-Consistency"))
		w.waitDoc(t, "alpha/owner", builder.token, memo.kb, memo.id)
		kiChunks(t, w, a, memo.id, 2)
		f.ownHits(t, "searching the old version at the position of a PUT that did not wait", at, nil, a)
		f.live = append(f.live, kiLive{memo, fresh})

		// Replaced before its first version was even ingested.
		early, later := word(t, "earlyword"), word(t, "laterword")
		var added isoDocBody
		w.expect(t, http.StatusCreated, "alpha/owner", http.MethodPost, "/v1/knowledge-bases/"+f.aKB+"/documents", builder.token,
			map[string]any{"title": "Hasty note", "content_type": "text/plain", "content": "Hasty first note " + early + " " + a.canary},
			"Prefer", "respond-async").json(t, &added)
		w.expect(t, http.StatusOK, "alpha/owner", http.MethodPut, "/v1/knowledge-bases/"+f.aKB+"/documents/"+added.ID, builder.token,
			map[string]any{"title": "Hasty note", "content_type": "text/plain", "content": "Considered note " + later + " " + a.canary})
		f.neverWords[early] = "a version replaced before it was ingested"
		hasty := isoDoc{f.aKB, added.ID}
		a.docs = append(a.docs, hasty)
		if w.waitDoc(t, "alpha/owner", builder.token, f.aKB, added.ID).Version != 2 {
			t.Fatal("the hasty note is not at version 2")
		}
		chunks := kiChunks(t, w, a, added.ID, 2)
		for v, ids := range chunks {
			if v != 2 {
				for _, c := range ids {
					f.neverChunks[c] = "a version replaced before it was ingested"
				}
			}
		}
		f.live = append(f.live, kiLive{hasty, later})
	})

	t.Run("an archived base is not searched from the moment it is archived", func(t *testing.T) {
		shelved := word(t, "shelfword")
		kb := w.createKB(t, "alpha/owner", builder.token, "Alpha Shelf "+a.canary)
		a.kbNames = append(a.kbNames, "Alpha Shelf "+a.canary)
		doc := kiIngest(t, w, a, builder, kb, "Shelved guide", "text/plain", "Shelved guide "+shelved+" "+a.canary)
		if !found(t, shelved, doc) {
			t.Fatal("control: the shelved guide is not found before archiving")
		}
		w.expect(t, http.StatusNoContent, "alpha/owner", http.MethodDelete, "/v1/knowledge-bases/"+kb, builder.token, nil)
		a.archivedKBs = append(a.archivedKBs, kb)
		f.neverKBs[kb] = "an archived base"
		f.neverWords[shelved] = "an archived base"
		if found(t, shelved, doc) {
			t.Error("a document of a base archived a moment ago is found")
		}
		w.expect(t, http.StatusNotFound, "alpha/owner", http.MethodPost, "/v1/knowledge-bases/search", owner.token, kiSearchBody(shelved, []string{kb}))
		// Archived: it takes no documents either.
		if got := w.call(t, "alpha/owner", http.MethodPost, "/v1/knowledge-bases/"+kb+"/documents", builder.token,
			map[string]any{"title": "Late", "content_type": "text/plain", "content": "Too late " + shelved}); got.status < 400 {
			t.Errorf("an archived base accepted a document: %d %s", got.status, got.body)
		}
	})
}

// TestKnowledgeRetrievalIsolation runs every retrieval rule live and again
// after a restart on the same log.
func TestKnowledgeRetrievalIsolation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := &isoWorld{h: openHarness(t, dir), rec: &isoRecorder{}}
	a := w.addOrg(t, "alpha", "Alpha Secret Corp")
	b := w.addOrg(t, "bravo", "Bravo Rival Inc")
	f := kiSetup(t, w, a, b)

	t.Run("live", func(t *testing.T) {
		t.Run("across organizations", func(t *testing.T) { f.checkAcrossOrganizations(t, w) })
		t.Run("grants within an organization", func(t *testing.T) {
			f.checkDesk(t, w)
			// The user loses it at once; the role grant reaches every
			// holder of that role, and only them.
			f.setDesk(t, w, []map[string]any{
				{"subject": "role:analyst", "permissions": []string{"kb:read"}},
				{"subject": "role:viewer", "permissions": []string{"kb:read"}},
			}, "analyst", "viewer")
			f.checkDesk(t, w)
		})
		t.Run("deleted, replaced and archived", func(t *testing.T) {
			f.deleteAndReplace(t, w)
			f.checkNeverAgain(t, w)
		})
	})
	if t.Failed() {
		return
	}

	// Rebuilt from the log, the same rules hold.
	w.h.close()
	w = &isoWorld{h: openHarness(t, dir), rec: w.rec}
	t.Run("after a restart", func(t *testing.T) {
		t.Run("across organizations", func(t *testing.T) { f.checkAcrossOrganizations(t, w) })
		t.Run("grants within an organization", func(t *testing.T) { f.checkDesk(t, w) })
		t.Run("deleted, replaced and archived", func(t *testing.T) { f.checkNeverAgain(t, w) })
	})

	t.Run("no byte of alpha reaches bravo", func(t *testing.T) {
		got := w.rec.by("bravo/")
		isoReportLeaks(t, "org bravo", isoFindLeaks(got, isoNeedles(t, w, a), isoEchoes(got)))
		// Control: the scanner finds alpha's retrieval identifiers and
		// texts in alpha's own answers.
		leaks := isoFindLeaks(w.rec.by("alpha/"), isoNeedles(t, w, a), nil)
		for _, n := range []string{f.aKB, f.aShared.id, f.aWord, kiAlphaOnly, a.canary} {
			if !slices.ContainsFunc(leaks, func(l isoLeak) bool { return l.needle == n }) {
				t.Errorf("control: the scanner does not find %q in alpha's own answers", n)
			}
		}
	})
}
