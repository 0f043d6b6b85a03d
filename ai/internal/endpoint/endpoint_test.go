package endpoint_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/openai/openai-go/v3"

	"github.com/palisadehq/palisade/ai/internal/endpoint"
)

const key = "sk-test-0123456789abcdef"

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, key, want string
	}{
		{"no key leaves the text", "token sk-test-0123456789abcdef", "", "token sk-test-0123456789abcdef"},
		{"whole key", "bad key " + key + ".", key, "bad key [redacted]."},
		{"every occurrence", key + " and " + key, key, "[redacted] and [redacted]"},
		{"shortened echo", "Incorrect API key provided: sk-test-0123…cdef", key, "Incorrect API key provided: [redacted]…cdef"},
		{"prefix of eight bytes", "key sk-test- was refused", key, "key [redacted] was refused"},
		{"prefix of seven bytes is kept", "key sk-test was refused", key, "key sk-test was refused"},
		{"short key only whole", "abc12345 abc1234", "abc12345", "[redacted] abc1234"},
		{"text without the key", "model not found", key, "model not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := endpoint.Redact(tc.in, tc.key); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		raw  string
		want string
	}{
		{"plain text", "upstream unavailable\n", "upstream unavailable"},
		{"OpenAI error shape", `{"error":{"message":"model \"x\" not found","type":"invalid_request_error"}}`, `model "x" not found`},
		{"error shape without message", `{"error":{"code":500}}`, `{"error":{"code":500}}`},
		{"key in the message", `{"error":{"message":"Incorrect API key provided: ` + key[:12] + `****cdef."}}`, "Incorrect API key provided: [redacted]****cdef."},
		{"control characters", "line one\r\nline\ttwo\x1b[31m\x7f", "line one  line two [31m"},
		{"invalid UTF-8", "bad \xff\xfe byte", "bad    byte"},
		{"empty", "", ""},
		{"exactly 200 bytes", strings.Repeat("a", 200), strings.Repeat("a", 200)},
		{"long text cut at 200 bytes", strings.Repeat("a", 300), strings.Repeat("a", 200) + "…"},
		// "é" is two bytes: byte 200 would split the 100th one.
		{"cut at a rune boundary", "a" + strings.Repeat("é", 150), "a" + strings.Repeat("é", 99) + "…"},
		// Only the first 4096 bytes are read: an error shape that ends
		// past them is not recognised, and what is shown is the raw text.
		{"error shape within 4096 bytes", strings.Repeat(" ", 4000) + `{"error":{"message":"found"}}`, "found"},
		{"error shape past 4096 bytes", strings.Repeat(" ", 4080) + `{"error":{"message":"found"}}`, "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := endpoint.Excerpt([]byte(tc.raw), key)
			if got != tc.want {
				t.Fatalf("Excerpt = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, key[:8]) {
				t.Fatalf("Excerpt leaks the key: %q", got)
			}
		})
	}
}

// closeRecorder is a body that remembers being closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error {
	c.closed = true
	return nil
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	body := &closeRecorder{Reader: strings.NewReader(`{"error":{"message":"rate limited for ` + key + `"}}`)}
	if got, want := endpoint.ErrorMessage(body, key), "rate limited for [redacted]"; got != want {
		t.Fatalf("ErrorMessage = %q, want %q", got, want)
	}
	if !body.closed {
		t.Fatal("body not closed")
	}
}

var errTooLarge = errors.New("too large")

func TestLimitedBody(t *testing.T) {
	t.Parallel()
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name     string
		body     io.Reader
		limit    int64
		want     string
		wantErr  error
		wantRead error
	}{
		{"under the limit", strings.NewReader("hello"), 10, "hello", nil, nil},
		{"exactly the limit", strings.NewReader("hello"), 5, "hello", nil, nil},
		{"one byte over", strings.NewReader("hello!"), 5, "hello", errTooLarge, nil},
		{"far over, read a byte at a time", iotest.OneByteReader(strings.NewReader(strings.Repeat("x", 100))), 7, "xxxxxxx", errTooLarge, nil},
		{"zero limit, empty body", strings.NewReader(""), 0, "", nil, nil},
		{"zero limit, any byte", strings.NewReader("x"), 0, "", errTooLarge, nil},
		{"connection breaks", io.MultiReader(strings.NewReader("par"), iotest.ErrReader(broken)), 10, "par", broken, broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := &closeRecorder{Reader: tc.body}
			b := endpoint.NewLimitedBody(rc, tc.limit, errTooLarge)
			got, err := io.ReadAll(b)
			if string(got) != tc.want {
				t.Fatalf("read %q, want %q", got, tc.want)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if !errors.Is(b.ReadErr(), tc.wantRead) || (tc.wantRead == nil && b.ReadErr() != nil) {
				t.Fatalf("ReadErr %v, want %v", b.ReadErr(), tc.wantRead)
			}
			if tc.wantErr == errTooLarge {
				// Once too large, always too large.
				if n, err := b.Read(make([]byte, 8)); n != 0 || err != errTooLarge {
					t.Fatalf("read after the limit: %d, %v", n, err)
				}
			}
			if err := b.Close(); err != nil || !rc.closed {
				t.Fatalf("Close: %v, closed %v", err, rc.closed)
			}
		})
	}
}

