package readmodeltest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// runAuditNarratives checks the list of narratives: one row per
// correlation id with its root, last sequence and count, newest first,
// paged by the root's sequence, each filter matched by any step, times on
// the root, nothing of another organization, and a redelivery counting
// nothing twice.
func runAuditNarratives(t *testing.T, newModels func(t *testing.T) Models) {
	// Three requests of org-a (r1: alice adds a document, the ingestion
	// process chunks it; r2: bob searches; r3: alice again), one of org-b
	// under r1's correlation id, and an event with no correlation.
	type ev struct {
		org, corr, typ, stream, actor string
	}
	plan := []ev{
		{"org-a", "r1", "DocumentAdded", "doc-org-a_d1", "alice"},
		{"org-b", "r1", "BotCreated", "bot-org-b_b1", "mallory"},
		{"org-a", "r1", "JobSubmitted", "job-org-a_j1", "ingestion"},
		{"org-a", "r2", "KnowledgeSearched", "search-org-a_s1", "bob"},
		{"org-a", "r1", "DocumentChunked", "doc-org-a_d1", "ingestion"},
		{"org-a", "", "BotCreated", "bot-org-a_b2", "alice"},
		{"org-a", "r3", "BotCreated", "bot-org-a_b3", "alice"},
		{"org-a", "r1", "JobSucceeded", "job-org-a_j1", "ingestion"},
	}
	var log []eventstore.Envelope
	for i, p := range plan {
		stream, err := eventstore.ParseStreamName(p.stream)
		must(t, err)
		log = append(log, eventstore.Envelope{
			ID: eventstore.NewEventID(), Type: p.typ, Stream: stream, Position: uint64(10 + 3*i),
			Data: []byte(fmt.Sprintf(`{"i":%d}`, i)),
			Metadata: eventstore.Metadata{OrgID: p.org, CorrelationID: p.corr, SchemaVersion: 1,
				Actor: eventstore.Actor{Subject: p.actor, Kind: "user"}, OccurredAt: at.Add(time.Duration(i) * time.Minute)},
		})
	}
	apply := func(t *testing.T, m Models, envs []eventstore.Envelope) {
		t.Helper()
		must(t, m.write(context.Background(), func(ctx context.Context) error {
			for _, env := range envs {
				if err := m.Audit.Add(ctx, scope(t, env.OrgID), env); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	type row struct {
		corr       string
		root, last uint64
		steps      int
		ended      time.Time
	}
	rows := func(t *testing.T, m Models, org string, q projections.NarrativeQuery) []row {
		t.Helper()
		got, err := m.Audit.Narratives(context.Background(), scope(t, org), q)
		must(t, err)
		out := []row{}
		for _, r := range got {
			if r.Root.Event.CorrelationID != r.CorrelationID {
				t.Errorf("%s: root of correlation %q", r.CorrelationID, r.Root.Event.CorrelationID)
			}
			out = append(out, row{r.CorrelationID, r.Root.Sequence, r.LastSequence, r.Steps, r.EndedAt})
		}
		return out
	}
	// org-a's sequences: 1 r1 add, 2 r1 job, 3 r2, 4 r1 chunked, 5 none, 6 r3, 7 r1 succeeded.
	r1 := row{"r1", 1, 7, 4, at.Add(7 * time.Minute)}
	r2 := row{"r2", 3, 3, 1, at.Add(3 * time.Minute)}
	r3 := row{"r3", 6, 6, 1, at.Add(6 * time.Minute)}

	t.Run("AuditNarrativesAreListedNewestFirst", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		for _, env := range log {
			apply(t, m, []eventstore.Envelope{env})
		}
		apply(t, m, log) // a redelivery counts nothing twice
		tests := []struct {
			name string
			q    projections.NarrativeQuery
			want []row
		}{
			{"all", projections.NarrativeQuery{}, []row{r3, r2, r1}},
			{"page", projections.NarrativeQuery{Limit: 2}, []row{r3, r2}},
			{"after", projections.NarrativeQuery{After: 3}, []row{r1}},
			{"actor of a later step", projections.NarrativeQuery{Actor: "ingestion"}, []row{r1}},
			{"type", projections.NarrativeQuery{Type: "BotCreated"}, []row{r3}},
			{"resource", projections.NarrativeQuery{Stream: "doc-org-a_d1"}, []row{r1}},
			{"since", projections.NarrativeQuery{Since: at.Add(3 * time.Minute)}, []row{r3, r2}},
			{"until", projections.NarrativeQuery{Until: at.Add(3 * time.Minute)}, []row{r1}},
			{"another org's actor", projections.NarrativeQuery{Actor: "mallory"}, []row{}},
		}
		for _, tt := range tests {
			if got := rows(t, m, "org-a", tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
			}
		}
		if got, want := rows(t, m, "org-b", projections.NarrativeQuery{}), []row{{"r1", 1, 1, 1, at.Add(time.Minute)}}; !reflect.DeepEqual(got, want) {
			t.Errorf("org-b: %+v, want %+v", got, want)
		}
		if got := rows(t, m, "org-c", projections.NarrativeQuery{}); len(got) != 0 {
			t.Errorf("org-c: %+v", got)
		}
	})

	t.Run("AuditNarrativesAreTheSameAfterARebuild", func(t *testing.T) {
		t.Parallel()
		live, rebuilt := newModels(t), newModels(t)
		for _, env := range log {
			apply(t, live, []eventstore.Envelope{env})
		}
		apply(t, rebuilt, log)
		if got, want := rows(t, rebuilt, "org-a", projections.NarrativeQuery{}), rows(t, live, "org-a", projections.NarrativeQuery{}); !reflect.DeepEqual(got, want) {
			t.Errorf("rebuilt %+v, live %+v", got, want)
		}
	})
}
