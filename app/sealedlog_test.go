package app_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/sealing/keyring"
)

const canaryMessage = "CANARY-91c2-conversation-message"

// TestContentIsSealedInTheLogFile: a document's text, a search query and a
// conversation message are served by the API but never written to the
// log file in clear; with the organization's key removed, reading the log
// (as palisade audit replay does) yields shredded markers and no canary,
// while the other organization's content and every event's record stay.
func TestContentIsSealedInTheLogFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The log file is the embedded store's, whatever the suite's store.
	h := openHarness(t, dir, func(cfg *app.Config) { cfg.EventStoreURL = "" })
	f := newContentFixture(t, h)
	bot := h.createBotWith(f.owner, "Helper", "Answer briefly.", map[string]any{"tools": []string{"search"}})
	conv := h.startConversation(f.owner, bot)
	h.ask(f.owner, conv, "What about "+canaryMessage+"?")
	_, otherOwner := h.createOrg("Other", "oscar")
	otherKB := h.createKB(otherOwner, "Notes")
	h.addDoc(otherOwner, otherKB, "Other notes", "text/plain", "Other organization text CANARY-other-org.")

	// The API still answers with the content.
	r := h.must(http.StatusOK, http.MethodGet, "/v1/conversations/"+conv, f.owner, nil)
	if !bytes.Contains(r.body, []byte(canaryMessage)) {
		t.Fatalf("the API lost the conversation message: %s", r.body)
	}
	hits := h.must(http.StatusOK, http.MethodPost, "/v1/knowledge-bases/search", f.owner, map[string]any{"query": "announced"})
	if !bytes.Contains(hits.body, []byte(canaryBody)) {
		t.Fatalf("the API lost the document text: %s", hits.body)
	}
	h.close()

	canaries := []string{canaryTitle, canaryBody, canaryQuery, canaryBot, canaryMessage}
	logFiles, _ := filepath.Glob(filepath.Join(dir, "events.db*"))
	if len(logFiles) == 0 {
		t.Fatal("no log file")
	}
	for _, path := range logFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range canaries {
			if bytes.Contains(b, []byte(c)) {
				t.Errorf("%s holds %q in clear", filepath.Base(path), c)
			}
		}
	}

	// Through the keys, the log opens.
	ctx := context.Background()
	before := readOpenedLog(t, dir)
	for _, c := range []string{canaryBody, canaryQuery, canaryMessage} {
		if !bytes.Contains(before, []byte(c)) {
			t.Fatalf("opened log lacks %q", c)
		}
	}

	// Remove the organization's key: its content is shredded everywhere
	// the log is read, and nothing fails.
	if err := os.Remove(filepath.Join(dir, keyring.Dir, f.org+".json")); err != nil {
		t.Fatal(err)
	}
	after := readOpenedLog(t, dir)
	for _, c := range canaries {
		if bytes.Contains(after, []byte(c)) {
			t.Errorf("with the key removed, the log still yields %q", c)
		}
	}
	if !bytes.Contains(after, events.Shredded) {
		t.Error("no shredded marker in the log")
	}
	if !bytes.Contains(after, []byte("CANARY-other-org")) {
		t.Error("the other organization's content was lost")
	}
	store, err := app.OpenStore(ctx, app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	envs, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: f.org, Types: []string{"TurnStarted"}}, 10)
	if err != nil || len(envs) != 1 {
		t.Fatalf("turns: %v %v", envs, err)
	}
	if envs[0].Actor.Subject != "alice" || !strings.Contains(string(envs[0].Data), `"content":`+string(events.Shredded)) {
		t.Fatalf("turn after shredding: actor %q data %s", envs[0].Actor.Subject, envs[0].Data)
	}
}

// readOpenedLog returns every event of the log in dir, opened as palisade audit
// replay opens it, as one byte string.
func readOpenedLog(t *testing.T, dir string) []byte {
	t.Helper()
	ctx := context.Background()
	store, err := app.OpenStore(ctx, app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out []byte
	var after uint64
	for {
		envs, err := store.ReadAll(ctx, after, eventstore.Filter{}, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		for _, env := range envs {
			out = append(out, env.Data...)
			after = env.Position
		}
		if len(envs) < 1000 {
			return out
		}
	}
}
