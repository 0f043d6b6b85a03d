package esdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
)

func TestSystemEventsAreSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := eventstore.MustStreamName("bot", "org1", "b1")
	if h, err := b.store.Head(b.ctx); err != nil || h != 0 {
		t.Fatalf("Head of a log holding only the server's events = %d, %v; want 0", h, err)
	}
	sub := b.subscribe(t, b.store, 0, eventstore.Filter{})
	first := b.append(t, st, eventstore.NoStream(), event("org1", "A", 0))
	b.server.AppendSystemEvent("$stats-127.0.0.1:2113", "$statsCollected")
	b.server.AppendSystemEvent("$$bot-org1_b1", "$metadata")
	if h, err := b.store.Head(b.ctx); err != nil || h != first.LastPosition {
		t.Fatalf("Head after system events = %d, %v; want %d", h, err, first.LastPosition)
	}
	second := b.append(t, st, eventstore.Exact(0), event("org1", "B", 1))
	got := sub.waitFor(t, 2)
	want := []uint64{first.LastPosition, second.LastPosition}
	if all := b.readAll(t, 0, eventstore.Filter{}); !slices.Equal(positions(all), want) {
		t.Fatalf("ReadAll positions %v, want %v", positions(all), want)
	}
	if !slices.Equal(positions(got), want) {
		t.Fatalf("Subscribe delivered %v, want %v", positions(got), want)
	}
}

func TestNamespacesAreApart(t *testing.T) {
	t.Parallel()
	srv := esdbtest.New(t)
	ctx := context.Background()
	blue := mustOpen(t, srv.URL(), WithNamespace("blue"))
	green := mustOpen(t, srv.URL(), WithNamespace("green"))
	st := eventstore.MustStreamName("bot", "org1", "b1")
	b := &bundle{server: srv, store: blue, ctx: ctx}
	sub := b.subscribe(t, green, 0, eventstore.Filter{})

	var heads []uint64
	for _, s := range []*Store{blue, green} {
		res, err := s.Append(ctx, st, eventstore.NoStream(), []eventstore.NewEvent{event("org1", "Created", 0)})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		heads = append(heads, res.LastPosition)
	}
	res, err := blue.Append(ctx, st, eventstore.Exact(0), []eventstore.NewEvent{event("org1", "Renamed", 1)})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	heads[0] = res.LastPosition
	for i, s := range []*Store{blue, green} {
		name := []string{"blue", "green"}[i]
		want := []int{2, 1}[i]
		envs, err := s.ReadStream(ctx, st, 0, 0)
		if err != nil || len(envs) != want {
			t.Fatalf("%s ReadStream = %d events, %v; want %d", name, len(envs), err, want)
		}
		all, err := s.ReadAll(ctx, 0, eventstore.Filter{}, 0)
		if err != nil || len(all) != want {
			t.Fatalf("%s ReadAll = %d events, %v; want %d", name, len(all), err, want)
		}
		if all[0].Stream != st {
			t.Fatalf("%s reads stream %s, want %s", name, all[0].Stream, st)
		}
		if h, err := s.Head(ctx); err != nil || h != heads[i] {
			t.Fatalf("%s Head = %d, %v; want %d", name, h, err, heads[i])
		}
	}
	greenHead := heads[1]
	if got := sub.waitFor(t, 1); len(got) != 1 || got[0].Position != greenHead {
		t.Fatalf("green subscriber got %v, want [%d]", positions(got), greenHead)
	}

	if _, err := Open(ctx, srv.URL(), WithNamespace("no-dashes")); err == nil {
		t.Fatal("Open accepted a namespace with a dash")
	}
}

func TestReadAllPositions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := eventstore.MustStreamName("bot", "org1", "b1")
	res := b.append(t, st, eventstore.NoStream(), event("org1", "A", 0), event("org1", "B", 1))
	t.Run("past the head", func(t *testing.T) {
		if got := b.readAll(t, res.LastPosition+1, eventstore.Filter{}); len(got) != 0 {
			t.Fatalf("read %d events past the head", len(got))
		}
	})
	t.Run("inside a record", func(t *testing.T) {
		// Not a position this store handed out: KurrentDB cannot read the
		// log from the middle of a record.
		if _, err := b.store.ReadAll(b.ctx, res.FirstPosition+1, eventstore.Filter{}, 0); err == nil {
			t.Fatal("ReadAll from inside a record succeeded")
		}
	})
}

