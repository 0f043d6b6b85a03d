package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
)

type checkpointPage struct {
	Items     []chain.Checkpoint `json:"items"`
	NextAfter string             `json:"next_after"`
}

// TestAuditChainIsOrganizationScoped runs the chainer inside Palisade with
// two organizations and checks the audit chain's routes: each auditor sees
// only its own organization's checkpoints, signed with the key the JWKS
// publishes, and a verification of its own chain; nothing in either answer
// names or counts the other organization; audit:read is required.
func TestAuditChainIsOrganizationScoped(t *testing.T) {
	t.Parallel()
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.AuditCheckpointInterval = 50 * time.Millisecond })
	orgA, ownerA := h.createOrg("Alpha", "alice")
	orgB, ownerB := h.createOrg("Beta", "bob")
	for i := range 5 {
		h.createBot(ownerA, fmt.Sprintf("a-%d", i))
		h.createBot(ownerB, fmt.Sprintf("b-%d", i))
		h.createBot(ownerB, fmt.Sprintf("b2-%d", i))
	}
	auditorA := h.addMember(orgA, ownerA, "audrey", "auditor")
	auditorB := h.addMember(orgB, ownerB, "aude", "auditor")
	viewerA := h.addMember(orgA, ownerA, "vic", "viewer")

	jwks := h.must(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", nil).body
	keys, err := chain.KeysFromJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ name, org, other, auditor string }{
		{"Alpha", orgA, orgB, auditorA}, {"Beta", orgB, orgA, auditorB},
	} {
		t.Run(o.name, func(t *testing.T) {
			// The chainer is asynchronous: wait until it has chained and
			// checkpointed everything the organization wrote.
			var report chain.Report
			var page checkpointPage
			deadline := time.Now().Add(10 * time.Second)
			for {
				h.must(http.StatusOK, http.MethodGet, "/v1/audit/verify", o.auditor, nil).json(t, &report)
				h.must(http.StatusOK, http.MethodGet, "/v1/audit/checkpoints?limit=500", o.auditor, nil).json(t, &page)
				n := len(page.Items)
				if report.Pending == 0 && n > 0 && page.Items[n-1].Seq == report.VerifiedThroughSeq {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the chain did not catch up: report %+v, %d checkpoints", report, n)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if report.OrgID != o.org || !report.OK || len(report.Findings) != 0 || report.Events == 0 || report.Events != report.VerifiedThroughSeq {
				t.Errorf("verify: %+v", report)
			}
			for _, c := range page.Items {
				if c.OrgID != o.org {
					t.Errorf("checkpoint of %s shown to %s's auditor", c.OrgID, o.name)
				}
				if err := c.VerifySignature(keys); err != nil {
					t.Errorf("checkpoint %d does not verify with the published JWKS: %v", c.Seq, err)
				}
			}
			// Paging by seq.
			var first checkpointPage
			h.must(http.StatusOK, http.MethodGet, "/v1/audit/checkpoints?limit=1", o.auditor, nil).json(t, &first)
			if len(first.Items) != 1 || first.NextAfter != fmt.Sprint(first.Items[0].Seq) {
				t.Errorf("first page %+v", first)
			}
			var rest checkpointPage
			h.must(http.StatusOK, http.MethodGet, "/v1/audit/checkpoints?limit=500&after="+first.NextAfter, o.auditor, nil).json(t, &rest)
			if len(rest.Items) != len(page.Items)-1 {
				t.Errorf("after %s: %d checkpoints, want %d", first.NextAfter, len(rest.Items), len(page.Items)-1)
			}
			for _, path := range []string{"/v1/audit/verify", "/v1/audit/checkpoints"} {
				body := string(h.must(http.StatusOK, http.MethodGet, path, o.auditor, nil).body)
				if strings.Contains(body, o.other) {
					t.Errorf("%s names the other organization: %s", path, body)
				}
			}
		})
	}
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/verify", viewerA, nil)
	h.must(http.StatusForbidden, http.MethodGet, "/v1/audit/checkpoints", viewerA, nil)
	h.must(http.StatusUnauthorized, http.MethodGet, "/v1/audit/verify", "", nil)
	h.must(http.StatusBadRequest, http.MethodGet, "/v1/audit/checkpoints?after=x", auditorA, nil)
}
