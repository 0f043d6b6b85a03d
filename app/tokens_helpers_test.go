package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/identity"
)

// Helpers of the token attack tests (tokens_test.go). They hand-craft JWTs
// with the standard library only, so that what reaches the server is exactly
// what an attacker could send, independent of any JWT library.

// tokForger signs tokens as the built-in issuer, with its private key read
// from the data directory, so tests can craft claims Mint would refuse.
type tokForger struct {
	key ed25519.PrivateKey
	kid string
}

func tokNewForger(t testing.TB, h *harness) tokForger {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.dataDir, identity.IssuerKeyFile))
	if err != nil {
		t.Fatalf("read issuer key: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("issuer key is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse issuer key: %v", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("issuer key is a %T", parsed)
	}
	return tokForger{key: key, kid: h.app.Issuer.KeyID()}
}

// header returns the header the built-in issuer writes.
func (f tokForger) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": f.kid}
}

// claims returns valid claims of a user token for sub in org.
func (f tokForger) claims(org, sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": app.DefaultIssuer, "aud": app.DefaultAudience,
		"sub": sub, "org": org, "kind": identity.KindUser,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": uuid.NewString(),
	}
}

// sign signs header and claims with the issuer's own key.
func (f tokForger) sign(t testing.TB, header, claims any) string {
	t.Helper()
	return tokSignEd25519(t, f.key, header, claims)
}

