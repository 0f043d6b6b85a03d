package sealed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/sealed"
	"github.com/palisadehq/palisade/eventstore/storetest"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

const canary = "CANARY-7f3a9c"

type bundle struct {
	ctx    context.Context
	dir    string
	path   string
	inner  *embedded.Store
	keys   *keyring.Keyring
	master sealing.MasterKey
	store  *sealed.Store
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	inner, err := embedded.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Open(filepath.Join(dir, keyring.Dir), master)
	if err != nil {
		t.Fatal(err)
	}
	store := sealed.New(inner, sealed.NewSealer(events.NewRegistry(), keys))
	t.Cleanup(func() { _ = store.Close() })
	return &bundle{ctx: ctx, dir: dir, path: path, inner: inner, keys: keys, master: master, store: store}
}

func newEvent(org, typ, data string) eventstore.NewEvent {
	return eventstore.NewEvent{
		Type:     typ,
		Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "user-1", Kind: "user"}, SchemaVersion: 1, CorrelationID: "corr-1"},
		Data:     json.RawMessage(data),
	}
}

// contentEvents are a document's text, a search query and a conversation
// message, each holding the canary in a content field.
func contentEvents(org string) map[string]eventstore.NewEvent {
	return map[string]eventstore.NewEvent{
		"doc":          newEvent(org, "DocumentAdded", `{"id":"d1","knowledge_base_id":"kb1","title":"Plan `+canary+`","content_type":"text/plain","content":"secret text `+canary+`","content_hash":"h","version":1}`),
		"search":       newEvent(org, "KnowledgeSearched", `{"query":"where is `+canary+`","knowledge_base_ids":["kb1"],"k":3,"hits":[{"chunk_id":"c1","document_id":"d1","knowledge_base_id":"kb1","score":0.5}]}`),
		"conversation": newEvent(org, "TurnStarted", `{"turn_id":"t1","message_id":"m1","content":"tell me about `+canary+`","content_sha256":"x","content_size":5}`),
	}
}

func (b *bundle) appendContent(t testing.TB, org string) map[string]eventstore.NewEvent {
	t.Helper()
	evs := contentEvents(org)
	for name, e := range evs {
		st := eventstore.MustStreamName(name, org, "e1")
		if _, err := b.store.Append(b.ctx, st, eventstore.NoStream(), []eventstore.NewEvent{e}); err != nil {
			t.Fatalf("append %s: %v", name, err)
		}
	}
	return evs
}

func (b *bundle) readAll(t testing.TB, store eventstore.Store) []eventstore.Envelope {
	t.Helper()
	envs, err := store.ReadAll(b.ctx, 0, eventstore.Filter{}, 1000)
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	return envs
}

// The contract suite of the port holds through the decorator: every
// payload of the suite (unknown types: all content) is sealed and opened
// back byte for byte.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) eventstore.Store { return setup(t).store })
}

func TestContentIsSealedInTheLogAndOpenedOnRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := b.appendContent(t, "org-a")
	// A type without content passes through unchanged.
	plain := newEvent("org-a", "MemberAdded", `{"issuer":"palisade","sub":"u2","roles":["viewer"]}`)
	if _, err := b.store.Append(b.ctx, eventstore.MustStreamName("org", "org-a", "org-a"), eventstore.Any(), []eventstore.NewEvent{plain}); err != nil {
		t.Fatal(err)
	}

	for _, env := range b.readAll(t, b.inner) {
		if bytes.Contains(env.Data, []byte(canary)) {
			t.Fatalf("inner store holds %s in clear: %s", env.Type, env.Data)
		}
		if env.Type == "MemberAdded" && string(env.Data) != string(plain.Data) {
			t.Fatalf("payload without content changed: %s", env.Data)
		}
		if env.Type == "KnowledgeSearched" && !strings.Contains(string(env.Data), `"knowledge_base_ids":["kb1"]`) {
			t.Fatalf("record fields not kept in clear: %s", env.Data)
		}
	}
	opened := b.readAll(t, b.store)
	if len(opened) != 4 {
		t.Fatalf("read %d events, want 4", len(opened))
	}
	digests, err := b.keys.DigestKey(b.ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	// Digests come back keyed; everything else as appended.
	keyed := strings.NewReplacer(`"content_hash":"h"`, `"content_hash":"`+digests.Digest("h")+`"`,
		`"content_sha256":"x"`, `"content_sha256":"`+digests.Digest("x")+`"`)
	for _, env := range opened {
		for _, e := range in {
			if want := keyed.Replace(string(e.Data)); e.Type == env.Type && string(env.Data) != want {
				t.Fatalf("%s opened as\n%s\nwant\n%s", env.Type, env.Data, want)
			}
		}
	}
	stream, err := b.store.ReadStream(b.ctx, eventstore.MustStreamName("search", "org-a", "e1"), 0, 10)
	if err != nil || len(stream) != 1 || !bytes.Contains(stream[0].Data, []byte(canary)) {
		t.Fatalf("ReadStream did not open: %v %v", stream, err)
	}

	// The file itself, WAL included, never holds the canary.
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	grepDir(t, b.dir, canary)
}

