package commands_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
)

type handlersBundle struct {
	ctx    context.Context
	store  eventstore.Store
	cmds   commands.Commands
	minter *countingMinter
	owner  access.Principal
}

// countingMinter issues predictable tokens and counts them.
type countingMinter struct{ minted int }

func (m *countingMinter) MintServiceToken(orgID, accountID, tokenID string, expiresAt time.Time) (string, error) {
	m.minted++
	return "token-for-" + accountID, nil
}

// openStore opens an embedded log in a directory of the test's own,
// closed when the test ends.
func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	store, err := embedded.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// newCommands returns the handlers over store, as a restarted server
// would build them.
func newCommands(store eventstore.Store, minter commands.TokenMinter) commands.Commands {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := commands.NewPipeline(store, events.NewRegistry(), logger)
	return commands.New(p, minter, commands.Embedding{Model: "m", Dimensions: 3})
}

func setupHandlers(t *testing.T) *handlersBundle {
	t.Helper()
	ctx := context.Background()
	store := openStore(t)
	minter := &countingMinter{}
	cmds := newCommands(store, minter)
	org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if org.Name != "Acme" || org.OwnerSub != "alice" || org.Position == 0 {
		t.Fatalf("CreateOrg = %+v", org)
	}
	owner := access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil)
	return &handlersBundle{ctx: ctx, store: store, cmds: cmds, minter: minter, owner: owner}
}

// TestCreateAnswersWithTheRecordedResource: a create returns what the
// domain recorded (grants normalized), and the replay of its
// Idempotency-Key on a restarted server returns the same resource, read
// back from the log, without appending.
func TestCreateAnswersWithTheRecordedResource(t *testing.T) {
	t.Parallel()
	b := setupHandlers(t)
	ctx := commands.WithOrigin(b.ctx, commands.Origin{IdempotencyKey: "create-bot-1"})
	first, err := b.cmds.Bots.CreateBot(ctx, b.owner, "Helper", "be kind", bots.Grants{Tools: []string{"web", "calc", "web"}})
	if err != nil {
		t.Fatal(err)
	}
	want := bots.Grants{KnowledgeBases: []string{}, DataSources: []string{}, Tools: []string{"calc", "web"}, Permissions: []string{}}
	if g := first.Bot.Grants; !slices.Equal(g.Tools, want.Tools) || g.DataSources == nil || g.Permissions == nil || g.KnowledgeBases == nil {
		t.Fatalf("grants = %+v, want %+v", g, want)
	}
	if first.Bot.Name != "Helper" || first.Position == 0 || first.At.IsZero() {
		t.Fatalf("created = %+v", first)
	}

	replay, err := newCommands(b.store, b.minter).Bots.CreateBot(ctx, b.owner, "Helper", "be kind", bots.Grants{Tools: []string{"web", "calc", "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if replay.ID != first.ID || replay.Position != 0 || !replay.At.Equal(first.At) || replay.Version != first.Version {
		t.Fatalf("replay = %+v, first = %+v", replay.Result, first.Result)
	}
	if replay.Bot.Name != "Helper" || !slices.Equal(replay.Bot.Grants.Tools, want.Tools) {
		t.Fatalf("replayed bot = %+v", replay.Bot)
	}

	kb, err := b.cmds.Knowledge.CreateKnowledgeBase(ctx, b.owner, "Handbook", "policies")
	if err != nil {
		t.Fatal(err)
	}
	if kb.KnowledgeBase.EmbeddingModel != "m" || kb.KnowledgeBase.Dimensions != 3 || kb.KnowledgeBase.Description != "policies" {
		t.Fatalf("knowledge base = %+v", kb.KnowledgeBase)
	}
	doc, err := b.cmds.Knowledge.AddDocument(b.ctx, b.owner, kb.ID, commands.DocumentInput{Title: "Leave", ContentType: "text/plain", Content: "ten days"})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Document.ContentHash == "" || doc.Document.Version != 1 || doc.Document.KnowledgeBaseID != kb.ID || doc.Document.Content != "ten days" {
		t.Fatalf("document = %+v", doc.Document)
	}
}

// TestServiceAccountLifetimeIsTheDomains: the use case applies the
// domain's default and bounds before anything is minted or recorded, and
// answers with the account as recorded.
func TestServiceAccountLifetimeIsTheDomains(t *testing.T) {
	t.Parallel()
	b := setupHandlers(t)
	perms, err := access.ParsePermissions([]string{"bots:read", "bots:read"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{-time.Second, tenancy.MinServiceAccountTTL - time.Second, tenancy.MaxServiceAccountTTL + time.Second, 1 << 62} {
		if _, err := b.cmds.Tenancy.CreateServiceAccount(b.ctx, b.owner, "ci", perms, ttl); !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("ttl %v: err = %v, want ErrInvalid", ttl, err)
		}
	}
	if b.minter.minted != 0 {
		t.Fatalf("minted %d tokens for refused accounts", b.minter.minted)
	}
	before := time.Now()
	sa, err := b.cmds.Tenancy.CreateServiceAccount(b.ctx, b.owner, "ci", perms, 0)
	if err != nil {
		t.Fatal(err)
	}
	lifetime := sa.ExpiresAt.Sub(before)
	if lifetime < tenancy.DefaultServiceAccountTTL-2*time.Second || lifetime > tenancy.DefaultServiceAccountTTL+2*time.Second {
		t.Fatalf("default lifetime = %v, want %v", lifetime, tenancy.DefaultServiceAccountTTL)
	}
	if sa.Token != "token-for-"+sa.ID || sa.Name != "ci" || !slices.Equal(sa.Permissions, []string{"bots:read"}) || sa.Position == 0 {
		t.Fatalf("service account = %+v", sa)
	}
}
