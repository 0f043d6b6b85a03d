package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
)

// TestAuditSequencesHideOtherOrganizations interleaves the writes of two
// organizations unevenly and reads each one's audit log page by page: its
// events come in log order numbered 1, 2, 3 … without gaps, and nothing in
// the answers is a global log position, whose gaps would show how much the
// other organization wrote.
func TestAuditSequencesHideOtherOrganizations(t *testing.T) {
	t.Parallel()
	h := openHarness(t, t.TempDir())
	orgB, ownerB := h.createOrg("Beta", "bob")
	builderB := h.addMember(orgB, ownerB, "bella", "builder")
	// Beta writes first, so that every position of Alpha's events is
	// larger than any number Alpha's sequences reach: a position shown to
	// Alpha could not pass for a sequence.
	for i := range 25 {
		h.createBot(builderB, fmt.Sprintf("b-%d", i))
	}
	orgA, ownerA := h.createOrg("Alpha", "alice")
	for i := range 6 {
		h.createBot(ownerA, fmt.Sprintf("a-%d", i))
		for j := range i%4 + 1 {
			h.createBot(builderB, fmt.Sprintf("b-%d-%d", i, j))
		}
	}
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/events", h.addMember(orgA, ownerA, "vic", "viewer"), nil)
	h.createBot(ownerA, "a-last")
	// Auditors read the record without content, so reading it appends
	// nothing (an owner's read of content would be recorded).
	auditorA := h.addMember(orgA, ownerA, "audrey", "auditor")
	auditorB := h.addMember(orgB, ownerB, "aude", "auditor")

	for _, o := range []struct{ name, org, auditor string }{{"Alpha", orgA, auditorA}, {"Beta", orgB, auditorB}} {
		t.Run(o.name, func(t *testing.T) {
			logged := orgLog(t, h, o.org)
			// Alpha's positions all lie past its last sequence, so none
			// may appear anywhere; Beta's first ones are its sequences too.
			positions := map[string]bool{}
			for _, env := range logged {
				if env.Position > uint64(len(logged)) {
					positions[strconv.FormatUint(env.Position, 10)] = true
				}
			}
			if o.org == orgA && len(positions) != len(logged) {
				t.Fatalf("control: %d of Alpha's %d positions lie past its sequences", len(positions), len(logged))
			}
			// Pages of four, following next_after.
			var got []auditSequenceItem
			after := ""
			for page := 0; ; page++ {
				if page > len(logged) {
					t.Fatal("audit pagination does not end")
				}
				path := "/v1/audit/events?limit=4"
				if after != "" {
					path += "&after=" + after
				}
				r := h.must(http.StatusOK, http.MethodGet, path, o.auditor, nil)
				if n := positionIn(t, r.body, positions); n != "" {
					t.Errorf("page %d carries %s, the log position of one of the organization's events: %.300s", page, n, r.body)
				}
				var body struct {
					Items     []auditSequenceItem `json:"items"`
					NextAfter string              `json:"next_after"`
				}
				r.json(t, &body)
				got = append(got, body.Items...)
				if body.NextAfter == "" {
					break
				}
				if want := strconv.FormatUint(body.Items[len(body.Items)-1].Sequence, 10); body.NextAfter != want {
					t.Fatalf("next_after %q, want the last event's sequence %s", body.NextAfter, want)
				}
				after = body.NextAfter
			}
			if len(got) != len(logged) {
				t.Fatalf("the audit log holds %d events, the log %d of the organization", len(got), len(logged))
			}
			for i, e := range got {
				if e.Sequence != uint64(i+1) || e.ID != logged[i].ID.String() || e.Position != nil {
					t.Errorf("event %d: sequence %d, id %s, position %v; want sequence %d, id %s (log position %d), no position",
						i, e.Sequence, e.ID, e.Position, i+1, logged[i].ID, logged[i].Position)
				}
			}
		})
	}
}

// auditSequenceItem is what the test reads of an audit event.
type auditSequenceItem struct {
	Sequence uint64  `json:"sequence"`
	ID       string  `json:"id"`
	Position *uint64 `json:"position"`
}

// orgLog reads an organization's events straight from the log, in order.
func orgLog(t *testing.T, h *harness, org string) []eventstore.Envelope {
	t.Helper()
	var out []eventstore.Envelope
	var after uint64
	for {
		envs, err := h.app.Store.ReadAll(context.Background(), after, eventstore.Filter{OrgID: org}, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		out = append(out, envs...)
		if len(envs) < 1000 {
			return out
		}
		after = envs[len(envs)-1].Position
	}
}

// positionIn returns the first number (or numeric string) in the JSON body
// that is one of positions, or "". Event payloads (data) are left out: they
// hold the events' own numbers (a redacted value's size, say).
func positionIn(t *testing.T, body []byte, positions map[string]bool) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	var find func(v any) string
	find = func(v any) string {
		switch v := v.(type) {
		case json.Number:
			if positions[v.String()] {
				return v.String()
			}
		case string:
			if positions[v] {
				return v
			}
		case map[string]any:
			for k, x := range v {
				if k == "data" {
					continue
				}
				if n := find(x); n != "" {
					return n
				}
			}
		case []any:
			for _, x := range v {
				if n := find(x); n != "" {
					return n
				}
			}
		}
		return ""
	}
	return find(v)
}
