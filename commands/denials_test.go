package commands_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

// TestDenialFloodIsCoalesced sends thousands of forbidden commands from a
// few principals at once and checks the security stream: a bounded number
// of events, whose AccessDenied events plus the counts of the
// AccessDenialsCoalesced summaries add up exactly to the denials sent, per
// principal and permission. The summaries are written by the window's
// timer in one case and only by Close in the other, so no count is lost
// at shutdown.
func TestDenialFloodIsCoalesced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		window time.Duration
		// pause before Close, so that the timer runs in one case
		pause time.Duration
	}{
		{name: "summaries written by the window's timer", window: 100 * time.Millisecond, pause: 400 * time.Millisecond},
		{name: "summaries written at Close", window: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, p, cmds, org := denialFixture(t, tt.window)
			viewers := []access.Principal{
				access.NewUser(org.ID, "victor", []access.Role{access.RoleViewer}, nil),
				access.NewUser(org.ID, "vera", []access.Role{access.RoleViewer}, nil),
			}
			const perPrincipal = 1500
			started := time.Now()
			var wg sync.WaitGroup
			for _, v := range viewers {
				for w := 0; w < 8; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; i < perPrincipal; i += 8 {
							var err error
							if i%2 == 0 {
								_, err = cmds.Bots.CreateBot(ctx, v, "x", "y", bots.Grants{})
							} else {
								_, err = cmds.Knowledge.ArchiveKnowledgeBase(ctx, v, "kb")
							}
							if err == nil {
								t.Error("a viewer's command was accepted")
							}
							if tt.pause > 0 && i%100 == 0 {
								time.Sleep(tt.pause / 10)
							}
						}
					}()
				}
			}
			wg.Wait()
			time.Sleep(tt.pause)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(started)

			envs, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: org.ID, Categories: []string{events.SecurityCategory}}, 100_000)
			if err != nil {
				t.Fatal(err)
			}
			type key struct{ subject, permission string }
			counted := map[key]uint64{}
			full := map[key]int{}
			summaries := 0
			for _, env := range envs {
				switch env.Type {
				case "AccessDenied":
					var e events.AccessDenied
					if err := json.Unmarshal(env.Data, &e); err != nil {
						t.Fatal(err)
					}
					counted[key{env.Actor.Subject, e.Permission}]++
					full[key{env.Actor.Subject, e.Permission}]++
				case "AccessDenialsCoalesced":
					var e events.AccessDenialsCoalesced
					if err := json.Unmarshal(env.Data, &e); err != nil {
						t.Fatal(err)
					}
					if e.Count == 0 || e.FirstAt.IsZero() || e.LastAt.Before(e.FirstAt) || len(e.Resources) == 0 {
						t.Errorf("summary without what it counts: %+v", e)
					}
					counted[key{env.Actor.Subject, e.Permission}] += e.Count
					summaries++
				}
			}
			for _, v := range viewers {
				for _, perm := range []access.Permission{access.BotsManage, access.KBManage} {
					if got := counted[key{v.Subject, perm.String()}]; got != perPrincipal/2 {
						t.Errorf("%s denied %s: the record counts %d, want %d", v.Subject, perm, got, perPrincipal/2)
					}
				}
			}
			if summaries == 0 {
				t.Error("no AccessDenialsCoalesced summary was written")
			}
			// Four (principal, permission) pairs, each at most two events per
			// window (the first denial in full and a summary), over the
			// windows the run spanned: bounded by time, whatever the number
			// of denials.
			windows := int(elapsed/tt.window) + 2
			for k, n := range full {
				if n > windows {
					t.Errorf("%s denied %s: %d denials in full over at most %d windows, want one per window", k.subject, k.permission, n, windows)
				}
			}
			if max := 4 * 2 * windows; len(envs) > max {
				t.Errorf("%d denials became %d events, want at most %d", 2*perPrincipal, len(envs), max)
			}
			t.Logf("%d denials recorded as %d events (%d summaries)", 2*perPrincipal, len(envs), summaries)
		})
	}
}

// denialFixture opens an embedded log, a pipeline coalescing denials
// over window, and an organization owned by alice in it.
func denialFixture(t *testing.T, window time.Duration) (*embedded.Store, *commands.Pipeline, commands.Commands, commands.OrgCreated) {
	t.Helper()
	ctx := context.Background()
	store := openStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := commands.NewPipeline(store, events.NewRegistry(), logger, commands.WithDenialWindow(window))
	cmds := commands.New(p, nil, commands.Embedding{Model: "m", Dimensions: 3})
	org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	return store, p, cmds, org
}

// TestABotsDenialsAreKeptApartPerInvoker checks that a bot refused while
// acting for several users has each user's first refusal recorded in
// full: denials are coalesced per principal and on-behalf-of chain.
func TestABotsDenialsAreKeptApartPerInvoker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, p, cmds, org := denialFixture(t, time.Hour)
	t.Cleanup(func() { _ = p.Close() })
	invokers := []string{"victor", "vera", "vito", "viv"}
	for _, name := range invokers {
		bot := access.Delegate(access.NewUser(org.ID, name, []access.Role{access.RoleViewer}, nil), access.KindBot, "bot-1", access.NewPermissionSet())
		if _, err := cmds.Bots.CreateBot(ctx, bot, "x", "y", bots.Grants{}); err == nil {
			t.Fatalf("the bot acting for %s created a bot", name)
		}
	}
	envs, err := store.ReadAll(ctx, 0, eventstore.Filter{OrgID: org.ID, Categories: []string{events.SecurityCategory}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range invokers {
		found := false
		for _, env := range envs {
			if env.Type == "AccessDenied" && len(env.Actor.OnBehalfOf) > 0 && env.Actor.OnBehalfOf[0] == name {
				found = true
			}
		}
		if !found {
			t.Errorf("no AccessDenied of the bot acting for %s in %d security events", name, len(envs))
		}
	}
}
