package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/strictjson"
)

// tokBodyType is a request body type, by name.
type tokBodyType struct {
	name  string
	value any // a pointer to a fresh zero value
}

// tokBodyTypes returns a fresh value of every request body type. A new body
// type belongs here, so that FuzzDecodeStrict covers it. It is a slice, not
// a map: a fuzz target must run the same way for the same input, or the
// fuzzer's coverage guidance (and its minimizer) chases noise.
func tokBodyTypes() []tokBodyType {
	return []tokBodyType{
		{"CreateOrgRequest", &CreateOrgRequest{}},
		{"AddMemberRequest", &AddMemberRequest{}},
		{"ChangeMemberRequest", &ChangeMemberRequest{}},
		{"CreateServiceAccountRequest", &CreateServiceAccountRequest{}},
		{"CreateBotRequest", &CreateBotRequest{}},
		{"UpdateBotRequest", &UpdateBotRequest{}},
		{"CreateKnowledgeBaseRequest", &CreateKnowledgeBaseRequest{}},
		{"UpdateKnowledgeBaseRequest", &UpdateKnowledgeBaseRequest{}},
		{"SetGrantsRequest", &SetGrantsRequest{}},
		{"DocumentRequest", &DocumentRequest{}},
		{"SearchRequest", &SearchRequest{}},
		// Any JSON at all: the key rule holds at every depth, not only
		// where a struct has fields.
		{"any", new(any)},
	}
}

// tokRepeatedKey reports whether the value dec is at holds an object, at
// any depth, with two keys equal but for case (strings.EqualFold). It is
// the fuzz target's own reference, written apart from strictjson.
func tokRepeatedKey(dec *json.Decoder) bool {
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	found := false
	switch tok {
	case json.Delim('{'):
		var keys []string
		for dec.More() {
			k, _ := dec.Token()
			key, _ := k.(string)
			for _, seen := range keys {
				found = found || strings.EqualFold(seen, key)
			}
			keys = append(keys, key)
			found = tokRepeatedKey(dec) || found
		}
		_, _ = dec.Token()
	case json.Delim('['):
		for dec.More() {
			found = tokRepeatedKey(dec) || found
		}
		_, _ = dec.Token()
	}
	return found
}