// grepDir fails if any file under dir holds needle.
func grepDir(t testing.TB, dir, needle string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("%s holds %q", path, needle)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDestroyedKeyOpensToShreddedMarker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.appendContent(t, "org-a")
	b.appendContent(t, "org-b")
	// Destroy org-a's key: the file, and the keyring's memory with it (a
	// fresh keyring over the same directory).
	if err := os.Remove(filepath.Join(b.dir, keyring.Dir, "org-a.json")); err != nil {
		t.Fatal(err)
	}
	store := reopenKeys(t, b)
	envs := b.readAll(t, store)
	if len(envs) != 6 {
		t.Fatalf("read %d events, want 6", len(envs))
	}
	for _, env := range envs {
		switch env.OrgID {
		case "org-a":
			if bytes.Contains(env.Data, []byte(canary)) || !bytes.Contains(env.Data, events.Shredded) {
				t.Fatalf("org-a %s not shredded: %s", env.Type, env.Data)
			}
			if env.CorrelationID != "corr-1" || env.Actor.Subject != "user-1" {
				t.Fatalf("metadata lost: %+v", env.Metadata)
			}
		case "org-b":
			if !bytes.Contains(env.Data, []byte(canary)) {
				t.Fatalf("org-b %s not opened: %s", env.Type, env.Data)
			}
		}
	}
	// Shredded payloads still decode into their events.
	reg := events.NewRegistry()
	for _, env := range envs {
		if env.OrgID == "org-a" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(env.Data, &obj); err != nil {
				t.Fatalf("%s: %v", env.Type, err)
			}
			if _, _, err := reg.RedactContent(env.Type, env.Data); err != nil {
				t.Fatalf("redact shredded %s: %v", env.Type, err)
			}
		}
	}
}

// reopenKeys returns b's log opened through a new keyring over the same
// key directory, as another process would: the keys are read from disk.
func reopenKeys(t testing.TB, b *bundle) eventstore.Store {
	t.Helper()
	keys, err := keyring.Open(filepath.Join(b.dir, keyring.Dir), b.master)
	if err != nil {
		t.Fatal(err)
	}
	return sealed.New(b.inner, sealed.NewSealer(events.NewRegistry(), keys))
}

func TestRotationKeepsOldContentReadable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := eventstore.MustStreamName("search", "org-a", "s")
	first := newEvent("org-a", "KnowledgeSearched", `{"query":"before `+canary+`","knowledge_base_ids":[],"k":1,"hits":null}`)
	if _, err := b.store.Append(b.ctx, st, eventstore.NoStream(), []eventstore.NewEvent{first}); err != nil {
		t.Fatal(err)
	}
	v2, err := b.keys.Rotate(b.ctx, "org-a")
	if err != nil || v2.Version() != 2 {
		t.Fatalf("rotate: %v %v", v2, err)
	}
	second := newEvent("org-a", "KnowledgeSearched", `{"query":"after `+canary+`","knowledge_base_ids":[],"k":1,"hits":null}`)
	if _, err := b.store.Append(b.ctx, st, eventstore.Exact(0), []eventstore.NewEvent{second}); err != nil {
		t.Fatal(err)
	}
	raw := b.readAll(t, b.inner)
	var keysUsed []string
	for _, env := range raw {
		var v struct{ Query sealed.Value }
		if err := json.Unmarshal(env.Data, &v); err != nil {
			t.Fatal(err)
		}
		keysUsed = append(keysUsed, v.Query.Key)
	}
	if !strings.HasPrefix(keysUsed[0], "1-") || !strings.HasPrefix(keysUsed[1], "2-") {
		t.Fatalf("sealed under %v, want versions 1 then 2", keysUsed)
	}
	// From disk, in a new process: both versions open.
	got := b.readAll(t, reopenKeys(t, b))
	if string(got[0].Data) != string(first.Data) || string(got[1].Data) != string(second.Data) {
		t.Fatalf("after rotation read\n%s\n%s", got[0].Data, got[1].Data)
	}
}

