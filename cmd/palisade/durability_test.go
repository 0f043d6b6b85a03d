package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
)

// childEnv makes the test binary act as the palisade binary, so the
// durability test can run and kill a real server process without building.
const childEnv = "PALISADE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		if err := run(ctx, argv, os.Stdout, io.Discard); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type serverProcess struct {
	cmd  *exec.Cmd
	base string
	// metrics is the base URL of /metrics when the server was started
	// with a metrics address of its own (serverOptions.metrics), else "".
	metrics string
}

// serverOptions are what a test may add to a server process beyond its
// flags.
type serverOptions struct {
	// env is added to the test's environment.
	env []string
	// metrics serves /metrics on an address of its own (--metrics-addr).
	metrics bool
	// name prefixes the lines the server writes on standard error, to
	// tell several servers of one test apart.
	name string
}

// readModelArgs are the serve flags for the read models under test: memory,
// or PostgreSQL in a schema of this test's own when
// PALISADE_TEST_READ_MODELS=postgres.
func readModelArgs(t *testing.T) []string {
	t.Helper()
	if os.Getenv("PALISADE_TEST_READ_MODELS") != "postgres" {
		return nil
	}
	owner := os.Getenv("PALISADE_TEST_POSTGRES_URL")
	if owner == "" {
		t.Fatal("PALISADE_TEST_READ_MODELS=postgres needs PALISADE_TEST_POSTGRES_URL (make test sets it)")
	}
	u, err := url.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("palisade_app", "palisade_app")
	schema := fmt.Sprintf("crash_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), owner)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	return []string{"--postgres-owner-url", owner, "--postgres-url", u.String(), "--postgres-schema", schema}
}

func startServer(t *testing.T, dataDir string, extra ...string) *serverProcess {
	t.Helper()
	p := launchServer(t, dataDir, serverOptions{}, extra...)
	p.waitReady(t)
	return p
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// launchServer starts `palisade serve` on dataDir as a child process (the
// test binary, see TestMain) and returns without waiting for it to be
// ready, so that a test can start several at once; waitReady waits. The
// process is SIGKILLed when the test ends.
func launchServer(t *testing.T, dataDir string, opts serverOptions, extra ...string) *serverProcess {
	t.Helper()
	addr := freeAddr(t)
	args := []string{"serve", "--data-dir", dataDir, "--addr", addr, "--log-level", "error"}
	p := &serverProcess{base: "http://" + addr}
	if opts.metrics {
		metricsAddr := freeAddr(t)
		args = append(args, "--metrics-addr", metricsAddr)
		p.metrics = "http://" + metricsAddr
	}
	argv, _ := json.Marshal(append(args, extra...))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), opts.env...), childEnv+"="+string(argv))
	cmd.Stderr = os.Stderr
	if opts.name != "" {
		cmd.Stderr = &prefixWriter{prefix: []byte(opts.name + ": "), w: os.Stderr}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	t.Cleanup(func() { p.kill() })
	return p
}

// waitReady waits until the server answers /readyz, or fails the test.
func (p *serverProcess) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server %s did not become ready", p.base)
}

// prefixWriter writes each write to w with prefix in front; a server's
// logger writes one line per write.
type prefixWriter struct {
	prefix []byte
	w      io.Writer
	mu     sync.Mutex
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if _, err := pw.w.Write(append(append([]byte(nil), pw.prefix...), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *serverProcess) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_, _ = p.cmd.Process.Wait()
	}
}

// TestAcknowledgedCommandsSurviveSIGKILL kills the server with SIGKILL
// while clients are creating bots, restarts it on the same data directory
// and checks that every command that was acknowledged (201) is there,
// both in the read model and in the log.
func TestAcknowledgedCommandsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dataDir := t.TempDir()
	models := readModelArgs(t)
	srv := startServer(t, dataDir, models...)
	issuer, err := identity.LoadOrCreateIssuer(dataDir, app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(c identity.Claims) string {
		tok, err := issuer.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	platform := mint(identity.Claims{RegisteredClaims: subjectClaims("ops"), Kind: identity.KindPlatform})
	client := &http.Client{Timeout: 10 * time.Second}
	status, body, err := post(client, srv.base+"/v1/orgs", platform, map[string]string{"name": "Durable", "owner_sub": "alice"})
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create org: %d %s %v", status, body, err)
	}
	var org struct{ ID string }
	_ = json.Unmarshal(body, &org)
	owner := mint(identity.Claims{RegisteredClaims: subjectClaims("alice"), Kind: identity.KindUser, Org: org.ID})

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, body, err := post(client, srv.base+"/v1/bots", owner, map[string]string{"name": fmt.Sprintf("bot %d-%d", w, i)})
				if err != nil {
					return // the server is gone
				}
				if status == http.StatusCreated {
					var bot struct{ ID string }
					if json.Unmarshal(body, &bot) == nil {
						mu.Lock()
						acked = append(acked, bot.ID)
						mu.Unlock()
					}
				}
			}
		}(w)
	}
	// Let acknowledgements pile up, then kill mid-stream.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill()
	close(stop)
	wg.Wait()
	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	t.Logf("%d commands acknowledged before SIGKILL", len(want))

	srv = startServer(t, dataDir, models...)
	present := map[string]bool{}
	after := ""
	for {
		req, _ := http.NewRequest(http.MethodGet, srv.base+"/v1/bots?limit=500&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items     []struct{ ID string }
			NextAfter string `json:"next_after"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("list bots after restart: %d %v", resp.StatusCode, err)
		}
		for _, b := range page.Items {
			present[b.ID] = true
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	missing := 0
	for _, id := range want {
		if !present[id] {
			missing++
			t.Errorf("acknowledged bot %s lost after SIGKILL", id)
		}
	}
	if missing == 0 && len(present) < len(want) {
		t.Fatalf("%d bots present, %d acknowledged", len(present), len(want))
	}

	// The log agrees: audit replay (offline) finds a BotCreated per bot.
	srv.kill()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"audit", "replay", "--data-dir", dataDir, "--org", org.ID}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	created := map[string]bool{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var env struct {
			Type string
			Data struct{ ID string }
		}
		if err := dec.Decode(&env); err != nil {
			t.Fatal(err)
		}
		if env.Type == "BotCreated" {
			created[env.Data.ID] = true
		}
	}
	for _, id := range want {
		if !created[id] {
			t.Errorf("acknowledged bot %s has no BotCreated in the log", id)
		}
	}
	// Read model and log agree exactly: no event applied twice or skipped,
	// even though the kill may have landed between a projection's writes.
	if len(present) != len(created) {
		t.Errorf("read model holds %d bots, the log created %d", len(present), len(created))
	}
	for id := range created {
		if !present[id] {
			t.Errorf("bot %s is in the log but not in the read model", id)
		}
	}
}
