package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
)

// TestEveryEventDeclaresContent fails when an event type has a text field
// (string, list, map, time, …) without an audit:"content" or
// audit:"record" declaration. Add the declaration to the new field: is it
// something a member wrote, uploaded or asked (content), or a fact of the
// record (ids, names of resources, subjects, roles, reasons)?
func TestEveryEventDeclaresContent(t *testing.T) {
	t.Parallel()
	if u := NewRegistry().Undeclared(); len(u) != 0 {
		t.Fatalf("event fields without an %s:\"content\" or %s:\"record\" declaration: %v", ContentTag, ContentTag, u)
	}
}

// TestUndeclaredFieldsAreFound: the check above is able to fail, and an
// undeclared text field is redacted.
func TestUndeclaredFieldsAreFound(t *testing.T) {
	t.Parallel()
	type inner struct {
		Note string `json:"note"`
		N    int    `json:"n"`
	}
	type undeclared struct {
		ID    string    `json:"id" audit:"record"`
		Text  string    `json:"text"`
		Tags  []string  `json:"tags"`
		Typo  string    `json:"typo" audit:"contnet"`
		When  time.Time `json:"when"`
		Count int       `json:"count"`
		Items []inner   `json:"items"`
	}
	p := planFor(reflect.TypeFor[undeclared]())
	got := p.undeclared("T")
	want := []string{"T.Items.Note", "T.Tags", "T.Text", "T.Typo", "T.When"}
	if !slices.Equal(got, want) {
		t.Fatalf("undeclared = %v, want %v", got, want)
	}
	var red Redaction
	out, err := p.redact([]byte(`{"id":"x","text":"CANARY1","tags":["CANARY2"],"typo":"CANARY3","count":3,"items":[{"note":"CANARY4","n":1}]}`), &red)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("CANARY")) || red.Fields != 4 {
		t.Fatalf("redacted %d fields: %s", red.Fields, out)
	}
}

// TestContentDeclarations pins the decisions for today's events: what a
// member wrote, uploaded or asked is content; ids, names of resources,
// subjects, roles and reasons are record.
func TestContentDeclarations(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	title, instr := "Title-CANARY", "Instructions-CANARY"
	cases := []struct {
		event   any
		type_   string
		content int
		keep    []string // record values that must stay
	}{
		{&knowledge.DocumentAdded{ID: "d1", KnowledgeBaseID: "kb1", Title: "Title-CANARY", ContentType: "text/plain", Content: "Body-CANARY", ContentHash: "h1", Version: 1},
			"DocumentAdded", 2, []string{"d1", "kb1", "text/plain", "h1"}},
		{&knowledge.DocumentReplaced{Title: "Title-CANARY", ContentType: "text/html", Content: "Body-CANARY", ContentHash: "h2", Version: 2},
			"DocumentReplaced", 2, []string{"text/html", "h2"}},
		{&knowledge.DocumentChunked{KnowledgeBaseID: "kb1", Version: 1, Chunks: []knowledge.Chunk{
			{ID: "c1", Heading: "Head-CANARY", Text: "Chunk-CANARY", Hash: "h3"}, {ID: "c2", Text: "Chunk2-CANARY", Hash: "h4"}}},
			"DocumentChunked", 3, []string{"kb1", "c1", "c2", "h3", "h4"}},
		{&knowledge.KnowledgeSearched{Query: "Query-CANARY", KnowledgeBaseIDs: []string{"kb1"}, K: 5,
			Hits: []knowledge.SearchHit{{ChunkID: "c1", DocumentID: "d1", KnowledgeBaseID: "kb1", Score: 0.5}}},
			"KnowledgeSearched", 1, []string{"kb1", "c1", "d1"}},
		{&knowledge.KnowledgeBaseCreated{ID: "kb1", Name: "Handbook", Description: "Desc-CANARY", EmbeddingModel: "hash", Dimensions: 384},
			"KnowledgeBaseCreated", 1, []string{"kb1", "Handbook", "hash"}},
		{&knowledge.KnowledgeBaseUpdated{Description: &instr}, "KnowledgeBaseUpdated", 1, nil},
		{&bots.BotCreated{ID: "b1", Name: "Helpdesk", Instructions: "Instructions-CANARY", Grants: bots.Grants{Tools: []string{"search"}}},
			"BotCreated", 1, []string{"b1", "Helpdesk", "search"}},
		{&bots.BotUpdated{Instructions: &title, Grants: &bots.Grants{KnowledgeBases: []string{"kb1"}}},
			"BotUpdated", 1, []string{"kb1"}},
		{&tenancy.MemberAdded{Sub: "audrey", Roles: []string{"auditor"}}, "MemberAdded", 0, []string{"audrey", "auditor"}},
		{&AccessDenied{Action: "kb:read", Reason: "no grant", Resource: "kb/1", Method: "GET", Path: "/v1/x"},
			"AccessDenied", 0, []string{"kb:read", "no grant", "kb/1", "/v1/x"}},
	}
	for _, c := range cases {
		t.Run(c.type_, func(t *testing.T) {
			data, err := json.Marshal(c.event)
			if err != nil {
				t.Fatal(err)
			}
			out, red, err := r.RedactContent(c.type_, data)
			if err != nil {
				t.Fatal(err)
			}
			if red.Fields != c.content {
				t.Errorf("redacted %d content fields, want %d: %s", red.Fields, c.content, out)
			}
			if bytes.Contains(out, []byte("CANARY")) {
				t.Errorf("content left in %s", out)
			}
			for _, k := range c.keep {
				if !bytes.Contains(out, []byte(`"`+k+`"`)) {
					t.Errorf("record value %q missing from %s", k, out)
				}
			}
			if !json.Valid(out) {
				t.Errorf("not JSON: %s", out)
			}
		})
	}
}