// FuzzDecodeStrict decodes arbitrary bodies into every request body type.
// Nothing panics; nothing over MaxBodyBytes is accepted; whatever is
// accepted is valid UTF-8 JSON without two keys of one object equal but for
// case, that the lenient encoding/json decoder reads to the same value, and
// it re-encodes to a body DecodeStrict accepts again with an equal value.
// A body refused for a repeated key is refused as invalid input (422).
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{
		`{"name":"Acme","owner_sub":"alice"}`,
		`{"sub":"bob","roles":["viewer","builder"]}`,
		`{"roles":[]}`,
		`{"name":"ci","permissions":["bots:read"],"ttl_seconds":3600}`,
		`{"name":"Helpdesk","instructions":"Be kind","grants":{"knowledge_bases":["kb1"],"data_sources":[],"tools":["search"],"permissions":["kb:read"]}}`,
		`{"name":null,"instructions":"x","grants":null}`,
		`{}`,
		`null`,
		`[]`,
		`"name"`,
		`{"name":"a","name":"b"}`,
		`{"NAME":"case"}`,
		`{"name":"a","Name":"b"}`,
		`{"grants":{"tools":["x"],"TOOLS":["y"]}}`,
		`{"grants":[{"subject":"user:a","permissions":["kb:read"],"SUBJECT":"role:owner"}]}`,
		`{"a":[{"k":1,"\u212a":2}]}`,
		`{"query":"a\u0000b"}`,
		`{"name":"a"} {"name":"b"}`,
		`{"name":"a"}garbage`,
		`{"name":"\ud800"}`,
		"{\"name\":\"\xff\"}",
		`{"unknown":1}`,
		`{"grants":{"tools":["x"],"extra":true}}`,
		`{"ttl_seconds":1e400}`,
		`{"ttl_seconds":-9223372036854775809}`,
		`{"roles":"owner"}`,
		// Seeds stay small: the fuzzer minimizes what it derives from them,
		// and large ones stall it. Deep nesting is pinned in
		// TestDecodeStrictBodyLimit.
		strings.Repeat("[", 64),
		`{"name":` + strings.Repeat(`{"a":`, 16) + `1` + strings.Repeat(`}`, 16) + `}`,
		"\ufeff{}",
		" \t\r\n{}\n",
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, bt := range tokBodyTypes() {
			name, v := bt.name, bt.value
			err := DecodeStrict(bytes.NewReader(body), v)
			var repeated *strictjson.KeyError
			if errors.As(err, &repeated) && (!errors.Is(err, domain.ErrInvalid) || !strings.EqualFold(repeated.Key, repeated.First)) {
				t.Fatalf("%s: %q refused with %v, want invalid input naming two keys equal but for case", name, body, err)
			}
			if err != nil {
				if len(err.Error()) > 512 {
					t.Fatalf("%s: error of %d bytes", name, len(err.Error()))
				}
				continue
			}
			if tokRepeatedKey(json.NewDecoder(bytes.NewReader(body))) {
				t.Fatalf("%s: accepted %q, whose object repeats a key but for case", name, body)
			}
			if len(body) > MaxBodyBytes {
				t.Fatalf("%s: accepted %d bytes", name, len(body))
			}
			if !json.Valid(body) {
				t.Fatalf("%s: accepted invalid JSON %q", name, body)
			}
			// The lenient decoder agrees: DecodeStrict only ever refuses more.
			lenient := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(body, lenient); err != nil {
				t.Fatalf("%s: accepted %q, which encoding/json refuses: %v", name, body, err)
			}
			if !reflect.DeepEqual(v, lenient) {
				t.Fatalf("%s: %q decoded to %+v, encoding/json says %+v", name, body, v, lenient)
			}
			encoded, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: re-encode %+v: %v", name, v, err)
			}
			again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := DecodeStrict(bytes.NewReader(encoded), again); err != nil {
				t.Fatalf("%s: %q re-encoded as %q, which is refused: %v", name, body, encoded, err)
			}
			if !reflect.DeepEqual(v, again) {
				t.Fatalf("%s: %+v re-encoded and decoded to %+v", name, v, again)
			}
		}
	})
}

