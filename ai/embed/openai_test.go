package embed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/embed"
	"github.com/palisadehq/palisade/ai/embed/embedtest"
)

const testAPIKey = "sk-test-7f3a9c2e1b8d4f60a5c3e9d7b1f2a4c6"

// fakeEndpoint speaks the OpenAI embeddings API and computes its vectors
// with the hashing embedder, so the contract suite's similarity checks hold.
// It answers in reverse index order, as servers may, to exercise reordering.
type fakeEndpoint struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
	// fault, when set, may answer request n (counting from 0) itself and
	// return true; otherwise the request is served normally.
	fault func(n int, w http.ResponseWriter, r *http.Request) bool
	// scale multiplies every returned component, for servers that do not
	// normalise.
	scale float32
}

type recordedRequest struct {
	path, auth string
	body       map[string]json.RawMessage
}

func newFakeEndpoint(t *testing.T) *fakeEndpoint {
	t.Helper()
	f := &fakeEndpoint{scale: 1}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, recordedRequest{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
	fault := f.fault
	f.mu.Unlock()
	if fault != nil && fault(n, w, r) {
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	var req struct {
		Model          string   `json:"model"`
		Input          []string `json:"input"`
		EncodingFormat string   `json:"encoding_format"`
		Dimensions     int      `json:"dimensions"`
	}
	raw, _ := json.Marshal(body)
	if err := json.Unmarshal(raw, &req); err != nil || req.Model == "" || req.EncodingFormat != "float" {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	dims := 384
	if req.Dimensions > 0 {
		dims = req.Dimensions
	}
	vecs, err := embed.NewHashing(dims).Embed(r.Context(), req.Input)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	resp := struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
	}{Object: "list", Model: req.Model}
	for i := len(vecs) - 1; i >= 0; i-- {
		for j := range vecs[i] {
			vecs[i][j] *= f.scale
		}
		resp.Data = append(resp.Data, item{Object: "embedding", Index: i, Embedding: vecs[i]})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeEndpoint) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

func newOpenAI(t *testing.T, f *fakeEndpoint, edit func(*embed.OpenAIConfig)) *embed.OpenAI {
	t.Helper()
	cfg := embed.OpenAIConfig{
		BaseURL:        f.URL,
		APIKey:         testAPIKey,
		Model:          "test-embedding",
		Dimensions:     384,
		BatchSize:      16,
		Timeout:        5 * time.Second,
		RetryBaseDelay: time.Millisecond,
		MaxRetryDelay:  20 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	o, err := embed.NewOpenAI(cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return o
}

func TestOpenAIContract(t *testing.T) {
	t.Parallel()
	embedtest.Run(t, func(t *testing.T) embed.Embedder {
		return newOpenAI(t, newFakeEndpoint(t), nil)
	})
}

func TestOpenAIRequestShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		baseSuffix     string
		sendDimensions bool
	}{
		{"bare base URL", "", false},
		{"base URL with /v1 and slash", "/v1/", false},
		{"dimensions requested", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEndpoint(t)
			o := newOpenAI(t, f, func(c *embed.OpenAIConfig) {
				c.BaseURL += tc.baseSuffix
				c.SendDimensions = tc.sendDimensions
				c.Dimensions = 256
			})
			if _, err := o.Embed(t.Context(), []string{"hello"}); err != nil && tc.sendDimensions {
				t.Fatal(err)
			}
			reqs := f.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.path != "/v1/embeddings" {
				t.Errorf("path %q", r.path)
			}
			if r.auth != "Bearer "+testAPIKey {
				t.Errorf("Authorization %q", r.auth)
			}
			if string(r.body["model"]) != `"test-embedding"` || string(r.body["encoding_format"]) != `"float"` ||
				string(r.body["input"]) != `["hello"]` {
				t.Errorf("request body %v", r.body)
			}
			dims, sent := r.body["dimensions"]
			if sent != tc.sendDimensions || (sent && string(dims) != "256") {
				t.Errorf("dimensions sent = %v (%s), want sent = %v", sent, dims, tc.sendDimensions)
			}
		})
	}
}

func TestOpenAINoKeyNoAuthorizationHeader(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	o := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.APIKey = "" })
	if _, err := o.Embed(t.Context(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if auth := f.recorded()[0].auth; auth != "" {
		t.Fatalf("Authorization %q sent without a key", auth)
	}
}

func TestOpenAIBatchesLargeInputs(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	o := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.BatchSize = 7 })
	texts := make([]string, 50)
	for i := range texts {
		texts[i] = fmt.Sprintf("text %d", i)
	}
	out, err := o.Embed(t.Context(), texts)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := embed.NewHashing(384).Embed(t.Context(), texts)
	for i := range out {
		if dot(out[i], want[i]) < 1-1e-6 {
			t.Fatalf("vector %d is not the one for %q", i, texts[i])
		}
	}
	for i, r := range f.recorded() {
		var in []string
		_ = json.Unmarshal(r.body["input"], &in)
		if len(in) > 7 {
			t.Errorf("request %d carried %d inputs, batch size is 7", i, len(in))
		}
	}
	if n := len(f.recorded()); n != 8 {
		t.Errorf("%d requests for 50 texts in batches of 7, want 8", n)
	}
}

