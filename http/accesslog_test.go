package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// syncBuffer is a buffer the server's goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogServer(t *testing.T, handler func(io.Writer) slog.Handler, elsewhere bool) (*httptest.Server, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	s := NewServer(Deps{
		Routes:   AllRoutes(),
		Registry: reg, MetricsElsewhere: elsewhere,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog: slog.New(handler(logs)),
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, logs, reg
}

// TestUnmatchedRequestsGoThroughTheMiddleware: a 404 and a 405 carry a
// correlation id, a 405 says which methods the path takes, HEAD works
// where GET does, and each is counted and logged.
func TestUnmatchedRequestsGoThroughTheMiddleware(t *testing.T) {
	t.Parallel()
	srv, logs, reg := newLogServer(t, func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }, false)
	tests := []struct {
		method, path string
		status       int
		allow        string
		route        string
		body         bool
	}{
		{http.MethodGet, "/healthz", http.StatusOK, "", "/healthz", true},
		{http.MethodHead, "/healthz", http.StatusOK, "", "/healthz", false},
		{http.MethodGet, "/no/such/route", http.StatusNotFound, "", routeUnmatched, true},
		{http.MethodGet, "/v1/no/such/route", http.StatusNotFound, "", routeUnmatched, true},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD", routeUnmatched, true},
		{http.MethodDelete, "/v1/bots", http.StatusMethodNotAllowed, "GET, HEAD, POST", routeUnmatched, true},
		{http.MethodHead, "/v1/orgs", http.StatusMethodNotAllowed, "POST", routeUnmatched, false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		req.Header.Set(headerCorrelationID, "corr-"+strings.ToLower(tt.method))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if got := resp.Header.Get(headerCorrelationID); got != "corr-"+strings.ToLower(tt.method) {
			t.Errorf("%s %s: correlation id %q", tt.method, tt.path, got)
		}
		if got := resp.Header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
		if (len(body) > 0) != tt.body {
			t.Errorf("%s %s: body %q", tt.method, tt.path, body)
		}
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("%d access-log lines for %d requests:\n%s", len(lines), len(tests), logs)
	}
	for i, line := range lines {
		var rec struct {
			Time          string  `json:"time"`
			Msg           string  `json:"msg"`
			Method        string  `json:"method"`
			Route         string  `json:"route"`
			Status        int     `json:"status"`
			DurationMS    float64 `json:"duration_ms"`
			CorrelationID string  `json:"correlation_id"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		tt := tests[i]
		if rec.Time == "" || rec.Msg != "request" || rec.Method != tt.method || rec.Route != tt.route ||
			rec.Status != tt.status || rec.DurationMS < 0 || rec.CorrelationID != "corr-"+strings.ToLower(tt.method) {
			t.Errorf("line %d = %+v, want %s %s %d", i, rec, tt.method, tt.route, tt.status)
		}
	}

	count := func(route, method, status string) float64 {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "palisade_http_requests_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["route"] == route && labels["method"] == method && labels["status"] == status {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	if got := count(routeUnmatched, "GET", "404"); got != 2 {
		t.Errorf("unmatched GET 404 counted %v times, want 2", got)
	}
	if got := count(routeUnmatched, "POST", "405"); got != 1 {
		t.Errorf("unmatched POST 405 counted %v times, want 1", got)
	}
	if got := count("/healthz", "HEAD", "200"); got != 1 {
		t.Errorf("HEAD /healthz counted %v times, want 1", got)
	}
}

// TestInventedMethodsShareOneLabel: a method is any token a client sends,
// before it authenticates; each invented one would otherwise be a new
// metric series and a long access-log field. Metrics and the log name
// them all OTHER.
func TestInventedMethodsShareOneLabel(t *testing.T) {
	t.Parallel()
	srv, logs, reg := newLogServer(t, func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }, false)
	const invented = 40
	for i := range invented {
		method := fmt.Sprintf("XMETHOD%05d%s", i, strings.Repeat("A", 2000))
		req, _ := http.NewRequest(method, srv.URL+"/healthz", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("%.14s… /healthz = %d, want 405", method, resp.StatusCode)
		}
	}
	if strings.Contains(logs.String(), "XMETHOD") {
		t.Errorf("the access log holds the invented methods")
	}
	if got := strings.Count(logs.String(), `"method":"OTHER"`); got != invented {
		t.Errorf("%d access-log lines name the method OTHER, want %d", got, invented)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					methods[l.GetValue()] = true
				}
			}
		}
	}
	if len(methods) != 1 || !methods["OTHER"] {
		t.Errorf("method label values %d (OTHER: %v), want OTHER alone", len(methods), methods["OTHER"])
	}
}

// TestAccessLogText: the terminal format carries the same fields.
func TestAccessLogText(t *testing.T) {
	t.Parallel()
	srv, logs, _ := newLogServer(t, func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }, false)
	resp, err := srv.Client().Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	line := strings.TrimSpace(logs.String())
	fields := map[string]string{}
	for _, kv := range strings.Fields(line) {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = v
	}
	want := map[string]string{"msg": "request", "method": "GET", "route": "/readyz", "status": "200",
		"correlation_id": resp.Header.Get(headerCorrelationID)}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q in %q", k, fields[k], v, line)
		}
	}
	for _, k := range []string{"time", "duration_ms", "org_id", "principal"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("no %s in %q", k, line)
		}
	}
}

// TestMetricsElsewhere: with the metrics on their own address, the API's
// router does not serve them, and MetricsHandler does.
func TestMetricsElsewhere(t *testing.T) {
	t.Parallel()
	srv, _, reg := newLogServer(t, func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }, true)
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the API = %d, want 404", resp.StatusCode)
	}
	metrics := httptest.NewServer(MetricsHandler(reg))
	defer metrics.Close()
	resp, err = metrics.Client().Get(metrics.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "palisade_http_requests_total") {
		t.Fatalf("/metrics on its own address = %d %.200s", resp.StatusCode, body)
	}
}
