package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/identity"
)

// benchFlood measures a flood of forbidden requests (issue 9): a viewer of
// one organization sends n POST /v1/bots from floodClients connections
// while the owner of another organization creates bots from victimClients;
// it reports the attacker's security-stream growth in events and bytes and
// the victim's command latency during the flood against an idle run of the
// same length.
func benchFlood(ctx context.Context, n, floodClients, victimClients int, rate float64, d time.Duration, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "palisade-bench-flood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a, err := app.Open(ctx, app.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			a.Close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	mint := func(c identity.Claims, sub string) (string, error) {
		c.RegisteredClaims = subjectClaims(sub)
		return a.Issuer.Mint(c, time.Hour)
	}
	platform, err := mint(identity.Claims{Kind: identity.KindPlatform}, "bench-ops")
	if err != nil {
		return err
	}
	newOrg := func(name, owner string) (string, string, error) {
		status, body, err := post(client, base+"/v1/orgs", platform, map[string]string{"name": name, "owner_sub": owner})
		if err != nil || status != http.StatusCreated {
			return "", "", fmt.Errorf("bench: create org: %d %s %v", status, body, err)
		}
		var org struct{ ID string }
		if err := json.Unmarshal(body, &org); err != nil {
			return "", "", err
		}
		tok, err := mint(identity.Claims{Kind: identity.KindUser, Org: org.ID}, owner)
		return org.ID, tok, err
	}
	attackOrg, attackOwner, err := newOrg("Attacker", "mallory")
	if err != nil {
		return err
	}
	_, victimOwner, err := newOrg("Victim", "vic")
	if err != nil {
		return err
	}
	if status, body, err := post(client, base+"/v1/members", attackOwner, map[string]any{"sub": "viewer", "roles": []string{"viewer"}}); err != nil || status != http.StatusCreated {
		return fmt.Errorf("bench: add viewer: %d %s %v", status, body, err)
	}
	if rate > 0 {
		req, _ := http.NewRequest(http.MethodPut, base+"/v1/orgs/"+attackOrg+"/quotas", strings.NewReader(fmt.Sprintf(`{"requests_per_second":%g,"request_burst":%d}`, rate, max(1, int(2*rate)))))
		req.Header.Set("Authorization", "Bearer "+platform)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bench: set quotas: %d", resp.StatusCode)
		}
	}
	viewer, err := mint(identity.Claims{Kind: identity.KindUser, Org: attackOrg}, "viewer")
	if err != nil {
		return err
	}

	idle := runLoad(ctx, client, base+"/v1/bots", victimOwner, victimClients, d, false)
	head0, err := a.Store.Head(ctx)
	if err != nil {
		return err
	}
	var sent, forbidden, limited atomic.Int64
	var wg sync.WaitGroup
	floodStart := time.Now()
	for c := 0; c < floodClients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(n) {
				status, _, err := post(client, base+"/v1/bots", viewer, map[string]string{"name": "x", "instructions": "y"})
				switch {
				case err != nil:
				case status == http.StatusForbidden:
					forbidden.Add(1)
				case status == http.StatusTooManyRequests:
					limited.Add(1)
				}
			}
		}()
	}
	during := runLoad(ctx, client, base+"/v1/bots", victimOwner, victimClients, d, false)
	wg.Wait()
	floodTook := time.Since(floodStart)
	// Closing flushes the coalesced summaries; the log is read afterwards.
	srv.Close()
	if err := a.Close(); err != nil {
		return err
	}
	closed = true
	events, bytes, err := securityGrowth(ctx, dir, attackOrg, head0)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flood: %d forbidden POST /v1/bots from %d clients in %s (%d answered 403, %d answered 429)\n", n, floodClients, floodTook.Round(time.Millisecond), forbidden.Load(), limited.Load())
	fmt.Fprintf(stdout, "attacker's security stream grew by %d events, %d bytes (data + metadata)\n", events, bytes)
	fmt.Fprintf(stdout, "victim org, POST /v1/bots from %d clients, %s each:\n", victimClients, d)
	fmt.Fprintf(stdout, "%8s %10s %10s %10s %10s\n", "", "commands/s", "p50", "p99", "max")
	fmt.Fprintf(stdout, "%8s %10.0f %10s %10s %10s\n", "idle", idle.rate, idle.p50, idle.p99, idle.max)
	fmt.Fprintf(stdout, "%8s %10.0f %10s %10s %10s\n", "flood", during.rate, during.p50, during.p99, during.max)
	if idle.p99 > 0 {
		fmt.Fprintf(stdout, "p99 during the flood / idle p99 = %.2f\n", float64(during.p99)/float64(idle.p99))
	}
	return nil
}

// securityGrowth counts the events and bytes appended to org's security
// streams after position from, reading the closed log in dir.
func securityGrowth(ctx context.Context, dir, org string, from uint64) (int, int, error) {
	a, err := app.Open(ctx, app.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	var count, size int
	after := from
	for {
		envs, err := a.Store.ReadAll(ctx, after, eventstore.Filter{OrgID: org, Categories: []string{events.SecurityCategory}}, 1000)
		if err != nil {
			return 0, 0, err
		}
		for _, env := range envs {
			md, _ := json.Marshal(env.Metadata)
			count++
			size += len(env.Data) + len(md)
			after = env.Position
		}
		if len(envs) < 1000 {
			return count, size, nil
		}
	}
}
