package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/identity"
)

// Canaries placed in every kind of content the audit record holds.
const (
	canaryTitle = "CANARY-91c2-restricted-title"
	canaryBody  = "CANARY-91c2-restricted-body"
	canaryQuery = "CANARY-91c2-member-query"
	canaryBot   = "CANARY-91c2-bot-instructions"
)

type auditPage struct {
	Items []struct {
		Type  string `json:"type"`
		Actor struct {
			Subject string `json:"subject"`
		} `json:"actor"`
		Data json.RawMessage `json:"data"`
	} `json:"items"`
	NextAfter string `json:"next_after"`
}

// readAudit reads every page of the audit API with query q, and returns
// the raw bodies and the decoded pages.
func readAudit(h *harness, token, q string) ([]byte, []auditPage) {
	h.t.Helper()
	var raw []byte
	var pages []auditPage
	after := ""
	for {
		path := "/v1/audit/events?limit=2&" + q
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		r := h.must(http.StatusOK, http.MethodGet, path, token, nil)
		raw = append(raw, r.body...)
		raw = append(raw, r.header.Get("Palisade-Consistency")...)
		var p auditPage
		r.json(h.t, &p)
		pages = append(pages, p)
		if p.NextAfter == "" {
			return raw, pages
		}
		after = p.NextAfter
	}
}

// contentFixture is an organization with a knowledge base restricted to
// its owner, holding a document with canaries in its title and text, a
// search with a canary query, and a bot with canary instructions.
type contentFixture struct {
	org, owner string
	kb         string
}

func newContentFixture(t *testing.T, h *harness) contentFixture {
	org, owner := h.createOrg("Acme", "alice")
	kb := h.createKB(owner, "Board")
	h.must(http.StatusOK, http.MethodPut, "/v1/knowledge-bases/"+kb+"/grants", owner,
		map[string]any{"grants": []map[string]any{{"subject": "user:alice", "permissions": []string{"kb:read", "kb:write"}}}})
	doc := h.addDoc(owner, kb, canaryTitle, "text/plain", "Minutes.\n\n"+canaryBody+" is to be announced.")
	if doc.State != "ready" {
		t.Fatalf("document %+v not ingested", doc)
	}
	h.search(owner, map[string]any{"query": canaryQuery + " announced"})
	h.must(http.StatusCreated, http.MethodPost, "/v1/bots", owner, map[string]any{
		"name": "Helpdesk", "instructions": canaryBot, "grants": map[string]any{"tools": []string{"search"}}})
	return contentFixture{org: org, owner: owner, kb: kb}
}

// TestAuditAPIWithholdsContent: an auditor, an admin and a service account
// holding audit:read but not audit:read-content read the whole audit log
// and never receive a byte of the restricted base's content, a member's
// search query or a bot's instructions; they get each value's keyed
// digest and size. Their reads are not content reads and are not recorded as such.
func TestAuditAPIWithholdsContent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := newContentFixture(t, h)
	auditor := h.addMember(f.org, f.owner, "audrey", "auditor")
	admin := h.addMember(f.org, f.owner, "adam", "admin")
	var sa struct{ Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", f.owner,
		map[string]any{"name": "siem", "permissions": []string{"audit:read"}}).json(t, &sa)

	for name, token := range map[string]string{"auditor": auditor, "admin": admin, "service account": sa.Token} {
		for _, q := range []string{"", "type=DocumentAdded,DocumentChunked,KnowledgeSearched,BotCreated"} {
			raw, pages := readAudit(h, token, q)
			if i := bytes.Index(raw, []byte("CANARY")); i >= 0 {
				t.Fatalf("%s received content from the audit API (query %q): …%s…", name, q, raw[max(0, i-80):min(len(raw), i+80)])
			}
			// The record is still there: the document's content as its
			// hash and size, matching the hash of what was uploaded.
			found := false
			for _, p := range pages {
				for _, it := range p.Items {
					if it.Type != "DocumentAdded" {
						continue
					}
					var d struct {
						ID          string `json:"id"`
						ContentHash string `json:"content_hash"`
						Title       struct {
							Redacted bool
							SHA256   string
							Size     int
						}
						Content struct {
							Redacted bool
							SHA256   string
							Size     int
						}
					}
					if err := json.Unmarshal(it.Data, &d); err != nil {
						t.Fatalf("%s: DocumentAdded data %s: %v", name, it.Data, err)
					}
					// Hashes are keyed under the organization's digest
					// key: never the plain SHA-256, and the content's
					// equals the content_hash the log records for it.
					sum := sha256.Sum256([]byte(canaryTitle))
					if d.ID == "" || !d.Title.Redacted || len(d.Title.SHA256) != 64 || d.Title.SHA256 == hex.EncodeToString(sum[:]) ||
						d.Title.Size != len(canaryTitle) || !d.Content.Redacted || d.Content.SHA256 != d.ContentHash {
						t.Errorf("%s: DocumentAdded record %s", name, it.Data)
					}
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no DocumentAdded in the audit record", name)
			}
		}
	}
	// None of those reads showed content, so none is recorded as a content read.
	raw, _ := readAudit(h, f.owner, "type=AuditContentRead")
	if bytes.Contains(raw, []byte("audrey")) || bytes.Contains(raw, []byte("adam")) {
		t.Errorf("reads without content were recorded as content reads: %s", raw)
	}
}