func TestForgettingOneSubjectLeavesTheRestReadable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sealer := b.store.Sealer()
	st := eventstore.MustStreamName("inbox", "org-a", "c1")
	var appended []eventstore.NewEvent
	for _, subject := range []string{"alice@example.com", "bob@example.com"} {
		e := newEvent("org-a", "InboxMessageReceived", `{}`)
		e.ID = eventstore.NewEventID()
		v, err := sealer.SealForSubject(b.ctx, "org-a", subject, e.ID, e.Type, "from", json.RawMessage(`"`+subject+`"`))
		if err != nil {
			t.Fatal(err)
		}
		// Written to the inner store as the inbox will: the subject's
		// field sealed under the subject's key, the rest under the org's.
		orgSealed, err := sealer.Seal(b.ctx, "org-a", e.ID, e.Type, json.RawMessage(`{"body":"hello `+canary+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		e.Data = json.RawMessage(`{"from":` + string(v) + `,` + string(orgSealed[1:]))
		appended = append(appended, e)
	}
	if _, err := b.inner.Append(b.ctx, st, eventstore.NoStream(), appended); err != nil {
		t.Fatal(err)
	}
	raw := b.readAll(t, b.inner)
	for _, env := range raw {
		if bytes.Contains(env.Data, []byte("@example.com")) {
			t.Fatalf("subject in clear in the log: %s", env.Data)
		}
	}
	if err := b.keys.Forget(b.ctx, "org-a", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	for name, store := range map[string]eventstore.Store{"same keyring": b.store, "reloaded": reopenKeys(t, b)} {
		got := b.readAll(t, store)
		var from [2]json.RawMessage
		for i, env := range got {
			var v struct {
				From json.RawMessage `json:"from"`
				Body string          `json:"body"`
			}
			if err := json.Unmarshal(env.Data, &v); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(v.Body, canary) {
				t.Fatalf("%s: org content of event %d not readable: %s", name, i, env.Data)
			}
			from[i] = v.From
		}
		if string(from[0]) != string(events.Shredded) || string(from[1]) != `"bob@example.com"` {
			t.Fatalf("%s: from = %s, %s; want shredded alice, readable bob", name, from[0], from[1])
		}
	}
}

func TestAlteredSealedValueIsAnErrorNotPlaintext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.appendContent(t, "org-a")
	env := b.readAll(t, b.inner)[0]
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(env.Data, &obj); err != nil {
		t.Fatal(err)
	}
	// Move a sealed value to another event: it is bound to its own.
	moved := env
	moved.ID = eventstore.NewEventID()
	if _, err := b.store.Sealer().Open(b.ctx, moved); err == nil {
		t.Fatal("a sealed value opened in another event")
	}
	// Another organization's envelope: its keys never open it (org-b has
	// none yet: shredded; once it has one: an error).
	other := env
	other.OrgID = "org-b"
	if got, err := b.store.Sealer().Open(b.ctx, other); err == nil && bytes.Contains(got.Data, []byte(canary)) {
		t.Fatal("a sealed value opened for another organization")
	}
	if _, err := b.keys.DataKey(b.ctx, "org-b"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.store.Sealer().Open(b.ctx, other); err == nil && bytes.Contains(got.Data, []byte(canary)) {
		t.Fatal("a sealed value opened under another organization's key")
	}
	// Flip one byte of the ciphertext: an error, never plaintext.
	var v sealed.Value
	for _, raw := range obj {
		if json.Unmarshal(raw, &v) == nil && v.Sealed != "" {
			break
		}
	}
	box := []byte(v.Sealed)
	if box[5] == 'A' {
		box[5] = 'B'
	} else {
		box[5] = 'A'
	}
	altered := env
	altered.Data = bytes.Replace(env.Data, []byte(v.Sealed), box, 1)
	if got, err := b.store.Sealer().Open(b.ctx, altered); err == nil {
		t.Fatalf("altered ciphertext opened: %s", got.Data)
	}
}

// TestDataThatIsNotJSONIsRefused: the sealed store leaves the JSON check
// of the clear payload to Seal's walk; whatever the shape of the bad
// bytes, nothing is sealed into a value that is JSON and appended.
func TestDataThatIsNotJSONIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, typ, data string }{
		{"not an object", "TurnStarted", `nope`},
		{"a broken object", "TurnStarted", `{"content":"x",}`},
		{"a broken nested value", "DocumentAdded", `{"id":"d1","content":[1,}`},
		{"a broken list item", "KnowledgeSearched", `{"query":"q","hits":[{"chunk_id":tru}]}`},
		{"an unknown type, not JSON", "NoSuchEvent", `{"a":'x'}`},
		{"empty", "TurnStarted", ``},
		{"only whitespace", "TurnStarted", " \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			stream := eventstore.MustStreamName("conversation", "org-a", "c1")
			_, err := b.store.Append(b.ctx, stream, eventstore.Any(), []eventstore.NewEvent{newEvent("org-a", tt.typ, tt.data)})
			if !errors.Is(err, eventstore.ErrInvalidEvent) {
				t.Fatalf("append of %q: %v, want ErrInvalidEvent", tt.data, err)
			}
			if envs := b.readAll(t, b.inner); len(envs) != 0 {
				t.Fatalf("the log holds %d events after a refused append", len(envs))
			}
		})
	}
}