// tokSegment is the base64url (unpadded) encoding of v: raw bytes for a
// string or []byte, JSON otherwise.
func tokSegment(t testing.TB, v any) string {
	t.Helper()
	var data []byte
	switch x := v.(type) {
	case string:
		data = []byte(x)
	case []byte:
		data = x
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatalf("encode token segment: %v", err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

func tokSignEd25519(t testing.TB, key ed25519.PrivateKey, header, claims any) string {
	t.Helper()
	input := tokSegment(t, header) + "." + tokSegment(t, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func tokSignHS256(t testing.TB, secret []byte, header, claims any) string {
	t.Helper()
	input := tokSegment(t, header) + "." + tokSegment(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tokWithSignature joins header and claims with an arbitrary signature
// (nil: the empty signature of an unsigned token).
func tokWithSignature(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	return tokSegment(t, header) + "." + tokSegment(t, claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tokWith returns a copy of m with the key/value pairs set; a nil value
// deletes the key.
func tokWith(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// tokPayload decodes the payload of a compact JWT without verifying it.
func tokPayload(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(data, &claims); err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	return claims
}

// tokTamper re-encodes the payload of a validly signed token with edits,
// keeping the original header and signature.
func tokTamper(t testing.TB, raw string, kv ...any) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	return parts[0] + "." + tokSegment(t, tokWith(tokPayload(t, raw), kv...)) + "." + parts[2]
}

// tokResponse is an answer as the client saw it, with the correlation id
// the request carried (which the server copies into event metadata).
type tokResponse struct {
	status      int
	header      http.Header
	body        []byte
	correlation string
}

// tokEndpoint is a protected endpoint the attacks are tried against.
type tokEndpoint struct {
	method, path string
	body         []byte
}

var tokEndpoints = []tokEndpoint{
	{http.MethodGet, "/v1/org", nil},
	{http.MethodPost, "/v1/bots", []byte(`{"name":"forged"}`)},
}

// tokSend sends a request with authorization as the whole Authorization
// header value ("" sends none). Unlike h.do it takes the subtest's t, so it
// is safe in parallel subtests.
func tokSend(t testing.TB, h *harness, method, path, authorization string, body []byte, headers ...string) tokResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	correlation := "tok-" + uuid.NewString()
	req.Header.Set("X-Correlation-Id", correlation)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return tokResponse{status: resp.StatusCode, header: resp.Header, body: data, correlation: correlation}
}

// tokBearer sends token as a bearer token.
func tokBearer(t testing.TB, h *harness, method, path, token string, body []byte) tokResponse {
	t.Helper()
	return tokSend(t, h, method, path, "Bearer "+token, body)
}

// tokProblem is the RFC 9457 body.
type tokProblem struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail"`
	CorrelationID string `json:"correlation_id"`
}

// tokRequireProblem checks the status and the problem+json body.
func tokRequireProblem(t testing.TB, r tokResponse, status int) tokProblem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d %s, want %d", r.status, tokClipBody(r.body), status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p tokProblem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", tokClipBody(r.body), err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Errorf("problem %+v", p)
	}
	if p.CorrelationID != r.correlation {
		t.Errorf("problem correlation_id %q, want %q", p.CorrelationID, r.correlation)
	}
	return p
}

// tokRequireUnauthorized checks a 401 answer: problem+json, a Bearer
// challenge, and nothing of the token echoed back.
func tokRequireUnauthorized(t testing.TB, r tokResponse, token string) {
	t.Helper()
	tokRequireProblem(t, r, http.StatusUnauthorized)
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
		t.Errorf("WWW-Authenticate %q, want a Bearer challenge", ch)
	}
	tokRequireNoEcho(t, string(r.body), token)
}

// tokRequireNoEcho fails when text holds any signature or payload of token.
func tokRequireNoEcho(t testing.TB, text, token string) {
	t.Helper()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 16 && strings.Contains(text, part) {
			t.Errorf("token segment %q echoed in %q", tokClip(part, 40), tokClip(text, 200))
		}
	}
}

func tokClipBody(b []byte) string { return tokClip(string(b), 300) }

func tokClip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// tokEvent is an event read straight from the log.
type tokEvent struct {
	env  eventstore.Envelope
	data map[string]any
}

// tokEvents reads every event of type typ from the log, directly, in order.
func tokEvents(t testing.TB, h *harness, typ string) []tokEvent {
	t.Helper()
	var out []tokEvent
	var after uint64
	for {
		envs, err := h.app.Store.ReadAll(context.Background(), after, eventstore.Filter{Types: []string{typ}}, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		for _, env := range envs {
			var data map[string]any
			if err := json.Unmarshal(env.Data, &data); err != nil {
				t.Fatalf("decode %s at %d: %v", typ, env.Position, err)
			}
			out = append(out, tokEvent{env: env, data: data})
			after = env.Position
		}
		if len(envs) < 1000 {
			return out
		}
	}
}

// tokEventsOf returns the events of type typ recorded for the request with
// correlation id correlation.
func tokEventsOf(t testing.TB, h *harness, typ, correlation string) []tokEvent {
	t.Helper()
	var out []tokEvent
	for _, e := range tokEvents(t, h, typ) {
		if e.env.CorrelationID == correlation {
			out = append(out, e)
		}
	}
	return out
}

// tokDenial is what one recorded AuthenticationDenied must say.
type tokDenial struct {
	reason  string
	org     string // the stream's org: access.PlatformScope unless a verified token named one
	subject string // empty unless the token verified
}

// tokRequireDenial checks that exactly one AuthenticationDenied was recorded
// for r, with the reason, org and subject of want, the request's method and
// path, and no trace of the token.
func tokRequireDenial(t testing.TB, h *harness, r tokResponse, method, path, token string, want tokDenial) events.AuthenticationDenied {
	t.Helper()
	got := tokEventsOf(t, h, "AuthenticationDenied", r.correlation)
	if len(got) != 1 {
		t.Fatalf("%d AuthenticationDenied events for request %s, want 1", len(got), r.correlation)
	}
	e := got[0]
	var d events.AuthenticationDenied
	if err := json.Unmarshal(e.env.Data, &d); err != nil {
		t.Fatalf("decode AuthenticationDenied: %v", err)
	}
	if d.Reason != want.reason {
		t.Errorf("reason %q, want %q", d.Reason, want.reason)
	}
	if d.Subject != want.subject {
		t.Errorf("subject %q, want %q", d.Subject, want.subject)
	}
	if d.Method != method || d.Path != path {
		t.Errorf("recorded %s %s, want %s %s", d.Method, d.Path, method, path)
	}
	if d.RemoteAddr == "" {
		t.Error("remote address not recorded")
	}
	if d.Suppressed != 0 {
		t.Errorf("suppressed %d: the test went over the recorder's burst", d.Suppressed)
	}
	if e.env.Stream.Category != events.SecurityCategory || e.env.Stream.OrgID != want.org || e.env.OrgID != want.org {
		t.Errorf("recorded in stream %s (org_id %q), want the security stream of %q", e.env.Stream, e.env.OrgID, want.org)
	}
	tokRequireNoEcho(t, string(e.env.Data), token)
	return d
}

// tokRequireAccessDenied checks that the 403 answered to r was recorded as
// an AccessDenied in org's security stream, by actor subject.
func tokRequireAccessDenied(t testing.TB, h *harness, r tokResponse, org, subject string) {
	t.Helper()
	got := tokEventsOf(t, h, "AccessDenied", r.correlation)
	if len(got) != 1 {
		t.Fatalf("%d AccessDenied events for request %s, want 1", len(got), r.correlation)
	}
	e := got[0].env
	if e.Stream.Category != events.SecurityCategory || e.OrgID != org || e.Actor.Subject != subject {
		t.Errorf("AccessDenied in %s org_id %q by %q, want org %q by %q", e.Stream, e.OrgID, e.Actor.Subject, org, subject)
	}
}
