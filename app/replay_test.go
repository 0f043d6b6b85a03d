package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// snapshot reads everything an organization's owner and auditor can see,
// as raw JSON, in a fixed order.
func snapshot(t *testing.T, h *harness, owner, auditor string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, path := range []string{
		"/v1/org",
		"/v1/members?limit=500",
		"/v1/service-accounts?limit=500",
		"/v1/bots?limit=500&include_archived=true",
	} {
		out[path] = h.must(http.StatusOK, http.MethodGet, path, owner, nil).body
	}
	var bots struct{ Items []struct{ ID string } }
	h.must(http.StatusOK, http.MethodGet, "/v1/bots?limit=500&include_archived=true", owner, nil).json(t, &bots)
	for _, b := range bots.Items {
		path := "/v1/bots/" + b.ID
		out[path] = h.must(http.StatusOK, http.MethodGet, path, owner, nil).body
	}
	var convs struct{ Items []struct{ ID string } }
	r := h.must(http.StatusOK, http.MethodGet, "/v1/conversations?limit=500", owner, nil)
	out["/v1/conversations"] = r.body
	r.json(t, &convs)
	for _, c := range convs.Items {
		path := "/v1/conversations/" + c.ID
		out[path] = h.must(http.StatusOK, http.MethodGet, path, owner, nil).body
	}
	// Data sources and analytics jobs with their results.
	for _, list := range []struct{ path, item string }{
		{"/v1/data-sources?limit=500", "/v1/data-sources/"},
		{"/v1/analytics/jobs?limit=500", "/v1/analytics/jobs/"},
	} {
		var items struct{ Items []struct{ ID, State string } }
		r := h.must(http.StatusOK, http.MethodGet, list.path, owner, nil)
		out[list.path] = r.body
		r.json(t, &items)
		for _, it := range items.Items {
			out[list.item+it.ID] = h.must(http.StatusOK, http.MethodGet, list.item+it.ID, owner, nil).body
			if it.State == "succeeded" {
				path := list.item + it.ID + "/result"
				out[path] = h.must(http.StatusOK, http.MethodGet, path, owner, nil).body
			}
		}
	}
	// The audit index, page by page.
	after := "0"
	for page := 0; ; page++ {
		var events struct {
			NextAfter string `json:"next_after"`
		}
		path := "/v1/audit/events?limit=50&after=" + after
		r := h.must(http.StatusOK, http.MethodGet, path, auditor, nil)
		out[fmt.Sprintf("audit page %d", page)] = r.body
		r.json(t, &events)
		if events.NextAfter == "" {
			break
		}
		after = events.NextAfter
	}
	return out
}