func TestAPIBase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw, want string
		wantErr   bool
	}{
		{raw: "https://api.openai.com", want: "https://api.openai.com/v1/"},
		{raw: "https://api.openai.com/", want: "https://api.openai.com/v1/"},
		{raw: "http://vllm:8000/v1", want: "http://vllm:8000/v1/"},
		{raw: "http://vllm:8000/v1/", want: "http://vllm:8000/v1/"},
		{raw: "http://proxy/openai", want: "http://proxy/openai/v1/"},
		{raw: "", wantErr: true},
		{raw: "api.openai.com", wantErr: true},
		{raw: "ftp://example.com", wantErr: true},
		{raw: "https://user:" + key + "@example.com", wantErr: true},
		{raw: "https://example.com/?key=1", wantErr: true},
		{raw: "https://example.com/#top", wantErr: true},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			got, err := endpoint.APIBase(tc.raw)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted as %q", got)
				}
				if strings.Contains(err.Error(), key[:8]) {
					t.Fatalf("error leaks the key: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("APIBase = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestHTTPClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed, Authorization %q", r.Header.Get("Authorization"))
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusFound))
	defer srv.Close()

	resp, err := endpoint.HTTPClient(nil).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want the redirect itself", resp.StatusCode)
	}

	given := &http.Client{}
	if endpoint.HTTPClient(given) != given {
		t.Fatal("a given client is replaced")
	}
}

func TestClientOptionsRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, baseURL, apiKey string
	}{
		{"no URL", "", key},
		{"credentials in URL", "https://user:" + key + "@example.com", key},
		{"key with a line break", "https://example.com", "abc\r\nX-Evil: 1"},
		{"key with a newline", "https://example.com", "abc\nX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts, err := endpoint.ClientOptions(tc.baseURL, tc.apiKey, nil)
			if err == nil {
				t.Fatalf("accepted: %d options", len(opts))
			}
			if strings.Contains(err.Error(), key[:8]) {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
}

// TestClientOptionsRequest sends one request with a service built from the
// options: to the base URL's /v1, with the key as a bearer token only when
// there is one, once, and not along a redirect. (openai-go itself refuses
// a redirect to another origin, so the redirect here stays on the server.)
func TestClientOptionsRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		apiKey     string
		redirect   bool
		wantBearer string
	}{
		{name: "with a key", apiKey: key, wantBearer: "Bearer " + key},
		{name: "without a key"},
		{name: "redirected", apiKey: key, redirect: true, wantBearer: "Bearer " + key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requests := make(chan *http.Request, 10)
			mux := http.NewServeMux()
			mux.HandleFunc("/v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
				requests <- r
				if tc.redirect {
					http.Redirect(w, r, "/moved", http.StatusFound)
					return
				}
				// Retryable, so that a client retrying on its own would.
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("redirect followed, Authorization %q", r.Header.Get("Authorization"))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()

			opts, err := endpoint.ClientOptions(srv.URL+"/", tc.apiKey, nil)
			if err != nil {
				t.Fatal(err)
			}
			service := openai.NewEmbeddingService(opts...)
			_, err = service.New(context.Background(), openai.EmbeddingNewParams{
				Model: "m",
				Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")},
			})
			if err == nil {
				t.Fatal("no error from a failing endpoint")
			}
			close(requests)
			var got []*http.Request
			for r := range requests {
				got = append(got, r)
			}
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1 (no retries)", len(got))
			}
			if got[0].URL.Path != "/v1/embeddings" {
				t.Fatalf("path %q", got[0].URL.Path)
			}
			if bearer := got[0].Header.Get("Authorization"); bearer != tc.wantBearer {
				t.Fatalf("Authorization %q, want %q", bearer, tc.wantBearer)
			}
		})
	}
}