// TestDigestsAreKeyedInTheLogAndStayAfterShredding: a hash of content
// (declared audit:"digest") is stored under the organization's digest key,
// never as it was appended, and reads the same keyed form opened; once the
// key is destroyed the content is shredded but the keyed digest stays, so
// the record still shows a hash, and it differs per organization.
func TestDigestsAreKeyedInTheLogAndStayAfterShredding(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const plain = "5ba93c9db0cff93f52b521d7420e43f6eda2784f0ba8e2d1b5e0b0b06b7c6e4a"
	data := `{"turn_id":"t1","message_id":"m1","content":"yes","content_sha256":"` + plain + `","content_size":3}`
	for _, org := range []string{"org-a", "org-b"} {
		st := eventstore.MustStreamName("conversation", org, "c1")
		if _, err := b.store.Append(b.ctx, st, eventstore.NoStream(), []eventstore.NewEvent{newEvent(org, "TurnStarted", data)}); err != nil {
			t.Fatal(err)
		}
	}
	stored := map[string]string{}
	for _, env := range b.readAll(t, b.inner) {
		var e struct {
			SHA string `json:"content_sha256"`
		}
		if err := json.Unmarshal(env.Data, &e); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(env.Data, []byte(plain)) || len(e.SHA) != 64 {
			t.Fatalf("%s's log holds %s", env.OrgID, env.Data)
		}
		stored[env.OrgID] = e.SHA
	}
	if stored["org-a"] == stored["org-b"] {
		t.Fatal("two organizations' digests of one content are equal")
	}
	for _, env := range b.readAll(t, b.store) {
		if !bytes.Contains(env.Data, []byte(`"content_sha256":"`+stored[env.OrgID]+`"`)) {
			t.Fatalf("opened %s: %s, want the stored digest", env.OrgID, env.Data)
		}
	}
	if err := b.keys.Destroy(b.ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	for _, env := range b.readAll(t, reopenKeys(t, b)) {
		if env.OrgID == "org-a" && (!bytes.Contains(env.Data, []byte(`"content":null`)) ||
			!bytes.Contains(env.Data, []byte(`"content_sha256":"`+stored["org-a"]+`"`))) {
			t.Fatalf("shredded: %s, want no content and the stored digest", env.Data)
		}
	}
}
