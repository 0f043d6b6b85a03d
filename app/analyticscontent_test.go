package app_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestAnalyticsWordsAreContent: an analytics job's SQL and its failure's
// reason carry the asker's words (a translation's literals, a
// translator's complaint quoting the question, the asker's own SQL), so
// they are content: an auditor without audit:read-content reads none of
// them in the audit trail, and once the organization is closed no file
// of the data directory holds them in clear.
func TestAnalyticsWordsAreContent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir)
	org, owner := h.createOrg("Acme", "alice")
	auditor := h.addMember(org, owner, "audrey", "auditor")
	src := createSource(t, h, owner, sqliteSales(t, h, org, 5), []string{"sales"})
	canaries := []string{"qcanaryplanned77", "qcanaryreason88", "sqlcanary99"}
	for _, body := range []map[string]string{
		{"data_source_id": src, "question": "how many sales where region is '" + canaries[0] + "'"},
		{"data_source_id": src, "question": "how many sales " + canaries[1]},
		{"data_source_id": src, "sql": "SELECT count(*) AS n FROM sales WHERE region = '" + canaries[2] + "'"},
	} {
		awaitJob(t, h, owner, submit(t, h, owner, body))
	}

	audit := func(token string) string {
		return string(h.must(http.StatusOK, http.MethodGet, "/v1/audit/events?limit=500", token, nil).body)
	}
	asAuditor, asOwner := audit(auditor), audit(owner)
	for _, c := range canaries {
		if strings.Contains(asAuditor, c) {
			t.Errorf("an auditor without audit:read-content reads %q in the audit trail", c)
		}
		if !strings.Contains(asOwner, c) {
			t.Errorf("control: the owner, who may read content, does not read %q", c)
		}
	}

	h.must(http.StatusOK, http.MethodDelete, "/v1/orgs/"+org, h.platform, map[string]string{"confirm": "Acme"})
	h.close()
	eachFile(t, dir, func(path string, b []byte) {
		for _, c := range canaries {
			if bytes.Contains(b, []byte(c)) {
				t.Errorf("%s holds %q of the closed organization in clear", path, c)
			}
		}
	})
}
