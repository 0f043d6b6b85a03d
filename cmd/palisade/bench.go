package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
)

// bench measures the HTTP command path (token verification, authorization,
// durable append, wait for the read models) by creating bots against a
// fresh server on loopback, then the rebuild of read models from the log
// it wrote. The load generator runs in the same process, so on a 2-core
// machine client and server share the cores.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 5*time.Second, "how long each concurrency level runs")
	clientList := fs.String("clients", "1,16,64", "comma-separated concurrent client counts")
	dataDir := fs.String("data-dir", "", "data directory (default: a fresh temporary one, removed afterwards)")
	async := fs.Bool("async", false, "send Prefer: respond-async (do not wait for the read models)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	blockProfile := fs.String("blockprofile", "", "write a goroutine blocking profile to this file")
	allocProfile := fs.String("allocprofile", "", "write a profile of the allocations of the whole run to this file")
	flood := fs.Int("flood", 0, "instead: send this many forbidden requests from one org and measure log growth and another org's latency")
	floodClients := fs.Int("flood-clients", 16, "with --flood: concurrent clients sending the forbidden requests")
	victimClients := fs.Int("victim-clients", 4, "with --flood: concurrent clients of the other org")
	floodRate := fs.Float64("flood-rate", 0, "with --flood: the flooding org's requests_per_second quota (0: unlimited)")
	traced := fs.Bool("tracing", false, "trace every request (sampled, batched, exported to a counter that discards them) to measure what tracing costs")
	traceRatio := fs.Float64("tracing-ratio", 1, "with --tracing: the share of traces sampled (0 < ratio ≤ 1), as OTEL_TRACES_SAMPLER=parentbased_traceidratio would")
	turns := fs.Bool("turns", false, "instead: measure bot turns (built-in model, one search each) and the time to the first SSE byte")
	pgURL := fs.String("postgres-url", "", "with --turns: keep read models in PostgreSQL as this application role")
	pgOwnerURL := fs.String("postgres-owner-url", "", "with --turns: run the read-model migrations as this owner role")
	pgSchema := fs.String("postgres-schema", "", "with --turns: schema of the read models")
	restart := fs.Int("restart", 0, "instead: write this many bot events, then time the first request after a restart from the read-model snapshot and without it")
	restartOrgs := fs.Int("restart-orgs", 10, "with --restart: organizations the events are spread over")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !(*traceRatio > 0 && *traceRatio <= 1) {
		return fmt.Errorf("bench: --tracing-ratio %v: want a share above 0 and at most 1", *traceRatio)
	}
	if *flood > 0 {
		return benchFlood(ctx, *flood, *floodClients, *victimClients, *floodRate, *duration, stdout)
	}
	if *blockProfile != "" {
		runtime.SetBlockProfileRate(10_000)
		defer func() {
			if f, err := os.Create(*blockProfile); err == nil {
				_ = pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *allocProfile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if f, err := os.Create(*allocProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *restart > 0 {
		return benchRestart(ctx, *restart, max(1, *restartOrgs), *dataDir, stdout)
	}
	if *turns {
		levels, err := parseLevels(*clientList)
		if err != nil {
			return err
		}
		dir := *dataDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "palisade-bench-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		return benchTurns(ctx, turnBenchConfig{levels: levels, duration: *duration, dataDir: dir,
			pgURL: *pgURL, pgOwnerURL: *pgOwnerURL, pgSchema: *pgSchema}, stdout)
	}
	var levels []int
	for _, s := range strings.Split(*clientList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf("bench: bad client count %q", s)
		}
		levels = append(levels, n)
	}
	if *dataDir == "" {
		dir, err := os.MkdirTemp("", "palisade-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*dataDir = dir
	}

	cfg := app.Config{DataDir: *dataDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var spans *countingExporter
	if *traced {
		spans = &countingExporter{}
		sampler := sdktrace.AlwaysSample()
		if *traceRatio < 1 {
			sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*traceRatio))
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(spans))
		defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }()
		cfg.TracerProvider = tp
	}
	a, err := app.Open(ctx, cfg)
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

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}
	platform, err := a.Issuer.Mint(identity.Claims{RegisteredClaims: subjectClaims("bench-ops"), Kind: identity.KindPlatform}, time.Hour)
	if err != nil {
		return err
	}
	status, body, err := post(client, base+"/v1/orgs", platform, map[string]string{"name": "Bench", "owner_sub": "bench-owner"})
	if err != nil || status != http.StatusCreated {
		return fmt.Errorf("bench: create org: %d %s %v", status, body, err)
	}
	var org struct{ ID string }
	if err := json.Unmarshal(body, &org); err != nil {
		return err
	}
	owner, err := a.Issuer.Mint(identity.Claims{RegisteredClaims: subjectClaims("bench-owner"), Kind: identity.KindUser, Org: org.ID}, time.Hour)
	if err != nil {
		return err
	}

	tracingNote := "tracing off"
	if *traced {
		tracingNote = "tracing on: every span sampled and exported"
		if *traceRatio < 1 {
			tracingNote = fmt.Sprintf("tracing on: %g of the traces sampled and exported", *traceRatio)
		}
	}
	fmt.Fprintf(stdout, "command path: POST /v1/bots (verify token, authorize, durable append, wait for read models), %s per level, %s\n", *duration, tracingNote)
	fmt.Fprintf(stdout, "%8s %10s %12s %10s %10s %10s %8s %12s %15s\n", "clients", "commands", "commands/s", "p50", "p99", "max", "errors", "cpu/command", "allocs/command")
	for _, n := range levels {
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		cpu0, allocs0 := processCPU(), mem.Mallocs
		r := runLoad(ctx, client, base+"/v1/bots", owner, n, *duration, *async)
		runtime.ReadMemStats(&mem)
		cpu, allocs := processCPU()-cpu0, mem.Mallocs-allocs0
		if r.count > 0 {
			cpu /= time.Duration(r.count)
			allocs /= uint64(r.count)
		}
		fmt.Fprintf(stdout, "%8d %10d %12.0f %10s %10s %10s %8d %12s %15d\n", n, r.count, r.rate, r.p50, r.p99, r.max, r.errors, cpu.Round(time.Microsecond), allocs)
	}

	if spans != nil {
		fmt.Fprintf(stdout, "spans exported so far: %d\n", spans.count.Load())
	}
	events, took, err := a.MeasureRebuild(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuild of all read models from the log: %d events in %s = %.0f events/s\n",
		events, took.Round(time.Millisecond), float64(events)/took.Seconds())
	return nil
}