// TestRedactedValueIsHashAndSize: the replacement names the SHA-256 and
// byte size of the string itself, so that it matches a hash computed from
// the content (for example a document's content_hash).
func TestRedactedValueIsHashAndSize(t *testing.T) {
	t.Parallel()
	data, _ := json.Marshal(knowledge.KnowledgeSearched{Query: "héllo"})
	out, _, err := NewRegistry().RedactContent("KnowledgeSearched", data)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Query RedactedContent `json:"query"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("héllo"))
	want := RedactedContent{Redacted: true, SHA256: hex.EncodeToString(sum[:]), Size: len("héllo")}
	if got.Query != want {
		t.Fatalf("query = %+v, want %+v", got.Query, want)
	}
}

// TestUnknownTypesAndKeysAreContent: a payload the registry cannot place
// is redacted whole, key by key.
func TestUnknownTypesAndKeysAreContent(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	for _, c := range []struct{ typ, data string }{
		{"NoSuchEvent", `{"id":"CANARY"}`},
		{"MemberAdded", `{"sub":"a","Sub":"CANARY","extra":{"x":"CANARY"}}`},
		{"DocumentChunked", `{"chunks":"CANARY"}`},
		{"DocumentChunked", `{"chunks":[{"text":"CANARY"},"CANARY"]}`},
		{"KnowledgeSearched", `"CANARY"`},
		{"KnowledgeSearched", `CANARY`},
	} {
		out, _, err := r.RedactContent(c.typ, []byte(c.data))
		if err != nil {
			t.Fatalf("%s %s: %v", c.typ, c.data, err)
		}
		if bytes.Contains(out, []byte("CANARY")) || !json.Valid(out) {
			t.Errorf("%s %s → %s", c.typ, c.data, out)
		}
	}
}

// FuzzRedactContent: whatever the payload, every value at a content path
// (or at a path no type declares) leaves as a hash and size, every record
// value leaves unchanged, and the output is JSON. Canary strings placed in
// content fields never come out.
func FuzzRedactContent(f *testing.F) {
	r := NewRegistry()
	types := r.Types()
	slices.Sort(types)
	for i, typ := range types {
		e, _ := r.New(typ)
		data, _ := json.Marshal(e)
		f.Add(uint8(i), string(data), "CANARY")
	}
	f.Add(uint8(0), `{"content":"CANARY","title":{"a":"CANARY"}}`, "CANARY")
	f.Add(uint8(3), `{"chunks":[{"text":"x","id":"y"}]}`, "z")
	f.Fuzz(func(t *testing.T, pick uint8, data, canary string) {
		typ := types[int(pick)%len(types)]
		plan := r.plans[typ]
		// Put the canary into every content field of the payload, when it
		// is an object.
		var obj map[string]any
		if json.Unmarshal([]byte(data), &obj) == nil && len(canary) >= 4 && !strings.ContainsAny(canary, `"\`) {
			plantCanary(obj, plan, canary)
			data2, err := json.Marshal(obj)
			if err != nil {
				t.Skip()
			}
			data = string(data2)
			out, _, err := r.RedactContent(typ, []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatalf("not JSON: %s", out)
			}
			checkRedacted(t, plan, data, string(out), canary)
			return
		}
		out, _, err := r.RedactContent(typ, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("not JSON: %s", out)
		}
	})
}

// plantCanary sets every content key the plan names (and one unknown key)
// to canary, walking nested objects and lists.
func plantCanary(obj map[string]any, plan *contentPlan, canary string) {
	obj["unknown_key_"+canary] = canary
	for k, f := range plan.fields {
		switch f.kind {
		case fieldContent:
			obj[k] = canary
		case fieldObject:
			if m, ok := obj[k].(map[string]any); ok {
				plantCanary(m, f.nested, canary)
			}
		case fieldList:
			if l, ok := obj[k].([]any); ok {
				for _, it := range l {
					if m, ok := it.(map[string]any); ok {
						plantCanary(m, f.nested, canary)
					}
				}
			}
		}
	}
}

