package projections_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
	"github.com/palisadehq/palisade/projections/memory"
)

// denialLog records the resources of refused reads.
type denialLog struct{ resources []string }

func (l *denialLog) RecordDenial(_ context.Context, _ access.Principal, _ access.Decision, resource string) {
	l.resources = append(l.resources, resource)
}

// TestConversationVisibility: everyone sees their own conversations; an
// owner or admin (conversations:read) sees anyone's; anyone else, a
// service account that shares a member's subject included, gets the same
// not-found as for a conversation that does not exist, in their own or
// another organization.
func TestConversationVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	model := memory.NewConversations()
	for _, org := range []string{"org-a", "org-b"} {
		scope, err := access.EventScope(org)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []projections.Conversation{
			{ID: "conv-1", BotID: "bot-1", StartedBy: "alice", StartedByKind: "user", CreatedAt: at, UpdatedAt: at},
			{ID: "conv-2", BotID: "bot-2", StartedBy: "alice", StartedByKind: "user", CreatedAt: at, UpdatedAt: at,
				Messages: []projections.ConversationMessage{{ID: "msg-1", TurnID: "turn-1", Role: projections.RoleUser, Content: "hi", CreatedAt: at}}},
			{ID: "conv-3", BotID: "bot-1", StartedBy: "bob", StartedByKind: "user", CreatedAt: at, UpdatedAt: at},
			{ID: "conv-4", BotID: "bot-1", StartedBy: "alice", StartedByKind: "service", CreatedAt: at, UpdatedAt: at},
		} {
			must(t, model.PutConversation(ctx, scope, c))
		}
	}
	alice := access.NewUser("org-a", "alice", []access.Role{access.RoleMember}, nil)
	bob := access.NewUser("org-a", "bob", []access.Role{access.RoleMember}, nil)
	admin := access.NewUser("org-a", "ada", []access.Role{access.RoleAdmin}, nil)
	aliceService := access.NewServiceAccount("org-a", "alice", access.NewPermissionSet(access.BotsRead, access.BotsRun), nil)
	auditor := access.NewUser("org-a", "alice", []access.Role{access.RoleAuditor}, nil)

	_, missing := model.Conversation(ctx, mustScope(t, "org-a"), "conv-none")
	tests := []struct {
		name      string
		who       access.Principal
		id        string
		wantFound bool
		wantErr   error
		denied    bool
	}{
		{"owner", alice, "conv-1", true, nil, false},
		{"owner with messages", alice, "conv-2", true, nil, false},
		{"another member", bob, "conv-1", false, domain.ErrNotFound, true},
		{"a member's own", bob, "conv-3", true, nil, false},
		{"admin", admin, "conv-3", true, nil, false},
		{"service account sharing the subject", aliceService, "conv-1", false, domain.ErrNotFound, true},
		{"service account's own", aliceService, "conv-4", true, nil, false},
		{"missing", alice, "conv-none", false, domain.ErrNotFound, false},
		{"another organization's id", access.NewUser("org-c", "alice", []access.Role{access.RoleOwner}, nil), "conv-1", false, domain.ErrNotFound, false},
		{"without bots:read", auditor, "conv-1", false, domain.ErrForbidden, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log := &denialLog{}
			q := projections.NewConversationQueries(model, log)
			got, err := q.Conversation(ctx, tt.who, tt.id)
			if tt.wantFound {
				if err != nil || got.ID != tt.id || got.Messages == nil {
					t.Fatalf("Conversation = %+v, %v; want %s with its messages", got, err, tt.id)
				}
			} else {
				if !errors.Is(err, tt.wantErr) || got.ID != "" {
					t.Fatalf("Conversation = %+v, %v; want %v", got, err, tt.wantErr)
				}
				if errors.Is(err, domain.ErrNotFound) && err.Error() != missing.Error() {
					t.Fatalf("error %q differs from a missing conversation's %q", err, missing)
				}
			}
			if denied := len(log.resources) == 1; denied != tt.denied || len(log.resources) > 1 {
				t.Fatalf("denials recorded: %v, want denied %v", log.resources, tt.denied)
			}
		})
	}
}

// TestConversationsListOnlyTheCallersOwn: the list holds the caller's own
// conversations (subject and kind), of one bot when asked, and no
// messages; even conversations:read lists only the caller's own.
func TestConversationsListOnlyTheCallersOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	model := memory.NewConversations()
	scope := mustScope(t, "org-a")
	for _, c := range []projections.Conversation{
		{ID: "conv-1", BotID: "bot-1", StartedBy: "alice", StartedByKind: "user",
			Messages: []projections.ConversationMessage{{ID: "msg-1", Role: projections.RoleUser}}},
		{ID: "conv-2", BotID: "bot-2", StartedBy: "alice", StartedByKind: "user"},
		{ID: "conv-3", BotID: "bot-1", StartedBy: "bob", StartedByKind: "user"},
		{ID: "conv-4", BotID: "bot-1", StartedBy: "alice", StartedByKind: "service"},
		{ID: "conv-5", BotID: "bot-1", StartedBy: "alice", StartedByKind: "user"},
	} {
		must(t, model.PutConversation(ctx, scope, c))
	}
	q := projections.NewConversationQueries(model, &denialLog{})
	ids := func(list []projections.Conversation) []string {
		var out []string
		for _, c := range list {
			if c.Messages != nil {
				t.Errorf("%s listed with messages", c.ID)
			}
			out = append(out, c.ID)
		}
		return out
	}
	owner := access.NewUser("org-a", "alice", []access.Role{access.RoleOwner}, nil)
	tests := []struct {
		name  string
		who   access.Principal
		botID string
		page  projections.Page
		want  []string
	}{
		{"all of alice's", owner, "", projections.Page{}, []string{"conv-1", "conv-2", "conv-5"}},
		{"of bot-1", owner, "bot-1", projections.Page{}, []string{"conv-1", "conv-5"}},
		{"a page", owner, "", projections.Page{After: "conv-1", Limit: 1}, []string{"conv-2"}},
		{"the service account alice", access.NewServiceAccount("org-a", "alice", access.NewPermissionSet(access.BotsRead), nil), "", projections.Page{}, []string{"conv-4"}},
		{"bob", access.NewUser("org-a", "bob", []access.Role{access.RoleMember}, nil), "bot-2", projections.Page{}, nil},
	}
	for _, tt := range tests {
		list, err := q.Conversations(ctx, tt.who, tt.botID, tt.page)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := ids(list); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	auditor := access.NewUser("org-a", "alice", []access.Role{access.RoleAuditor}, nil)
	if _, err := q.Conversations(ctx, auditor, "", projections.Page{}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("auditor lists conversations: %v, want ErrForbidden", err)
	}
}

func mustScope(t *testing.T, org string) access.Scope {
	t.Helper()
	s, err := access.EventScope(org)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