// countingExporter is a span exporter that counts what it is given and
// keeps none of it: the bench measures producing and batching spans, not a
// collector.
type countingExporter struct{ count atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.count.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

type loadResult struct {
	count, errors int
	rate          float64
	p50, p99, max time.Duration
}

func runLoad(ctx context.Context, client *http.Client, url, token string, clients int, d time.Duration, async bool) loadResult {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			bad := 0
			body := []byte(`{"name":"bench bot ` + strconv.Itoa(c) + `","instructions":"measure me"}`)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				if async {
					req.Header.Set("Prefer", "respond-async")
				}
				resp, err := client.Do(req)
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					bad++
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errors += bad
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	r := loadResult{count: len(latencies), errors: errors, rate: float64(len(latencies)) / elapsed.Seconds()}
	if n := len(latencies); n > 0 {
		r.p50 = latencies[n/2].Round(time.Microsecond)
		r.p99 = latencies[n*99/100].Round(time.Microsecond)
		r.max = latencies[n-1].Round(time.Microsecond)
	}
	return r
}

// post sends a JSON command and returns the status and body.
func post(client *http.Client, url, token string, body any) (int, []byte, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// processCPU is the CPU time (user and system) the process has used so
// far. Per command, it and the allocations per command (client included)
// are the bench's figures least moved by other work on the machine:
// commands/s on shared cores measures the neighbours too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func subjectClaims(sub string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: sub} }