// TestAuditContentReadIsShownAndRecorded: the owner, and a service account
// the owner gave audit:read-content, see the content, and each such read
// is first recorded in the security stream as AuditContentRead naming the
// reader and the query.
func TestAuditContentReadIsShownAndRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := newContentFixture(t, h)
	var sa struct{ ID, Token string }
	h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", f.owner,
		map[string]any{"name": "investigator", "permissions": []string{"audit:read", "audit:read-content"}}).json(t, &sa)

	for name, who := range map[string]struct{ token, subject string }{"owner": {f.owner, "alice"}, "service account": {sa.Token, sa.ID}} {
		raw, _ := readAudit(h, who.token, "type=DocumentAdded,KnowledgeSearched,BotCreated")
		for _, c := range []string{canaryTitle, canaryBody, canaryQuery, canaryBot} {
			if !bytes.Contains(raw, []byte(c)) {
				t.Errorf("%s holding audit:read-content did not see %q", name, c)
			}
		}
		// The read is recorded, with the reader as actor and the query.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, pages := readAudit(h, f.owner, "type=AuditContentRead&actor="+url.QueryEscape(who.subject))
			var reads []json.RawMessage
			for _, p := range pages {
				for _, it := range p.Items {
					if it.Actor.Subject == who.subject {
						reads = append(reads, it.Data)
					}
				}
			}
			if len(reads) > 0 {
				var r struct {
					Types         []string `json:"types"`
					Events        int      `json:"events"`
					ContentFields int      `json:"content_fields"`
				}
				if err := json.Unmarshal(reads[0], &r); err != nil {
					t.Fatal(err)
				}
				if strings.Join(r.Types, ",") != "DocumentAdded,KnowledgeSearched,BotCreated" || r.Events == 0 || r.ContentFields == 0 {
					t.Errorf("%s: content read recorded as %s", name, reads[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no AuditContentRead recorded", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestKafkaDownstreamWithoutContent: over the Kafka bus, with the default
// configuration, the per-category topics that downstream systems consume
// carry no byte of the restricted base's content, the member's query or
// the bot's instructions (value, key or headers), while the log topic the
// projections consume keeps it (search works). With KafkaContent set the
// category topics carry it.
func TestKafkaDownstreamWithoutContent(t *testing.T) {
	t.Parallel()
	for _, content := range []bool{false, true} {
		brokers := kafkaForTest(t)
		a, err := app.Open(context.Background(), app.Config{
			DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			KafkaBrokers: brokers, KafkaContent: content,
		})
		if err != nil {
			t.Fatalf("open app: %v", err)
		}
		h := &harness{t: t, app: a, srv: httptest.NewServer(a.Handler())}
		t.Cleanup(h.close)
		h.platform = h.mint(identity.Claims{Kind: identity.KindPlatform}, "platform-ops")
		newContentFixture(t, h)

		client, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
			kgo.ConsumeTopics("palisade.doc", "palisade.search", "palisade.bot", "palisade.kb", "palisade.org", "palisade.security", "palisade-log"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var downstream, logged []byte
		seen := map[string]bool{}
		for !(seen["DocumentChunked"] && seen["KnowledgeSearched"] && seen["BotCreated"] && seen["log:BotCreated"]) {
			fetches := client.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("content=%v: saw only %v", content, seen)
			}
			fetches.EachRecord(func(r *kgo.Record) {
				var typ string
				all := append(append([]byte(r.Topic), r.Key...), r.Value...)
				for _, hd := range r.Headers {
					all = append(append(all, hd.Key...), hd.Value...)
					if hd.Key == eventstore.MetaType {
						typ = string(hd.Value)
					}
				}
				if r.Topic == "palisade-log" {
					logged = append(logged, all...)
					seen["log:"+typ] = true
					return
				}
				downstream = append(downstream, all...)
				seen[typ] = true
			})
		}
		cancel()
		client.Close()
		// Content is sealed in the log, so neither the log topic nor the
		// category topics hold it in clear; with KafkaContent on, the
		// category topics carry the sealed form (see bus/kafka/README.md).
		for _, c := range []string{canaryTitle, canaryBody, canaryQuery, canaryBot} {
			if bytes.Contains(logged, []byte(c)) {
				t.Errorf("content=%v: the log topic holds %q in clear", content, c)
			}
		}
		if !bytes.Contains(logged, []byte(`"sealed":`)) {
			t.Errorf("content=%v: the log topic carries no sealed value", content)
		}
		if got := bytes.Contains(downstream, []byte(`"sealed":`)); got != content {
			t.Errorf("content=%v: sealed values on the category topics = %v", content, got)
		}
		if bytes.Contains(downstream, []byte("CANARY")) {
			i := bytes.Index(downstream, []byte("CANARY"))
			t.Errorf("content on a category topic: …%s…", downstream[max(0, i-80):min(len(downstream), i+80)])
		}
	}
}
