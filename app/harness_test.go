package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/identity"
)

// harness is a whole Palisade on the embedded default, served over real
// HTTP on loopback, for black-box tests.
type harness struct {
	t        testing.TB
	app      *app.App
	srv      *httptest.Server
	dataDir  string
	platform string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return openHarness(t, t.TempDir())
}

// testReadModels says which read models the end-to-end suites run on:
// "memory" (the default) or "postgres", chosen by PALISADE_TEST_READ_MODELS.
// make test runs the suites once each way.
func testReadModels() string {
	if os.Getenv("PALISADE_TEST_READ_MODELS") == "postgres" {
		return "postgres"
	}
	return "memory"
}

// postgresForTest returns owner URL, app URL and a schema of its own for a
// data directory (the same directory gets the same schema, so a restart
// finds its read models), dropped when the test ends. Without
// PALISADE_TEST_POSTGRES_URL the test fails: the suite was asked to run on
// PostgreSQL.
func postgresForTest(t testing.TB, dataDir string) (owner, appURL, schema string) {
	t.Helper()
	owner = os.Getenv("PALISADE_TEST_POSTGRES_URL")
	if owner == "" {
		t.Fatal("PALISADE_TEST_READ_MODELS=postgres needs PALISADE_TEST_POSTGRES_URL (make test sets it)")
	}
	appURL = os.Getenv("PALISADE_TEST_POSTGRES_APP_URL")
	if appURL == "" {
		u, err := url.Parse(owner)
		if err != nil {
			t.Fatalf("PALISADE_TEST_POSTGRES_URL: %v", err)
		}
		u.User = url.UserPassword("palisade_app", "palisade_app")
		appURL = u.String()
	}
	sum := sha256.Sum256([]byte(dataDir))
	schema = "e2e_" + hex.EncodeToString(sum[:8])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), owner)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return owner, appURL, schema
}

// kafkaForTest starts an in-process Kafka (kfake) for one harness, when
// PALISADE_TEST_BUS=kafka asks the suites to run over the Kafka bus.
func kafkaForTest(t testing.TB) []string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()
}

// esdbForTest serves an in-test EventStoreDB (esdbtest, speaking the
// client's own protocol) for a data directory, when
// PALISADE_TEST_EVENTSTORE=esdb asks the suites to run on the EventStoreDB
// adapter. The same directory gets the same server, so a restart finds its
// log.
func esdbForTest(t testing.TB, dataDir string) string {
	t.Helper()
	esdbServersMu.Lock()
	defer esdbServersMu.Unlock()
	if srv, ok := esdbServers[dataDir]; ok {
		return srv.URL()
	}
	srv, err := esdbtest.Start()
	if err != nil {
		t.Fatalf("esdbtest: %v", err)
	}
	t.Cleanup(srv.Close)
	esdbServers[dataDir] = srv
	return srv.URL()
}

var (
	esdbServersMu sync.Mutex
	esdbServers   = map[string]*esdbtest.Server{}
)

// openHarness starts Palisade on dataDir (which may hold an earlier run's
// log); configure, if given, adjusts the configuration first.
func openHarness(t testing.TB, dataDir string, configure ...func(*app.Config)) *harness {
	t.Helper()
	return openHarnessWith(t, dataDir, func(cfg *app.Config) {
		for _, c := range configure {
			c(cfg)
		}
	})
}

// openApp opens Palisade on dataDir in the configuration the suites run
// in, changed by configure (if not nil).
func openApp(t testing.TB, dataDir string, configure func(*app.Config)) (*app.App, error) {
	t.Helper()
	cfg := app.Config{
		DataDir: dataDir,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The sample databases of the data-source tests run on this
		// machine: loopback is refused unless the allow-list names it.
		DataSourceNetworks: "127.0.0.0/8,::1/128",
	}
	if testReadModels() == "postgres" {
		cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = postgresForTest(t, dataDir)
	}
	if os.Getenv("PALISADE_TEST_BUS") == "kafka" {
		cfg.KafkaBrokers = kafkaForTest(t)
	}
	if os.Getenv("PALISADE_TEST_EVENTSTORE") == "esdb" {
		cfg.EventStoreURL = esdbForTest(t, dataDir)
	}
	if configure != nil {
		configure(&cfg)
	}
	return app.Open(context.Background(), cfg)
}

// openHarnessWith is openHarness with configure applied to the
// configuration.
func openHarnessWith(t testing.TB, dataDir string, configure func(*app.Config)) *harness {
	t.Helper()
	a, err := openApp(t, dataDir, configure)
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	h := &harness{t: t, app: a, srv: httptest.NewServer(a.Handler()), dataDir: dataDir}
	t.Cleanup(h.close)
	h.platform = h.mint(identity.Claims{Kind: identity.KindPlatform}, "platform-ops")
	return h
}

func (h *harness) close() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
	if h.app != nil {
		_ = h.app.Close()
		h.app = nil
	}
}

func (h *harness) mint(c identity.Claims, sub string) string {
	h.t.Helper()
	c.Subject = sub
	tok, err := h.app.Issuer.Mint(c, time.Hour)
	if err != nil {
		h.t.Fatalf("mint: %v", err)
	}
	return tok
}

// userToken returns a token for sub in org; membership decides its roles.
func (h *harness) userToken(org, sub string) string {
	return h.mint(identity.Claims{Kind: identity.KindUser, Org: org}, sub)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// do sends a request; body is JSON-encoded unless it is a []byte or nil.
func (h *harness) do(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatalf("request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// must sends a request and fails the test unless it answers want.
func (h *harness) must(want int, method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	r := h.do(method, path, token, body, headers...)
	if r.status != want {
		h.t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// createOrg creates an organization owned by owner and returns its id and
// the owner's token.
func (h *harness) createOrg(name, owner string) (string, string) {
	h.t.Helper()
	var org struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/orgs", h.platform, map[string]string{"name": name, "owner_sub": owner}).json(h.t, &org)
	return org.ID, h.userToken(org.ID, owner)
}

// addMember adds sub with roles and returns sub's token.
func (h *harness) addMember(org, ownerToken, sub string, roles ...string) string {
	h.t.Helper()
	h.must(http.StatusCreated, http.MethodPost, "/v1/members", ownerToken, map[string]any{"sub": sub, "roles": roles})
	return h.userToken(org, sub)
}

// createBot creates a bot and returns its id.
func (h *harness) createBot(token, name string) string {
	h.t.Helper()
	var bot struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/bots", token, map[string]any{
		"name": name, "instructions": "Answer politely about " + name, "grants": map[string]any{"tools": []string{"search"}},
	}).json(h.t, &bot)
	return bot.ID
}
