package bots

import (
	"fmt"
	"slices"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// Limits of a bot.
const (
	MaxInstructionsLen = 20000
	MaxGrantEntries    = 100
	maxIdentifierLen   = 64
)

// Bot is the aggregate that guards one bot. Build it by folding its stream
// with Apply; its methods return the events to append.
type Bot struct {
	id           string
	name         string
	instructions string
	grants       Grants
	archived     bool
}

// Exists reports whether the bot was created.
func (b *Bot) Exists() bool { return b.id != "" }

// Archived reports whether the bot was archived.
func (b *Bot) Archived() bool { return b.archived }

// ID, Name, Instructions and Grants are the bot's configuration as
// recorded.
func (b *Bot) ID() string           { return b.id }
func (b *Bot) Name() string         { return b.name }
func (b *Bot) Instructions() string { return b.instructions }
func (b *Bot) Grants() Grants       { return b.grants }

// Apply folds one recorded event into the aggregate.
func (b *Bot) Apply(e domain.Event) {
	switch e := e.(type) {
	case *BotCreated:
		b.id, b.name, b.instructions, b.grants = e.ID, e.Name, e.Instructions, e.Grants
	case *BotUpdated:
		if e.Name != nil {
			b.name = *e.Name
		}
		if e.Instructions != nil {
			b.instructions = *e.Instructions
		}
		if e.Grants != nil {
			b.grants = *e.Grants
		}
	case *BotArchived:
		b.archived = true
	}
}

// Create decides a new bot.
func Create(id, name, instructions string, grants Grants) ([]domain.Event, error) {
	if err := domain.CheckName("name", name); err != nil {
		return nil, err
	}
	if err := checkInstructions(instructions); err != nil {
		return nil, err
	}
	grants, err := NormalizeGrants(grants)
	if err != nil {
		return nil, err
	}
	return []domain.Event{&BotCreated{ID: id, Name: name, Instructions: instructions, Grants: grants}}, nil
}

// Update decides a change of the given fields (nil leaves a field as is).
func (b *Bot) Update(name, instructions *string, grants *Grants) ([]domain.Event, error) {
	if err := b.mustBeActive(); err != nil {
		return nil, err
	}
	var e BotUpdated
	if name != nil && *name != b.name {
		if err := domain.CheckName("name", *name); err != nil {
			return nil, err
		}
		e.Name = name
	}
	if instructions != nil && *instructions != b.instructions {
		if err := checkInstructions(*instructions); err != nil {
			return nil, err
		}
		e.Instructions = instructions
	}
	if grants != nil {
		g, err := NormalizeGrants(*grants)
		if err != nil {
			return nil, err
		}
		if !g.equal(b.grants) {
			e.Grants = &g
		}
	}
	if e.Name == nil && e.Instructions == nil && e.Grants == nil {
		return nil, nil
	}
	return []domain.Event{&e}, nil
}

// Archive decides archiving the bot.
func (b *Bot) Archive() ([]domain.Event, error) {
	if err := b.mustBeActive(); err != nil {
		return nil, err
	}
	return []domain.Event{&BotArchived{}}, nil
}

// mustBeActive is the bot's one rule for writes (update, archive): a
// missing bot is not found; an archived one is read-only
// (*domain.ArchivedError, a conflict).
func (b *Bot) mustBeActive() error {
	if !b.Exists() {
		return fmt.Errorf("%w: bot", domain.ErrNotFound)
	}
	if b.archived {
		return &domain.ArchivedError{Resource: "bot"}
	}
	return nil
}

func checkInstructions(s string) error {
	if s == "" {
		return nil
	}
	return domain.CheckText("instructions", s, MaxInstructionsLen)
}

// NormalizeGrants validates grants and returns them sorted, without
// duplicates and with empty lists rather than nil ones.
func NormalizeGrants(g Grants) (Grants, error) {
	var err error
	out := Grants{}
	if out.KnowledgeBases, err = normalizeList("grants.knowledge_bases", g.KnowledgeBases, isIdentifier); err != nil {
		return Grants{}, err
	}
	if out.DataSources, err = normalizeList("grants.data_sources", g.DataSources, isIdentifier); err != nil {
		return Grants{}, err
	}
	if out.Tools, err = normalizeList("grants.tools", g.Tools, isIdentifier); err != nil {
		return Grants{}, err
	}
	if out.Permissions, err = normalizeList("grants.permissions", g.Permissions, isPermission); err != nil {
		return Grants{}, err
	}
	return out, nil
}

// PermissionSet returns the permissions the grants hold.
func (g Grants) PermissionSet() access.PermissionSet {
	set, _ := access.ParsePermissions(g.Permissions)
	return set
}

func (g Grants) equal(o Grants) bool {
	return slices.Equal(g.KnowledgeBases, o.KnowledgeBases) && slices.Equal(g.DataSources, o.DataSources) &&
		slices.Equal(g.Tools, o.Tools) && slices.Equal(g.Permissions, o.Permissions)
}

func normalizeList(field string, in []string, valid func(string) bool) ([]string, error) {
	if len(in) > MaxGrantEntries {
		return nil, fmt.Errorf("%w: %s has more than %d entries", domain.ErrInvalid, field, MaxGrantEntries)
	}
	out := make([]string, 0, len(in))
	for _, v := range in {
		if !valid(v) {
			return nil, fmt.Errorf("%w: %s has an invalid entry %.64q", domain.ErrInvalid, field, v)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func isPermission(s string) bool {
	p, ok := access.ParsePermission(s)
	return ok && p != access.OrgsCreate
}

// isIdentifier accepts resource ids and tool names: 1–64 of [A-Za-z0-9._-].
func isIdentifier(s string) bool {
	if s == "" || len(s) > maxIdentifierLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