// TestDecodeStrictBodyLimit pins the boundary FuzzDecodeStrict seldom
// reaches: a body of exactly MaxBodyBytes is read, one byte more is refused
// as too large (413), whatever it holds.
func TestDecodeStrictBodyLimit(t *testing.T) {
	t.Parallel()
	obj := []byte(`{"name":"Acme","owner_sub":"alice"}`)
	padded := func(n int) []byte {
		return append(bytes.Repeat([]byte(" "), n-len(obj)), obj...)
	}
	var in CreateOrgRequest
	if err := DecodeStrict(bytes.NewReader(padded(MaxBodyBytes)), &in); err != nil || in.Name != "Acme" {
		t.Fatalf("body of MaxBodyBytes: %v %+v", err, in)
	}
	for _, body := range [][]byte{
		padded(MaxBodyBytes + 1),
		padded(4 * MaxBodyBytes),
		append([]byte(`{"name":"`), append(bytes.Repeat([]byte("a"), MaxBodyBytes), `"}`...)...),
	} {
		for _, bt := range tokBodyTypes() {
			name, v := bt.name, bt.value
			err := DecodeStrict(bytes.NewReader(body), v)
			var tooLarge *http.MaxBytesError
			if !errors.As(err, &tooLarge) {
				t.Errorf("%s: body of %d bytes: %v, want *http.MaxBytesError", name, len(body), err)
			}
		}
	}
	// Nesting beyond encoding/json's depth limit is an error, not a crash.
	for _, body := range []string{
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"name":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`,
	} {
		for _, bt := range tokBodyTypes() {
			name, v := bt.name, bt.value
			if err := DecodeStrict(strings.NewReader(body), v); err == nil {
				t.Errorf("%s: accepted %d levels of nesting", name, strings.Count(body, "[")+strings.Count(body, "{"))
			}
		}
	}
	// A reader that never ends is read only up to the limit.
	var out CreateOrgRequest
	var tooLarge *http.MaxBytesError
	if err := DecodeStrict(tokEndless{}, &out); !errors.As(err, &tooLarge) {
		t.Fatalf("endless body: %v", err)
	}
}

// tokEndless is an endless body of spaces.
type tokEndless struct{}

func (tokEndless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// tokResolver stands in for the membership read model: every subject of a
// verified token resolves, except "ghost". It counts its calls.
type tokResolver struct{ calls int }

func (r *tokResolver) Resolve(_ context.Context, c projections.Credentials) (access.Principal, error) {
	r.calls++
	switch {
	case c.Subject == "ghost":
		return access.Principal{}, projections.ErrUnknownPrincipal
	case c.Kind == identity.KindPlatform:
		return access.NewPlatform(c.Subject), nil
	case c.Kind == identity.KindService:
		return access.NewServiceAccount(c.OrgID, c.Subject, access.NewPermissionSet(access.BotsRead), c.Scope), nil
	default:
		return access.NewUser(c.OrgID, c.Subject, []access.Role{access.RoleOwner}, c.Scope), nil
	}
}

// tokAppendLog is the embedded store with appends kept in memory instead
// of written: the fuzzer needs the same input to take the same path, and a
// database write (page splits, WAL checkpoints) never does.
type tokAppendLog struct {
	eventstore.Store
	appended []tokAppended
}

type tokAppended struct {
	stream eventstore.StreamName
	events []eventstore.NewEvent
}

func (l *tokAppendLog) Append(_ context.Context, stream eventstore.StreamName, _ eventstore.ExpectedVersion, evs []eventstore.NewEvent) (eventstore.AppendResult, error) {
	l.appended = append(l.appended, tokAppended{stream: stream, events: evs})
	n := uint64(len(l.appended))
	return eventstore.AppendResult{FirstVersion: n, LastVersion: n, FirstPosition: n, LastPosition: n}, nil
}

// tokAuthBundle is a Server with a real verifier and pipeline, a stub
// resolver, and an issuer to mint seeds with.
type tokAuthBundle struct {
	server   *Server
	verifier *identity.Verifier
	issuer   *identity.Issuer
	resolver *tokResolver
	log      *tokAppendLog
	org      string
}

func tokNewAuthBundle(t testing.TB) *tokAuthBundle {
	t.Helper()
	dir := t.TempDir()
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(identity.VerifierConfig{Audience: "palisade", Issuers: []identity.TrustedIssuer{issuer.Trusted()}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(context.Background(), filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	resolver := &tokResolver{}
	log := &tokAppendLog{Store: store}
	server := NewServer(Deps{
		Routes: AllRoutes(),
		App: Application{Commands: Commands{
			Security: commands.NewPipeline(log, events.NewRegistry(), logger),
		}},
		Principals: resolver,
		Verifier:   verifier,
		JWKS:       issuer.JWKS,
		Registry:   prometheus.NewRegistry(),
		Logger:     logger,
	})
	return &tokAuthBundle{server: server, verifier: verifier, issuer: issuer, resolver: resolver, log: log, org: uuid.NewString()}
}

func (b *tokAuthBundle) mint(t testing.TB, c identity.Claims, sub string) string {
	t.Helper()
	c.Subject = sub
	tok, err := b.issuer.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokSeg is the base64url of s.
func tokSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// FuzzAuthenticate fuzzes the Authorization header through the real
// authenticate middleware. Nothing panics; the handler behind it, and the
// principal resolver, run only for a token the verifier accepts, with a
// principal that is the token's subject in the token's org; a refusal is the
// one fixed 401 problem with a Bearer challenge, recorded exactly once, in
// the platform's security stream unless a verified token named an org, and
// naming a subject only when the token verified.
func FuzzAuthenticate(f *testing.F) {
	b := tokNewAuthBundle(f)
	user := b.mint(f, identity.Claims{Kind: identity.KindUser, Org: b.org}, "alice")
	parts := strings.Split(user, ".")
	valid := []string{
		user,
		b.mint(f, identity.Claims{Kind: identity.KindUser, Org: b.org, Scope: "bots:read"}, "alice"),
		b.mint(f, identity.Claims{Kind: identity.KindUser, Org: b.org, Scope: "bots:read bots:fly"}, "alice"),
		b.mint(f, identity.Claims{Kind: identity.KindUser, Org: b.org, Scope: "openid"}, "alice"),
		b.mint(f, identity.Claims{Kind: identity.KindService, Org: b.org}, "svc-1"),
		b.mint(f, identity.Claims{Kind: identity.KindPlatform}, "operator"),
		b.mint(f, identity.Claims{Kind: identity.KindUser, Org: b.org}, "ghost"),
	}
	for _, tok := range valid {
		f.Add("Bearer " + tok)
		f.Add("bearer " + tok)
		f.Add("Bearer  " + tok + " ")
	}
	hostile := []string{
		"",
		"Bearer",
		"Bearer ",
		"Bearer \x00",
		"Basic YWxpY2U6aHVudGVyMg==",
		"Basic " + user,
		user,
		"Bearer " + user + " " + user,
		"Bearer " + user + "\r\nX-Injected: 1",
		"Bearer " + parts[0] + "." + parts[1] + ".",
		"Bearer " + parts[0] + "." + tokSeg(`{"sub":"alice","org":"`+b.org+`","kind":"platform"}`) + "." + parts[2],
		"Bearer " + tokSeg(`{"alg":"none","kid":"`+b.issuer.KeyID()+`"}`) + "." + parts[1] + ".",
		"Bearer " + tokSeg(`{"alg":"HS256","kid":"`+b.issuer.KeyID()+`"}`) + "." + parts[1] + "." + parts[2],
		"Bearer " + tokSeg(`{"alg":"EdDSA","kid":"../../etc/passwd"}`) + "." + parts[1] + "." + parts[2],
		"Bearer " + tokSeg(`{"alg":"EdDSA","kid":"`+b.issuer.KeyID()+`","jku":"http://127.0.0.1:1/"}`) + "." + parts[1] + "." + parts[2],
		"Bearer " + strings.Repeat(".", 10<<10),
		"Bearer " + strings.Repeat("A", 9<<10) + ".e30.",
		"Bearer e30.e30.e30",
		"Bearer ..",
	}
	for _, h := range hostile {
		f.Add(h)
	}

	f.Fuzz(func(t *testing.T, header string) {
		called := false
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			// Independently: the header is a Bearer token that verifies,
			// and the principal is its subject in its org.
			scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				t.Fatalf("handler reached with Authorization %q", header)
			}
			claims, err := b.verifier.Verify(strings.TrimSpace(raw))
			if err != nil {
				t.Fatalf("handler reached with a token the verifier refuses (%v): %q", err, header)
			}
			p := principalFrom(r.Context())
			if p.Subject != claims.Subject || string(p.Kind) != claims.Kind || p.OrgID != claims.Org {
				t.Fatalf("principal %+v for claims sub %q kind %q org %q", p, claims.Subject, claims.Kind, claims.Org)
			}
			if claims.Subject == "ghost" {
				t.Fatal("handler reached for a subject the resolver refused")
			}
			w.WriteHeader(http.StatusNoContent)
		})
		req := httptest.NewRequest(http.MethodGet, "/v1/org", nil)
		if header != "" {
			req.Header["Authorization"] = []string{header}
		}
		rec := httptest.NewRecorder()
		b.resolver.calls = 0
		b.log.appended = nil
		// A fresh recorder budget and metrics: every denial is recorded and
		// counted the same way, so the same input always takes the same
		// path (the fuzzer needs that).
		b.server.authDenials = newDenialLimiter(0, 0)
		b.server.metrics = newMetrics(prometheus.NewRegistry())
		b.server.authenticate(next).ServeHTTP(rec, req)

		_, raw, _ := strings.Cut(header, " ")
		claims, verifyErr := b.verifier.Verify(strings.TrimSpace(raw))
		if b.resolver.calls > 0 && verifyErr != nil {
			t.Fatalf("resolver called for a token the verifier refuses: %q", header)
		}
		if called {
			if rec.Code != http.StatusNoContent {
				t.Fatalf("handler ran but the answer is %d", rec.Code)
			}
			if len(b.log.appended) != 0 {
				t.Fatalf("accepted, yet %d appends", len(b.log.appended))
			}
			return
		}
		// The refusal is recorded once, in the platform's security stream
		// unless a verified token named an org, and names a subject only
		// when the token verified.
		if len(b.log.appended) != 1 || len(b.log.appended[0].events) != 1 {
			t.Fatalf("refusal recorded by %d appends", len(b.log.appended))
		}
		a := b.log.appended[0]
		var denied events.AuthenticationDenied
		if a.events[0].Type != "AuthenticationDenied" || json.Unmarshal(a.events[0].Data, &denied) != nil {
			t.Fatalf("recorded %s %s", a.events[0].Type, a.events[0].Data)
		}
		wantOrg, wantSubject := access.PlatformScope, ""
		if verifyErr == nil && b.resolver.calls > 0 || denied.Reason == "bad_scope" {
			wantOrg, wantSubject = claims.Org, claims.Subject
			if wantOrg == "" { // a platform token
				wantOrg = access.PlatformScope
			}
		}
		if a.stream.Category != events.SecurityCategory || a.stream.OrgID != wantOrg || a.events[0].OrgID != wantOrg || denied.Subject != wantSubject {
			t.Fatalf("recorded in %s (org_id %q) for subject %q, want org %q subject %q", a.stream, a.events[0].OrgID, denied.Subject, wantOrg, wantSubject)
		}
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("refused with %d, want 401", rec.Code)
		}
		if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ") {
			t.Fatalf("401 without a Bearer challenge: %v", rec.Header())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("401 with Content-Type %q", ct)
		}
		// The body is the same for every refusal, so it can echo nothing.
		var p Problem
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("401 body: %v", err)
		}
		want := Problem{Type: problemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "missing, invalid or expired credentials"}
		if p != want {
			t.Fatalf("401 body %+v, want %+v", p, want)
		}
	})
}

// TestAuthenticateSeedsReachTheHandler guards FuzzAuthenticate against
// passing for the wrong reason: its valid seeds do get through.
func TestAuthenticateSeedsReachTheHandler(t *testing.T) {
	t.Parallel()
	b := tokNewAuthBundle(t)
	for _, tok := range []string{
		b.mint(t, identity.Claims{Kind: identity.KindUser, Org: b.org}, "alice"),
		b.mint(t, identity.Claims{Kind: identity.KindUser, Org: b.org, Scope: "bots:read"}, "alice"),
		b.mint(t, identity.Claims{Kind: identity.KindService, Org: b.org}, "svc-1"),
		b.mint(t, identity.Claims{Kind: identity.KindPlatform}, "operator"),
	} {
		called := false
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
		req := httptest.NewRequest(http.MethodGet, "/v1/org", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		b.server.authenticate(next).ServeHTTP(rec, req)
		if !called {
			t.Errorf("valid token refused: %d %s", rec.Code, rec.Body.Bytes())
		}
	}
}
