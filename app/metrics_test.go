package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/palisadehq/palisade/app"
)

// TestMetricsOnTheirOwnAddress: with MetricsElsewhere the API does not
// serve /metrics, the metrics listener does, the operator's series are
// there after a knowledge flow and a denial, and no label names an
// organization or carries its id.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	t.Parallel()
	accessLog := &lockedBuffer{}
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) {
		cfg.MetricsElsewhere = true
		cfg.AccessLog = slog.New(slog.NewJSONHandler(accessLog, nil))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.app.Serve(ctx, api, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil && err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	}()

	h.must(http.StatusNotFound, http.MethodGet, "/metrics", "", nil)
	org, owner := h.createOrg("Metrics Org", "olive")
	viewer := h.addMember(org, owner, "vic", "viewer")
	kb := h.createKB(owner, "Handbook")
	h.addDoc(owner, kb, "Leave", "text/plain", "Staff take leave by asking their manager in writing.")
	h.search(owner, map[string]any{"query": "leave"})
	h.must(http.StatusForbidden, http.MethodPost, "/v1/knowledge-bases", viewer, map[string]any{"name": "Nope"})

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics address: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	for _, name := range []string{
		"palisade_http_requests_total", "palisade_consumer_lag_events", "palisade_consumer_lag_seconds",
		"palisade_relay_lag_events", "palisade_relay_lag_seconds", "palisade_jobs_queued",
		"palisade_job_duration_seconds", "palisade_embedding_duration_seconds", "palisade_embedding_errors_total",
		"palisade_eventstore_append_duration_seconds", "palisade_authorization_denied_total",
	} {
		if _, ok := families[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if f, ok := families["palisade_job_duration_seconds"]; ok {
		found := false
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == "knowledge.ingestion" && m.GetHistogram().GetSampleCount() > 0 {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no ingestion job observed: %v", f)
		}
	}
	if f, ok := families["palisade_authorization_denied_total"]; ok {
		if !strings.Contains(f.String(), "missing_permission") {
			t.Errorf("denial not counted by reason: %v", f)
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(strings.ToLower(l.GetName()), "org") || strings.Contains(l.GetValue(), org) {
					t.Errorf("%s has label %s=%q: an organization in the metrics", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	// The access log has a line for the denied create, with who asked.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found bool
		for _, line := range strings.Split(strings.TrimSpace(accessLog.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("access log line %q: %v", line, err)
			}
			if rec["route"] == "/v1/knowledge-bases" && rec["method"] == "POST" && rec["status"] == float64(403) {
				found = rec["org_id"] == org && rec["principal"] == "user" && rec["correlation_id"] != ""
				if !found {
					t.Fatalf("denied create logged as %v", rec)
				}
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for the denied create:\n%s", accessLog)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