func TestOpenAINormalisesVectors(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	f.scale = 3.5
	out, err := newOpenAI(t, f, nil).Embed(t.Context(), []string{"not normalised by the server"})
	if err != nil {
		t.Fatal(err)
	}
	if n := math.Sqrt(dot(out[0], out[0])); math.Abs(n-1) > 1e-5 {
		t.Fatalf("norm %v, want 1", n)
	}
}

func TestOpenAIRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, map[string]string{"Retry-After": "0"}},
		{"429 with a long Retry-After capped", http.StatusTooManyRequests, map[string]string{"Retry-After": "3600"}},
		{"500", http.StatusInternalServerError, nil},
		{"503", http.StatusServiceUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEndpoint(t)
			f.fault = func(n int, w http.ResponseWriter, _ *http.Request) bool {
				if n >= 2 {
					return false
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, `{"error":{"message":"try again"}}`)
				return true
			}
			start := time.Now()
			out, err := newOpenAI(t, f, nil).Embed(t.Context(), []string{"a", "b"})
			if err != nil {
				t.Fatalf("Embed after two failures: %v", err)
			}
			if len(out) != 2 || len(f.recorded()) != 3 {
				t.Fatalf("%d vectors after %d requests, want 2 after 3", len(out), len(f.recorded()))
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("retries took %v: MaxRetryDelay not honoured", time.Since(start))
			}
		})
	}
}

func TestOpenAIGivesUpAfterMaxRetries(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	f.fault = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	}
	_, err := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.MaxRetries = 2 }).Embed(t.Context(), []string{"a"})
	var serr *embed.StatusError
	if !errors.As(err, &serr) || serr.StatusCode != http.StatusBadGateway {
		t.Fatalf("err = %v, want a 502 StatusError", err)
	}
	if n := len(f.recorded()); n != 3 {
		t.Fatalf("%d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestOpenAIRetriesAnAttemptThatTimesOut(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	f.fault = func(n int, _ http.ResponseWriter, r *http.Request) bool {
		if n == 0 {
			<-r.Context().Done() // hang until the client gives up on this attempt
			return true
		}
		return false
	}
	o := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.Timeout = 100 * time.Millisecond })
	if _, err := o.Embed(t.Context(), []string{"a"}); err != nil {
		t.Fatalf("Embed after one timed-out attempt: %v", err)
	}
}

func TestOpenAIRefusesBadResponses(t *testing.T) {
	t.Parallel()
	vector := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat("0.5,", n), ",") + "]"
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"malformed JSON", 200, `{"data":[{"index":0,"embedding":[0.1,`, embed.ErrMalformedResponse},
		{"not JSON at all", 200, `<html>gateway</html>`, embed.ErrMalformedResponse},
		{"base64 instead of floats", 200, `{"data":[{"index":0,"embedding":"AAAA"}]}`, embed.ErrMalformedResponse},
		{"wrong dimension count", 200, `{"data":[{"index":0,"embedding":` + vector(383) + `}]}`, embed.ErrDimensions},
		{"too few embeddings", 200, `{"data":[]}`, embed.ErrMalformedResponse},
		{"too many embeddings", 200, `{"data":[{"index":0,"embedding":` + vector(384) + `},{"index":1,"embedding":` + vector(384) + `}]}`, embed.ErrMalformedResponse},
		{"missing index", 200, `{"data":[{"embedding":` + vector(384) + `}]}`, embed.ErrMalformedResponse},
		{"index out of range", 200, `{"data":[{"index":3,"embedding":` + vector(384) + `}]}`, embed.ErrMalformedResponse},
		{"zero vector", 200, `{"data":[{"index":0,"embedding":` + strings.ReplaceAll(vector(384), "0.5", "0") + `}]}`, embed.ErrMalformedResponse},
		{"huge response", 200, `{"data":[{"index":0,"embedding":[` + strings.Repeat("0.000000000000000001,", 200_000) + `1]}]}`, embed.ErrResponseTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEndpoint(t)
			f.fault = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
				return true
			}
			o := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.MaxResponseBytes = 1 << 20 })
			out, err := o.Embed(t.Context(), []string{"a"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if out != nil {
				t.Fatalf("returned %d vectors with an error", len(out))
			}
			if n := len(f.recorded()); n != 1 {
				t.Fatalf("%d requests: a bad response must not be retried", n)
			}
		})
	}
	t.Run("duplicate index", func(t *testing.T) {
		t.Parallel()
		f := newFakeEndpoint(t)
		f.fault = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
			fmt.Fprint(w, `{"data":[{"index":0,"embedding":`+vector(384)+`},{"index":0,"embedding":`+vector(384)+`}]}`)
			return true
		}
		if _, err := newOpenAI(t, f, nil).Embed(t.Context(), []string{"a", "b"}); !errors.Is(err, embed.ErrMalformedResponse) {
			t.Fatalf("err = %v, want ErrMalformedResponse", err)
		}
	})
}

