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
	"path/filepath"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/identity"
)

// benchRestart measures how long a restart of the embedded default takes
// to serve its first request with events in the log: it writes the log
// (orgs organizations, bots of 100 events each: created, then updated 99
// times) straight into the store, then starts three times: with no
// snapshot (every read model replayed from the log, as every start did
// before snapshots), then twice from the snapshot the previous stop wrote. The time runs from
// the call to app.Open to the answer of GET /v1/org over loopback.
func benchRestart(ctx context.Context, events, orgs int, dataDir string, stdout io.Writer) error {
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "palisade-bench-restart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dataDir = dir
	}
	cfg := app.Config{DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return err
	}
	owner, org, err := benchOrgs(ctx, a, orgs)
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The events go straight into the log (content sealed as always), with
	// no server consuming them live.
	store, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := writeBotEvents(ctx, store, org, events); err != nil {
		store.Close()
		return err
	}
	head, err := store.Head(ctx)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "log: %d events (%d organizations, bots of 100 events) written in %s\n", head, len(org), time.Since(start).Round(time.Millisecond))
	snapshot := filepath.Join(dataDir, "readmodels.snapshot")
	fmt.Fprintf(stdout, "%-34s %14s %16s %14s %14s\n", "start", "restored at", "first request", "stop", "snapshot")
	for _, c := range []struct {
		name   string
		remove bool
	}{{"replaying the log (no snapshot)", true}, {"from the snapshot", false}, {"from the snapshot again", false}} {
		if c.remove {
			if err := os.Remove(snapshot); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		first, from, stop, err := timeFirstRequest(ctx, cfg, owner)
		if err != nil {
			return err
		}
		size := "none"
		if fi, err := os.Stat(snapshot); err == nil {
			size = fmt.Sprintf("%d MB", fi.Size()>>20)
		}
		fmt.Fprintf(stdout, "%-34s %14d %16s %14s %14s\n", c.name, from, first.Round(time.Millisecond), stop.Round(time.Millisecond), size)
	}
	return nil
}

// benchOrgs creates n organizations and returns the first one's owner
// token and every organization's id.
func benchOrgs(ctx context.Context, a *app.App, n int) (string, []string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	platform, err := a.Issuer.Mint(identity.Claims{RegisteredClaims: subjectClaims("bench-ops"), Kind: identity.KindPlatform}, time.Hour)
	if err != nil {
		return "", nil, err
	}
	var ids []string
	for i := range n {
		status, body, err := post(http.DefaultClient, "http://"+ln.Addr().String()+"/v1/orgs", platform,
			map[string]string{"name": fmt.Sprintf("Bench %d", i), "owner_sub": "bench-owner"})
		if err != nil || status != http.StatusCreated {
			return "", nil, fmt.Errorf("bench: create org: %d %s %v", status, body, err)
		}
		var org struct{ ID string }
		if err := json.Unmarshal(body, &org); err != nil {
			return "", nil, err
		}
		ids = append(ids, org.ID)
	}
	owner, err := a.Issuer.Mint(identity.Claims{RegisteredClaims: subjectClaims("bench-owner"), Kind: identity.KindUser, Org: ids[0]}, 24*time.Hour)
	return owner, ids, err
}

// writeBotEvents appends about n bot events straight to the store, round
// robin over orgs: each bot's stream is one append of BotCreated and 99
// BotUpdated.
func writeBotEvents(ctx context.Context, store eventstore.Store, orgs []string, n int) error {
	const perBot = 100
	instructions := "Answer briefly, cite the handbook, and never promise what the policy does not say."
	for i := 0; i < n/perBot; i++ {
		org := orgs[i%len(orgs)]
		meta := eventstore.Metadata{
			OrgID: org, SchemaVersion: 1, OccurredAt: eventstore.Now(),
			CorrelationID: eventstore.NewEventID().String(), CausationID: "bench",
			Actor: eventstore.Actor{Subject: "bench-owner", Kind: "user", Roles: []string{"owner"}},
		}
		batch := make([]eventstore.NewEvent, perBot)
		created, _ := json.Marshal(bots.BotCreated{ID: fmt.Sprintf("bot-%d", i), Name: fmt.Sprintf("bot %d", i), Instructions: instructions})
		batch[0] = eventstore.NewEvent{Type: "BotCreated", Metadata: meta, Data: created}
		for j := 1; j < perBot; j++ {
			text := fmt.Sprintf("%s (revision %d)", instructions, j)
			updated, _ := json.Marshal(bots.BotUpdated{Instructions: &text})
			batch[j] = eventstore.NewEvent{Type: "BotUpdated", Metadata: meta, Data: updated}
		}
		stream := eventstore.MustStreamName("bot", org, fmt.Sprintf("bot-%d", i))
		if _, err := store.Append(ctx, stream, eventstore.NoStream(), batch); err != nil {
			return fmt.Errorf("bench: append: %w", err)
		}
	}
	return nil
}

// timeFirstRequest starts the server on cfg and returns how long it took
// until GET /v1/org answered 200, the position it restored from, and how
// long the stop took (it writes the snapshot).
func timeFirstRequest(ctx context.Context, cfg app.Config, owner string) (first time.Duration, from uint64, stop time.Duration, err error) {
	start := time.Now()
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return 0, 0, 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		return 0, 0, 0, err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/v1/org", nil)
	req.Header.Set("Authorization", "Bearer "+owner)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("bench: GET /v1/org: %d", resp.StatusCode)
		}
	}
	first = time.Since(start)
	srv.Close()
	stopStart := time.Now()
	if cerr := a.Close(); err == nil {
		err = cerr
	}
	return first, a.StartedFrom(), time.Since(stopStart), err
}
