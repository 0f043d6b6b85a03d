package accessreview

import (
	"context"
	"fmt"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
)

// Log is the part of the event store a review reads.
type Log interface {
	ReadAll(ctx context.Context, after uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, error)
}

// Decoder turns a recorded event back into its domain event
// (events.Registry).
type Decoder interface {
	Decode(eventType string, data []byte) (domain.Event, error)
}

// Categories are the streams whose events decide access: the organization
// (members, roles, service accounts, issuers), knowledge bases, data
// sources and bots.
var categories = []string{tenancy.Category, knowledge.KnowledgeBaseCategory, datasources.Category, bots.Category}

// foldBatch is how many events one read of the log returns.
const foldBatch = 1000

// Snapshot is one organization as its log says it was at a moment: its
// tenancy aggregate and the aggregates of its knowledge bases, data
// sources and bots, each folded with its own Apply.
type Snapshot struct {
	OrgID string
	At    time.Time
	// Events is how many events were folded.
	Events int

	org     *tenancy.Organization
	bases   map[string]*knowledge.KnowledgeBase
	sources map[string]*datasources.DataSource
	bots    map[string]*bots.Bot
}

// NewSnapshot returns the state of organization orgID before its first
// event, to be folded up to at.
func NewSnapshot(orgID string, at time.Time) *Snapshot {
	return &Snapshot{
		OrgID: orgID, At: at.UTC(), org: tenancy.New(),
		bases: map[string]*knowledge.KnowledgeBase{}, sources: map[string]*datasources.DataSource{}, bots: map[string]*bots.Bot{},
	}
}

// Fold reads organization orgID's log in order and folds every event that
// occurred at or before at. It stops at the first later event: the answer
// is the state of the log's prefix up to that moment, as the server saw it
// then.
func Fold(ctx context.Context, log Log, dec Decoder, orgID string, at time.Time) (*Snapshot, error) {
	if orgID == "" {
		return nil, fmt.Errorf("access review: no organization")
	}
	snap := NewSnapshot(orgID, at)
	filter := eventstore.Filter{OrgID: orgID, Categories: categories}
	var after uint64
	for {
		envs, err := log.ReadAll(ctx, after, filter, foldBatch)
		if err != nil {
			return nil, fmt.Errorf("access review: read the log of %s: %w", orgID, err)
		}
		for _, env := range envs {
			if env.OccurredAt.After(snap.At) {
				return snap, nil
			}
			if err := snap.Apply(env, dec); err != nil {
				return nil, err
			}
			after = env.Position
		}
		if len(envs) < foldBatch {
			return snap, nil
		}
	}
}

// Apply folds one event of the organization's log. Events of another
// organization or of other categories are refused or ignored, never
// folded.
func (s *Snapshot) Apply(env eventstore.Envelope, dec Decoder) error {
	if env.OrgID != s.OrgID || env.Stream.OrgID != s.OrgID {
		return fmt.Errorf("access review: event %s of another organization in the log of %s", env.ID, s.OrgID)
	}
	var target interface{ Apply(domain.Event) }
	id := env.Stream.EntityID
	switch env.Stream.Category {
	case tenancy.Category:
		target = s.org
	case knowledge.KnowledgeBaseCategory:
		target = entity(s.bases, id)
	case datasources.Category:
		target = entity(s.sources, id)
	case bots.Category:
		target = entity(s.bots, id)
	default:
		return nil
	}
	e, err := dec.Decode(env.Type, env.Data)
	if err != nil {
		return fmt.Errorf("access review: event %s (%s): %w", env.ID, env.Type, err)
	}
	target.Apply(e)
	s.Events++
	return nil
}

// entity returns the aggregate of id in m, adding an empty one.
func entity[T any](m map[string]*T, id string) *T {
	a := m[id]
	if a == nil {
		a = new(T)
		m[id] = a
	}
	return a
}