func TestOpenAIClientErrorNotRetried(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	f.fault = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"message":"model not found","type":"invalid_request_error"}}`)
		return true
	}
	_, err := newOpenAI(t, f, nil).Embed(t.Context(), []string{"a"})
	var serr *embed.StatusError
	if !errors.As(err, &serr) || serr.StatusCode != 400 || serr.Message != "model not found" || serr.Retryable() {
		t.Fatalf("err = %#v", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// Servers echo credentials back (OpenAI's 401 quotes the key it was given);
// whatever the failure, the key must not reach an error, a log or a
// problem+json body through us.
func TestOpenAIErrorsNeverContainTheKey(t *testing.T) {
	t.Parallel()
	echo := func(status int, body string) func(int, http.ResponseWriter, *http.Request) bool {
		return func(_ int, w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(status)
			fmt.Fprint(w, strings.ReplaceAll(body, "KEY", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
			return true
		}
	}
	for _, tc := range []struct {
		name  string
		fault func(int, http.ResponseWriter, *http.Request) bool
	}{
		{"401 quoting the key", echo(401, `{"error":{"message":"Incorrect API key provided: KEY."}}`)},
		{"401 quoting most of the key", echo(401, `{"error":{"message":"Incorrect API key provided: `+testAPIKey[:30]+`"}}`)},
		{"500 with the key in plain text", echo(500, `upstream said KEY`)},
		{"malformed body with the key", echo(200, `{"data": KEY}`)},
		{"redirect", func(_ int, w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, "http://127.0.0.1:1/steal?k="+testAPIKey, http.StatusFound)
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeEndpoint(t)
			f.fault = tc.fault
			_, err := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.MaxRetries = 1 }).Embed(t.Context(), []string{"a"})
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				if strings.Contains(s, testAPIKey[:12]) {
					t.Fatalf("error leaks the API key: %s", s)
				}
			}
		})
	}
	t.Run("transport error", func(t *testing.T) {
		t.Parallel()
		o, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: "http://127.0.0.1:1", APIKey: testAPIKey,
			Model: "m", Dimensions: 8, MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = o.Embed(t.Context(), []string{"a"})
		if err == nil || strings.Contains(err.Error(), testAPIKey[:12]) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestOpenAIDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var stolen sync.Map
	thief := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		stolen.Store("auth", r.Header.Get("Authorization"))
	}))
	t.Cleanup(thief.Close)
	f := newFakeEndpoint(t)
	f.fault = func(_ int, w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, thief.URL+"/v1/embeddings", http.StatusTemporaryRedirect)
		return true
	}
	if _, err := newOpenAI(t, f, nil).Embed(t.Context(), []string{"a"}); err == nil {
		t.Fatal("a redirect was accepted as a response")
	}
	if _, ok := stolen.Load("auth"); ok {
		t.Fatal("the request followed the redirect")
	}
}

func TestOpenAIHonoursCancellationInFlight(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	f.fault = func(_ int, _ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return true
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := newOpenAI(t, f, nil).Embed(ctx, []string{"a"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Embed returned %v after cancellation", d)
	}
}

func TestOpenAICancellationStopsBackoff(t *testing.T) {
	t.Parallel()
	f := newFakeEndpoint(t)
	f.fault = func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	o := newOpenAI(t, f, func(c *embed.OpenAIConfig) { c.MaxRetryDelay = time.Minute })
	start := time.Now()
	if _, err := o.Embed(ctx, []string{"a"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("backoff ignored the context: %v", d)
	}
}

func TestNewOpenAIValidatesConfig(t *testing.T) {
	t.Parallel()
	valid := embed.OpenAIConfig{BaseURL: "https://api.openai.com", Model: "text-embedding-3-small", Dimensions: 384, APIKey: testAPIKey}
	for _, tc := range []struct {
		name string
		edit func(*embed.OpenAIConfig)
	}{
		{"no model", func(c *embed.OpenAIConfig) { c.Model = "" }},
		{"no dimensions", func(c *embed.OpenAIConfig) { c.Dimensions = 0 }},
		{"relative URL", func(c *embed.OpenAIConfig) { c.BaseURL = "api.openai.com" }},
		{"ftp URL", func(c *embed.OpenAIConfig) { c.BaseURL = "ftp://example.com" }},
		{"credentials in URL", func(c *embed.OpenAIConfig) { c.BaseURL = "https://user:" + testAPIKey + "@example.com" }},
		{"query in URL", func(c *embed.OpenAIConfig) { c.BaseURL = "https://example.com/?key=1" }},
		{"key with newline", func(c *embed.OpenAIConfig) { c.APIKey = "abc\r\nX-Evil: 1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tc.edit(&cfg)
			_, err := embed.NewOpenAI(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), testAPIKey[:12]) {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
	o, err := embed.NewOpenAI(valid)
	if err != nil {
		t.Fatal(err)
	}
	if o.Model() != "text-embedding-3-small" || o.Dimensions() != 384 {
		t.Fatalf("Model %q Dimensions %d", o.Model(), o.Dimensions())
	}
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
