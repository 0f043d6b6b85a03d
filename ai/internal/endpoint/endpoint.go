// Package endpoint holds the hygiene shared by the clients of
// OpenAI-compatible endpoints in ai/llm and ai/embed: a checked base URL,
// an HTTP client that sends the API key to no other host, response bodies
// bounded in size, and error excerpts that are short, printable and free of
// the API key.
//
// It knows nothing of chat or embeddings: what differs between the clients
// (the error for a body too large, the key) is passed in. It must import
// nothing of the project outside ai.
package endpoint

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/openai/openai-go/v3/option"
)

// ClientOptions checks an endpoint's base URL and API key and returns the
// options for an openai-go service that reaches it: requests go below
// {baseURL}/v1/, through client or, when it is nil, a client that follows
// no redirects; the key, when set, is sent as a bearer token; the service
// itself never retries, since each caller decides about retries knowing
// what it has already done. The errors name the field, never the key.
func ClientOptions(baseURL, apiKey string, client *http.Client) ([]option.RequestOption, error) {
	base, err := APIBase(baseURL)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(apiKey, "\r\n") {
		return nil, errors.New("APIKey contains a line break")
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithHTTPClient(HTTPClient(client)),
		option.WithMaxRetries(0),
	}
	if apiKey != "" {
		opts = append(opts, option.WithAPIKey(apiKey))
	}
	return opts, nil
}

// APIBase checks a configured base URL and returns it ending in "/v1/",
// the root the openai-go client appends its paths to. The URL may be given
// with or without the "/v1". It must not carry credentials, a query or a
// fragment: the key goes in its own header, and a query would be dropped.
func APIBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("BaseURL must be an absolute http or https URL")
	}
	if u.User != nil {
		return "", errors.New("BaseURL must not carry credentials; use APIKey")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("BaseURL must not have a query or fragment")
	}
	if !strings.HasSuffix(u.Path, "/v1") {
		u.Path += "/v1"
	}
	u.Path += "/"
	return u.String(), nil
}

// HTTPClient returns c, or when c is nil a client that follows no
// redirects, so that the API key is only ever sent to the base URL's host.
func HTTPClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// maxErrorBody bounds what is read of an error answer's body, and of any
// text an excerpt is made from.
const maxErrorBody = 4096

// ErrorMessage reads the start of a non-success answer's body, closes it
// and returns its [Excerpt].
func ErrorMessage(body io.ReadCloser, apiKey string) string {
	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	_ = body.Close()
	return Excerpt(raw, apiKey)
}

// maxExcerpt is the most bytes of an endpoint's message an error carries,
// before the ellipsis.
const maxExcerpt = 200

// Excerpt returns a short, printable version of an endpoint's message (the
// OpenAI error shape's "message" when raw has one, raw itself otherwise)
// with apiKey removed, since some servers echo the key back. Control
// characters and invalid UTF-8 become spaces; a message longer than 200
// bytes is cut at a rune boundary and ends in "…".
func Excerpt(raw []byte, apiKey string) string {
	if len(raw) > maxErrorBody {
		raw = raw[:maxErrorBody]
	}
	msg := string(raw)
	var shaped struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &shaped) == nil && shaped.Error.Message != "" {
		msg = shaped.Error.Message
	}
	msg = Redact(msg, apiKey)
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > maxExcerpt {
		cut := maxExcerpt
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return strings.TrimSpace(msg)
}

// minEcho is the shortest prefix of a key that Redact removes: shorter
// ones would blank out ordinary text such as "sk-".
const minEcho = 8

// Redact replaces apiKey in s, and any prefix of it of at least 8 bytes,
// with "[redacted]": servers echo keys back shortened ("sk-abc…xyz").
// An empty key changes nothing.
func Redact(s, apiKey string) string {
	if apiKey == "" {
		return s
	}
	s = strings.ReplaceAll(s, apiKey, "[redacted]")
	for n := len(apiKey) - 1; n >= minEcho; n-- {
		s = strings.ReplaceAll(s, apiKey[:n], "[redacted]")
	}
	return s
}

// LimitedBody passes a response body through until more than a limit of
// bytes arrive, then fails, from then on, with the error it was given.
type LimitedBody struct {
	rc        io.ReadCloser
	remaining int64
	tooLarge  error
	err       error
	readErr   error
}

// NewLimitedBody bounds rc to limit bytes; the read that would exceed it
// returns the bytes up to the limit and tooLarge.
func NewLimitedBody(rc io.ReadCloser, limit int64, tooLarge error) *LimitedBody {
	return &LimitedBody{rc: rc, remaining: limit, tooLarge: tooLarge}
}

func (b *LimitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// One byte past the limit is enough to tell a body that ends at the
	// limit from one that goes on.
	if int64(len(p)) > b.remaining+1 {
		p = p[:b.remaining+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.remaining {
		b.err = b.tooLarge
		n = int(b.remaining)
		b.remaining = 0
		return n, b.err
	}
	b.remaining -= int64(n)
	if err != nil && err != io.EOF {
		b.readErr = err
	}
	return n, err
}

// Close closes the underlying body.
func (b *LimitedBody) Close() error { return b.rc.Close() }

// ReadErr is the underlying body's failure other than its end, if any: the
// connection broke, which is no fault of the response's shape.
func (b *LimitedBody) ReadErr() error { return b.readErr }