// checkRedacted walks input and output together.
func checkRedacted(t *testing.T, plan *contentPlan, in, out, canary string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	walkRedacted(t, plan, a, b, canary, "$")
}

func walkRedacted(t *testing.T, plan *contentPlan, in, out any, canary, path string) {
	t.Helper()
	im, ok := in.(map[string]any)
	if !ok {
		return
	}
	om, ok := out.(map[string]any)
	if !ok {
		t.Fatalf("%s: object became %v", path, out)
	}
	for k, iv := range im {
		ov := om[k]
		f, known := plan.fields[k]
		if !known {
			f.kind = fieldContent
		}
		switch f.kind {
		case fieldRecord:
			if !reflect.DeepEqual(iv, ov) {
				t.Fatalf("%s.%s: record %v became %v", path, k, iv, ov)
			}
		case fieldContent:
			if iv == nil {
				continue
			}
			m, ok := ov.(map[string]any)
			if !ok || m["redacted"] != true || len(m) != 3 {
				t.Fatalf("%s.%s: content %v left as %v", path, k, iv, ov)
			}
		case fieldObject:
			if _, isObj := iv.(map[string]any); isObj {
				walkRedacted(t, f.nested, iv, ov, canary, path+"."+k)
			}
		case fieldList:
			il, ok1 := iv.([]any)
			ol, ok2 := ov.([]any)
			if ok1 && ok2 && len(il) == len(ol) {
				for i := range il {
					walkRedacted(t, f.nested, il[i], ol[i], canary, path+"."+k)
				}
			}
		}
	}
	if len(om) != len(im) {
		t.Fatalf("%s: %d keys became %d", path, len(im), len(om))
	}
}

// TestContentHashesAreDeclaredDigests: every field of a registered event
// whose name says it holds a hash (sha256, hash) is declared
// audit:"digest", so that the log keeps it keyed, not as a plain hash that
// confirms a guess of the content. The one exception is keyed where it is
// computed.
func TestContentHashesAreDeclaredDigests(t *testing.T) {
	t.Parallel()
	keyedAtSource := map[string]bool{"DocumentChunked.chunks.hash": true}
	var walk func(prefix string, p *contentPlan)
	found := 0
	walk = func(prefix string, p *contentPlan) {
		for key, f := range p.fields {
			at := prefix + "." + key
			if f.nested != nil {
				walk(at, f.nested)
			}
			if !strings.Contains(key, "sha256") && !strings.HasSuffix(key, "hash") {
				continue
			}
			found++
			if f.kind != fieldDigest && !keyedAtSource[at] {
				t.Errorf("%s holds a hash but is not declared %s:%q", at, ContentTag, DeclareDigest)
			}
		}
	}
	for name, p := range NewRegistry().plans {
		walk(name, p)
	}
	if found < 9 {
		t.Fatalf("control: %d hash fields found, want at least 9", found)
	}
}

// TestDigestsAreMappedOnlyWhenAsked: MapContentAndDigests hands digest
// values (not null, not empty) to its digest function; MapContent and
// RedactContent keep them as records.
func TestDigestsAreMappedOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	data, err := json.Marshal(&knowledge.DocumentAdded{ID: "d1", KnowledgeBaseID: "kb1", Title: "T", Content: "Body", ContentHash: "abc", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	var digested []string
	out, err := r.MapContentAndDigests("DocumentAdded", data,
		func(_ string, v []byte) ([]byte, error) { return v, nil },
		func(path string, v []byte) ([]byte, error) {
			digested = append(digested, path+"="+string(v))
			return []byte(`"keyed"`), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(digested, []string{`content_hash="abc"`}) || !bytes.Contains(out, []byte(`"content_hash":"keyed"`)) {
		t.Fatalf("digested %q into %s", digested, out)
	}
	redacted, _, err := r.RedactContent("DocumentAdded", data)
	if err != nil || !bytes.Contains(redacted, []byte(`"content_hash":"abc"`)) {
		t.Fatalf("redacted: %s, %v", redacted, err)
	}
	for _, empty := range []string{`{"content_hash":""}`, `{"content_hash":null}`, `{}`} {
		digested = nil
		out, err := r.MapContentAndDigests("DocumentAdded", []byte(empty), nil,
			func(path string, v []byte) ([]byte, error) { digested = append(digested, path); return v, nil })
		if err != nil || len(digested) != 0 || string(out) != empty {
			t.Errorf("%s: digested %q, out %s, %v", empty, digested, out, err)
		}
	}
}