// TestReplayRebuildsIdenticalReadModels builds read models live (through
// the relay and the Watermill bus), restarts on the same log (rebuilding
// straight from the store) and compares everything a client can read.
func TestReplayRebuildsIdenticalReadModels(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir)

	type orgFixture struct{ owner, auditor string }
	var orgs []orgFixture
	for i := 0; i < 3; i++ {
		org, owner := h.createOrg(fmt.Sprintf("Org %d", i), "owner")
		auditor := h.addMember(org, owner, "auditor", "auditor")
		h.addMember(org, owner, "viewer", "viewer")
		builder := h.addMember(org, owner, "builder", "builder")
		h.must(http.StatusOK, http.MethodPut, "/v1/members/viewer", owner, map[string]any{"roles": []string{"member", "analyst"}})
		h.addMember(org, owner, "leaver", "member")
		h.must(http.StatusNoContent, http.MethodDelete, "/v1/members/leaver", owner, nil)
		for j := 0; j < 60; j++ {
			id := h.createBot(builder, fmt.Sprintf("bot %d-%d", i, j))
			if j%3 == 0 {
				h.must(http.StatusOK, http.MethodPatch, "/v1/bots/"+id, builder, map[string]any{
					"instructions": "changed", "grants": map[string]any{"permissions": []string{"kb:read"}},
				})
			}
			if j%7 == 0 {
				h.must(http.StatusNoContent, http.MethodDelete, "/v1/bots/"+id, builder, nil)
			}
		}
		var sa struct{ ID string }
		h.must(http.StatusCreated, http.MethodPost, "/v1/service-accounts", owner,
			map[string]any{"name": "ci", "permissions": []string{"bots:read"}}).json(t, &sa)
		h.must(http.StatusNoContent, http.MethodDelete, "/v1/service-accounts/"+sa.ID, owner, nil)
		h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/events", builder, nil) // a denial on record
		// Conversations with answered turns, allowed and denied tool calls.
		kb := h.createKB(owner, "Handbook")
		h.addDoc(owner, kb, "Leave", "text/plain", "Every employee gets 25 days of paid vacation per year.")
		bot := h.createBotWith(owner, "HR", "", map[string]any{
			"knowledge_bases": []string{kb}, "tools": []string{"search_knowledge", "read_document"}, "permissions": []string{"kb:read"},
		})
		for j := 0; j < 2; j++ {
			conv := h.startConversation(owner, bot)
			h.ask(owner, conv, "How many vacation days?")
			h.ask(owner, conv, "Anything else?\n@tool read_document {\"document_id\":\"missing\"}\n@tool fetch_url {}")
		}
		// A data source and analytics jobs: one answered, one refused by the guard.
		src := createSource(t, h, owner, sqliteSales(t, h, org, 20), []string{"sales"})
		for _, sql := range []string{"SELECT region, SUM(amount) AS total FROM sales GROUP BY region", "DELETE FROM sales"} {
			awaitJob(t, h, owner, submit(t, h, owner, map[string]string{"data_source_id": src, "sql": sql}))
		}
		orgs = append(orgs, orgFixture{owner, auditor})
	}

	// A repeated denial in a window is only counted, and its summary is
	// written when the window ends or at shutdown: write the summaries
	// now, so that the live read models hold what the restarted ones will,
	// and let one command per organization wait for them to be applied.
	if err := h.app.Pipeline.Close(); err != nil {
		t.Fatal(err)
	}
	for i, o := range orgs {
		h.createBot(o.owner, fmt.Sprintf("after the summaries %d", i))
	}
	live := make([]map[string][]byte, len(orgs))
	for i, o := range orgs {
		live[i] = snapshot(t, h, o.owner, o.auditor)
	}
	h.close()

	// Durable read models first resume from their checkpoints; then they
	// are dropped and rebuilt from the log. Memory read models first come
	// back from the snapshot the stop wrote; then it is removed and they
	// are rebuilt from the log.
	if snapshotsTaken() {
		restored := openHarness(t, dir)
		if restored.app.StartedFrom() == 0 {
			t.Fatal("memory read models were not restored from their snapshot")
		}
		for i, o := range orgs {
			compareSnapshots(t, fmt.Sprintf("org %d restored", i), live[i], snapshot(t, restored, o.owner, o.auditor))
		}
		restored.close()
		if err := os.Remove(filepath.Join(dir, snapshotFile)); err != nil {
			t.Fatal(err)
		}
	}
	if testReadModels() == "postgres" {
		resumed := openHarness(t, dir)
		for i, o := range orgs {
			compareSnapshots(t, fmt.Sprintf("org %d resumed", i), live[i], snapshot(t, resumed, o.owner, o.auditor))
		}
		resumed.close()
		owner, _, schema := postgresForTest(t, dir)
		dropSchema(t, owner, schema)
	}
	rebuilt := openHarness(t, dir)
	if snapshotsTaken() && rebuilt.app.StartedFrom() != 0 {
		t.Fatalf("rebuilt from %d, not from the start of the log", rebuilt.app.StartedFrom())
	}
	for i, o := range orgs {
		compareSnapshots(t, fmt.Sprintf("org %d rebuilt", i), live[i], snapshot(t, rebuilt, o.owner, o.auditor))
	}
}

func compareSnapshots(t *testing.T, label string, want, got map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d snapshot entries, %d live", label, len(got), len(want))
	}
	for key, w := range want {
		if !bytes.Equal(got[key], w) {
			t.Errorf("%s: %s differs:\nlive: %s\nnow:  %s", label, key, w, got[key])
		}
	}
}

// dropSchema drops a schema of read models, as the owner.
func dropSchema(t *testing.T, ownerURL, schema string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		t.Fatal(err)
	}
}
