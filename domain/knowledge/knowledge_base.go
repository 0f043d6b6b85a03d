package knowledge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// MaxGrants bounds a knowledge base's grant list.
const MaxGrants = 100

// KnowledgeBase is the aggregate that guards one knowledge base.
type KnowledgeBase struct {
	id       string
	name     string
	desc     string
	grants   []Grant
	archived bool
	// model and dims are the embedding every chunk of the base has.
	model string
	dims  int
}

// Exists reports whether the base was created.
func (kb *KnowledgeBase) Exists() bool { return kb.id != "" }

// Archived reports whether the base was archived.
func (kb *KnowledgeBase) Archived() bool { return kb.archived }

// Embedding returns the model and dimensions the base's chunks are
// embedded with.
func (kb *KnowledgeBase) Embedding() (model string, dims int) { return kb.model, kb.dims }

// Grants returns the base's grants.
func (kb *KnowledgeBase) Grants() []Grant { return kb.grants }

// Apply folds one recorded event into the aggregate.
func (kb *KnowledgeBase) Apply(e domain.Event) {
	switch e := e.(type) {
	case *KnowledgeBaseCreated:
		kb.id, kb.name, kb.desc = e.ID, e.Name, e.Description
		kb.model, kb.dims = e.EmbeddingModel, e.Dimensions
	case *KnowledgeBaseUpdated:
		if e.Name != nil {
			kb.name = *e.Name
		}
		if e.Description != nil {
			kb.desc = *e.Description
		}
	case *KnowledgeBaseGrantsSet:
		kb.grants = e.Grants
	case *KnowledgeBaseArchived:
		kb.archived = true
	}
}

// CreateKnowledgeBase decides a new knowledge base embedded with model.
func CreateKnowledgeBase(id, name, description, model string, dims int) ([]domain.Event, error) {
	if err := domain.CheckName("name", name); err != nil {
		return nil, err
	}
	if err := checkDescription(description); err != nil {
		return nil, err
	}
	return []domain.Event{&KnowledgeBaseCreated{ID: id, Name: name, Description: description, EmbeddingModel: model, Dimensions: dims}}, nil
}

// Update decides changing the given fields (nil leaves a field as is).
func (kb *KnowledgeBase) Update(name, description *string) ([]domain.Event, error) {
	if err := kb.mustBeActive(); err != nil {
		return nil, err
	}
	var e KnowledgeBaseUpdated
	if name != nil && *name != kb.name {
		if err := domain.CheckName("name", *name); err != nil {
			return nil, err
		}
		e.Name = name
	}
	if description != nil && *description != kb.desc {
		if err := checkDescription(*description); err != nil {
			return nil, err
		}
		e.Description = description
	}
	if e.Name == nil && e.Description == nil {
		return nil, nil
	}
	return []domain.Event{&e}, nil
}

// SetGrants decides replacing the grants.
func (kb *KnowledgeBase) SetGrants(grants []Grant) ([]domain.Event, error) {
	if err := kb.mustBeActive(); err != nil {
		return nil, err
	}
	normalized, err := NormalizeGrants(grants)
	if err != nil {
		return nil, err
	}
	if slices.EqualFunc(normalized, kb.grants, func(a, b Grant) bool {
		return a.Subject == b.Subject && slices.Equal(a.Permissions, b.Permissions)
	}) {
		return nil, nil
	}
	return []domain.Event{&KnowledgeBaseGrantsSet{Grants: normalized}}, nil
}

// Archive decides archiving the base.
func (kb *KnowledgeBase) Archive() ([]domain.Event, error) {
	if err := kb.mustBeActive(); err != nil {
		return nil, err
	}
	return []domain.Event{&KnowledgeBaseArchived{}}, nil
}

// MustAcceptDocuments refuses documents for a missing or archived base.
func (kb *KnowledgeBase) MustAcceptDocuments() error { return kb.mustBeActive() }

// mustBeActive is the base's one rule for writes: to the base itself (its
// name, description, grants, archiving it again) and to its documents
// (adding, replacing, deleting). A missing base is not found; an archived
// one is read-only (*domain.ArchivedError, a conflict).
func (kb *KnowledgeBase) mustBeActive() error {
	if !kb.Exists() {
		return fmt.Errorf("%w: knowledge base", domain.ErrNotFound)
	}
	if kb.archived {
		return &domain.ArchivedError{Resource: "knowledge base"}
	}
	return nil
}

func checkDescription(s string) error {
	if s == "" {
		return nil
	}
	return domain.CheckText("description", s, domain.MaxDescriptionLen)
}

// NormalizeGrants validates grants — subjects "user:SUB", "role:ROLE"
// with a known role or "service:ID" (a service account), permissions among kb:read and kb:write — and returns
// them sorted by subject, one entry per subject.
func NormalizeGrants(grants []Grant) ([]Grant, error) {
	if len(grants) > MaxGrants {
		return nil, fmt.Errorf("%w: at most %d grants", domain.ErrInvalid, MaxGrants)
	}
	bySubject := map[string]map[string]bool{}
	for _, g := range grants {
		kind, value, ok := strings.Cut(g.Subject, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: grant subject %.80q must be user:SUB, role:ROLE or service:ID", domain.ErrInvalid, g.Subject)
		case kind == "user":
			if err := domain.CheckSubject("grant subject", value); err != nil {
				return nil, err
			}
		case kind == "service":
			if err := domain.CheckSubject("grant subject", value); err != nil {
				return nil, err
			}
		case kind == "role":
			if _, known := access.ParseRole(value); !known {
				return nil, fmt.Errorf("%w: grant names unknown role %.40q", domain.ErrInvalid, value)
			}
		default:
			return nil, fmt.Errorf("%w: grant subject %.80q must be user:SUB, role:ROLE or service:ID", domain.ErrInvalid, g.Subject)
		}
		if len(g.Permissions) == 0 {
			return nil, fmt.Errorf("%w: grant for %.80q lists no permission", domain.ErrInvalid, g.Subject)
		}
		perms := bySubject[g.Subject]
		if perms == nil {
			perms = map[string]bool{}
			bySubject[g.Subject] = perms
		}
		for _, p := range g.Permissions {
			if p != access.KBRead.String() && p != access.KBWrite.String() {
				return nil, fmt.Errorf("%w: a knowledge base grant gives kb:read or kb:write, not %.40q", domain.ErrInvalid, p)
			}
			perms[p] = true
		}
	}
	out := make([]Grant, 0, len(bySubject))
	for subject, perms := range bySubject {
		names := make([]string, 0, len(perms))
		for p := range perms {
			names = append(names, p)
		}
		slices.Sort(names)
		out = append(out, Grant{Subject: subject, Permissions: names})
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.Subject, b.Subject) })
	return out, nil
}

// Resource returns what access.Decide needs to judge an action on a base
// of org with grants: open to the organization's roles when it has no
// grants, restricted to the subjects listed when it has some.
func Resource(orgID string, grants []Grant) access.Resource {
	res := access.Resource{OrgID: orgID, Restricted: len(grants) > 0}
	for _, g := range grants {
		if grant, ok := access.ParseGrant(g.Subject, g.Permissions); ok {
			res.Grants = append(res.Grants, grant)
		}
	}
	return res
}
