package bots

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain"
)

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		botName      string
		instructions string
		grants       Grants
		want         error
	}{
		{"valid", "Helpdesk", "Be brief.", Grants{Tools: []string{"search"}, Permissions: []string{"kb:read"}}, nil},
		{"no instructions", "Helpdesk", "", Grants{}, nil},
		{"empty name", "", "", Grants{}, domain.ErrInvalid},
		{"instructions too long", "Helpdesk", strings.Repeat("x", MaxInstructionsLen+1), Grants{}, domain.ErrInvalid},
		{"unknown permission", "Helpdesk", "", Grants{Permissions: []string{"kb:destroy"}}, domain.ErrInvalid},
		{"platform permission", "Helpdesk", "", Grants{Permissions: []string{"orgs:create"}}, domain.ErrInvalid},
		{"hostile kb id", "Helpdesk", "", Grants{KnowledgeBases: []string{"../../etc"}}, domain.ErrInvalid},
		{"sql in tool name", "Helpdesk", "", Grants{Tools: []string{"x' OR 1=1"}}, domain.ErrInvalid},
		{"too many grants", "Helpdesk", "", Grants{Tools: make([]string, MaxGrantEntries+1)}, domain.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Create("bot-1", tt.botName, tt.instructions, tt.grants)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGrantsAreNormalized(t *testing.T) {
	t.Parallel()
	g, err := NormalizeGrants(Grants{Tools: []string{"b", "a", "b"}, Permissions: []string{"kb:read", "bots:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(g.Tools, ",") != "a,b" || strings.Join(g.Permissions, ",") != "bots:read,kb:read" || g.KnowledgeBases == nil {
		t.Fatalf("normalized = %+v", g)
	}
	if g.PermissionSet().Len() != 2 {
		t.Fatal("permission set")
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	var b Bot
	if _, err := b.Update(nil, nil, nil); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("update before create: %v", err)
	}
	evs, _ := Create("bot-1", "Helpdesk", "x", Grants{})
	for _, e := range evs {
		b.Apply(e)
	}
	same := "Helpdesk"
	if evs, err := b.Update(&same, nil, nil); err != nil || len(evs) != 0 {
		t.Fatalf("no-op update = %v, %v", evs, err)
	}
	name := "Desk"
	evs, err := b.Update(&name, nil, &Grants{Tools: []string{"search"}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("update = %v, %v", evs, err)
	}
	u := evs[0].(*BotUpdated)
	if u.Name == nil || *u.Name != "Desk" || u.Instructions != nil || u.Grants == nil {
		t.Fatalf("update event = %+v", u)
	}
	b.Apply(u)
	if evs, _ := b.Archive(); len(evs) != 1 {
		t.Fatal("archive")
	}
	b.Apply(&BotArchived{})
	if _, err := b.Archive(); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("archive twice: %v", err)
	}
	if _, err := b.Update(&name, nil, nil); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("update archived: %v", err)
	}
}

// TestArchivedBotIsReadOnly: every write to a bot succeeds while it is
// active and is refused with an ArchivedError (a conflict) once it is
// archived, even a write that would change nothing.
func TestArchivedBotIsReadOnly(t *testing.T) {
	t.Parallel()
	name, same := "Desk", "Helpdesk"
	for _, tc := range []struct {
		name  string
		write func(b *Bot) ([]domain.Event, error)
		noop  bool
	}{
		{"rename", func(b *Bot) ([]domain.Event, error) { return b.Update(&name, nil, nil) }, false},
		{"change grants", func(b *Bot) ([]domain.Event, error) {
			return b.Update(nil, nil, &Grants{Tools: []string{"search", "calendar"}})
		}, false},
		{"update with the same name", func(b *Bot) ([]domain.Event, error) { return b.Update(&same, nil, nil) }, true},
		{"archive", func(b *Bot) ([]domain.Event, error) { return b.Archive() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b Bot
			evs, err := Create("bot-1", "Helpdesk", "x", Grants{Tools: []string{"search"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				b.Apply(e)
			}
			if evs, err := tc.write(&b); err != nil || (len(evs) == 0) != tc.noop {
				t.Fatalf("on an active bot: %v, %v", evs, err)
			}
			b.Apply(&BotArchived{})
			evs, err = tc.write(&b)
			var archived *domain.ArchivedError
			if !errors.As(err, &archived) || !errors.Is(err, domain.ErrConflict) || archived.Resource != "bot" || evs != nil {
				t.Fatalf("on an archived bot: %v, %v; want an ArchivedError for the bot", evs, err)
			}
		})
	}
}
