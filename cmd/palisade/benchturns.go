package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
)

// timedModel is the built-in model, timing every completion so that the
// platform's own share of a turn can be told from the model's.
type timedModel struct {
	llm.Builtin
	nanos atomic.Int64
}

func (m *timedModel) Complete(ctx context.Context, req llm.Request, onDelta llm.DeltaFunc) (llm.Response, error) {
	start := time.Now()
	resp, err := m.Builtin.Complete(ctx, req, onDelta)
	m.nanos.Add(int64(time.Since(start)))
	return resp, err
}

// turnBenchConfig is what benchTurns measures against.
type turnBenchConfig struct {
	levels   []int
	duration time.Duration
	dataDir  string
	// PostgreSQL read models when pgURL is set.
	pgURL, pgOwnerURL, pgSchema string
}

// benchTurns measures bot turns: each client has its own conversation with
// a bot over a knowledge base of 50 documents and asks questions the
// built-in model answers after one search_knowledge call. It reports
// turns/s, latency percentiles, the platform's share of a turn (the turn
// minus the model's own time) and the time to the first byte of a streamed
// answer.
func benchTurns(ctx context.Context, cfg turnBenchConfig, stdout io.Writer) error {
	model := &timedModel{}
	a, err := app.Open(ctx, app.Config{
		DataDir: cfg.dataDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Model: model,
		PostgresURL: cfg.pgURL, PostgresOwnerURL: cfg.pgOwnerURL, PostgresSchema: cfg.pgSchema,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}

	mint := func(c identity.Claims, sub string) string {
		c.Subject = sub
		tok, err := a.Issuer.Mint(c, time.Hour)
		if err != nil {
			panic(err)
		}
		return tok
	}
	call := func(token, method, path string, body any, want int, out any) error {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	platform := mint(identity.Claims{Kind: identity.KindPlatform}, "bench-ops")
	var org struct{ ID string }
	if err := call(platform, http.MethodPost, "/v1/orgs", map[string]string{"name": "Bench", "owner_sub": "bench-owner"}, http.StatusCreated, &org); err != nil {
		return err
	}
	owner := mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, "bench-owner")
	// No turn quota in the way of the measurement.
	if err := call(platform, http.MethodPut, "/v1/orgs/"+org.ID+"/quotas", map[string]any{"concurrent_turns": 0, "model_tokens_per_hour": 0, "requests_per_second": 0}, http.StatusOK, nil); err != nil {
		return err
	}
	var kb struct{ ID string }
	if err := call(owner, http.MethodPost, "/v1/knowledge-bases", map[string]any{"name": "Handbook"}, http.StatusCreated, &kb); err != nil {
		return err
	}
	for i := range 50 {
		content := fmt.Sprintf("Policy %d: employees in team %d get %d days of paid vacation and may carry %d days over.", i, i, 20+i%10, i%5)
		if err := call(owner, http.MethodPost, "/v1/knowledge-bases/"+kb.ID+"/documents", map[string]any{"title": fmt.Sprintf("Policy %d", i), "content": content}, http.StatusCreated, nil); err != nil {
			return err
		}
	}
	var bot struct{ ID string }
	if err := call(owner, http.MethodPost, "/v1/bots", map[string]any{"name": "HR", "grants": map[string]any{
		"knowledge_bases": []string{kb.ID}, "tools": []string{"search_knowledge"}, "permissions": []string{"kb:read"},
	}}, http.StatusCreated, &bot); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let ingestion settle

	fmt.Fprintf(stdout, "bot turns: built-in model, one search_knowledge call each, %s per level, read models: %s\n", cfg.duration, readModelsName(cfg))
	fmt.Fprintf(stdout, "%8s %8s %10s %10s %10s %16s\n", "clients", "turns", "turns/s", "p50", "p99", "platform p50")
	for _, n := range cfg.levels {
		convs := make([]string, n)
		for i := range convs {
			var c struct{ ID string }
			if err := call(owner, http.MethodPost, "/v1/conversations", map[string]any{"bot_id": bot.ID}, http.StatusCreated, &c); err != nil {
				return err
			}
			convs[i] = c.ID
		}
		var mu sync.Mutex
		var latencies, platform []time.Duration
		errors := 0
		deadline := time.Now().Add(cfg.duration)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func(conv string, i int) {
				defer wg.Done()
				q := 0
				for time.Now().Before(deadline) && ctx.Err() == nil {
					q++
					var answer struct {
						Message struct{ Content string }
					}
					before := model.nanos.Load()
					t0 := time.Now()
					err := call(owner, http.MethodPost, "/v1/conversations/"+conv+"/messages",
						map[string]any{"content": fmt.Sprintf("How many vacation days does team %d get?", (i+q)%50)}, http.StatusOK, &answer)
					took := time.Since(t0)
					mu.Lock()
					if err != nil {
						errors++
					} else {
						latencies = append(latencies, took)
						// With one client the model time is this turn's own.
						if n == 1 {
							platform = append(platform, took-time.Duration(model.nanos.Load()-before))
						}
					}
					mu.Unlock()
				}
			}(convs[i], i)
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(latencies)
		slices.Sort(platform)
		pct := func(d []time.Duration, p int) string {
			if len(d) == 0 {
				return "-"
			}
			return d[len(d)*p/100].Round(time.Microsecond).String()
		}
		fmt.Fprintf(stdout, "%8d %8d %10.0f %10s %10s %16s   errors %d\n", n, len(latencies), float64(len(latencies))/elapsed.Seconds(),
			pct(latencies, 50), pct(latencies, 99), pct(platform, 50), errors)
	}

	// Time to the first byte of a streamed answer, one client.
	var c struct{ ID string }
	if err := call(owner, http.MethodPost, "/v1/conversations", map[string]any{"bot_id": bot.ID}, http.StatusCreated, &c); err != nil {
		return err
	}
	var firsts []time.Duration
	for i := 0; i < 200 && ctx.Err() == nil; i++ {
		data, _ := json.Marshal(map[string]string{"content": fmt.Sprintf("How many vacation days does team %d get?", i%50)})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/conversations/"+c.ID+"/messages", bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+owner)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		rd := bufio.NewReader(resp.Body)
		if _, err := rd.ReadByte(); err != nil {
			resp.Body.Close()
			return fmt.Errorf("stream: %w", err)
		}
		firsts = append(firsts, time.Since(t0))
		_, _ = io.Copy(io.Discard, rd)
		resp.Body.Close()
	}
	slices.Sort(firsts)
	if len(firsts) > 0 {
		fmt.Fprintf(stdout, "time to the first SSE byte (%d streamed turns): p50 %s, p99 %s\n", len(firsts),
			firsts[len(firsts)/2].Round(time.Microsecond), firsts[len(firsts)*99/100].Round(time.Microsecond))
	}
	return nil
}

func readModelsName(cfg turnBenchConfig) string {
	if cfg.pgURL != "" {
		return "PostgreSQL"
	}
	return "memory"
}

func parseLevels(list string) ([]int, error) {
	var levels []int
	for _, s := range strings.Split(list, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d", &n); err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("bench: bad client count %q", s)
		}
		levels = append(levels, n)
	}
	return levels, nil
}