func TestServerWithoutStreamReadPositions(t *testing.T) {
	t.Parallel()
	srv := esdbtest.New(t, esdbtest.WithoutStreamReadPositions())
	s := mustOpen(t, srv.URL())
	ctx := context.Background()
	st := eventstore.MustStreamName("bot", "org1", "b1")
	if _, err := s.Append(ctx, st, eventstore.NoStream(), []eventstore.NewEvent{event("org1", "A", 0)}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if _, err := s.ReadStream(ctx, st, 0, 0); !errors.Is(err, errNoPosition) {
		t.Fatalf("ReadStream = %v, want errNoPosition", err)
	}
	// A multi-event append must read its positions back, and says so.
	if _, err := s.Append(ctx, st, eventstore.Exact(0), []eventstore.NewEvent{event("org1", "B", 1), event("org1", "C", 2)}); !errors.Is(err, errNoPosition) {
		t.Fatalf("Append = %v, want errNoPosition", err)
	}
}

// TestServerFilter checks the filter subscriptions ask KurrentDB for:
// what it lets through must include every event the port's filter
// matches, and should exclude as much else as it can.
func TestServerFilter(t *testing.T) {
	t.Parallel()
	streams := []string{
		"bot-org1_b", "kb-org1_k", "bot-org10_b", "bot-org2_b", "kb-org2_k", "bot-org-1_b",
		"$stats-1", "$$bot-org1_b", "ns.bot-org1_b",
	}
	types := []string{"BotCreated", "BotCreatedV2", "DocumentAdded", "$metadata"}
	tests := []struct {
		name      string
		namespace string
		filter    eventstore.Filter
		streams   []string // that pass, for any type
		types     []string // that pass, for any stream
	}{
		{"none", "", eventstore.Filter{}, []string{"bot-org1_b", "kb-org1_k", "bot-org10_b", "bot-org2_b", "kb-org2_k", "bot-org-1_b", "ns.bot-org1_b"}, types},
		{"org", "", eventstore.Filter{OrgID: "org1"}, []string{"bot-org1_b", "kb-org1_k", "ns.bot-org1_b"}, types},
		{"org with a dash", "", eventstore.Filter{OrgID: "org-1"}, []string{"bot-org-1_b"}, types},
		{"org and categories", "", eventstore.Filter{OrgID: "org1", Categories: []string{"kb"}}, []string{"kb-org1_k"}, types},
		{"categories", "", eventstore.Filter{Categories: []string{"bot"}}, []string{"bot-org1_b", "bot-org10_b", "bot-org2_b", "bot-org-1_b"}, types},
		{"types", "", eventstore.Filter{Types: []string{"BotCreated", "DocumentAdded"}}, streams, []string{"BotCreated", "DocumentAdded"}},
		{"namespace", "ns", eventstore.Filter{}, []string{"ns.bot-org1_b"}, types},
		{"namespace and org", "ns", eventstore.Filter{OrgID: "org1"}, []string{"ns.bot-org1_b"}, types},
		{"namespace, org and category", "ns", eventstore.Filter{OrgID: "org1", Categories: []string{"bot"}}, []string{"ns.bot-org1_b"}, types},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Store{cfg: config{namespace: tt.namespace}}
			f := s.serverFilter(tt.filter)
			pass := func(subject string) bool {
				if f.Regex != "" {
					return regexp.MustCompile(f.Regex).MatchString(subject)
				}
				return slices.ContainsFunc(f.Prefixes, func(p string) bool { return strings.HasPrefix(subject, p) })
			}
			var gotStreams, gotTypes []string
			for _, subject := range streams {
				if f.Type == esdbclient.EventFilterType || pass(subject) {
					gotStreams = append(gotStreams, subject)
				}
			}
			for _, subject := range types {
				if f.Type == esdbclient.StreamFilterType || pass(subject) {
					gotTypes = append(gotTypes, subject)
				}
			}
			if fmt.Sprint(gotStreams) != fmt.Sprint(tt.streams) || fmt.Sprint(gotTypes) != fmt.Sprint(tt.types) {
				t.Fatalf("filter %+v lets through streams %v and types %v, want %v and %v", f, gotStreams, gotTypes, tt.streams, tt.types)
			}
		})
	}
}
