package readmodeltest

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// runAuditSequences checks that each organization's audit events are
// numbered 1, 2, 3 … in log order whatever other organizations write in
// between, that pages follow those numbers, and that applying the same log
// again gives the same numbers.
func runAuditSequences(t *testing.T, newModels func(t *testing.T) Models) {
	// log interleaves three organizations unevenly, as the global log does:
	// org-a's positions have gaps of one to three events of the others.
	log := func() []eventstore.Envelope {
		var out []eventstore.Envelope
		pattern := []string{"org-a", "org-b", "org-a", "org-c", "org-b", "org-b", "org-a", "org-c", "org-c", "org-c"}
		for i := range 3 * len(pattern) {
			org := pattern[i%len(pattern)]
			out = append(out, eventstore.Envelope{
				ID: eventstore.NewEventID(), Type: []string{"BotCreated", "BotUpdated"}[i%2],
				Stream: eventstore.MustStreamName("bot", org, "bot-1"), Position: uint64(100 + 7*i),
				Data:     []byte(fmt.Sprintf(`{"i":%d}`, i)),
				Metadata: eventstore.Metadata{OrgID: org, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, SchemaVersion: 1, OccurredAt: at},
			})
		}
		return out
	}()
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
	// want numbers each organization's events of log in order.
	want := map[string][]projections.AuditEvent{}
	for _, env := range log {
		want[env.OrgID] = append(want[env.OrgID], projections.AuditEvent{Sequence: uint64(len(want[env.OrgID]) + 1), Event: env})
	}
	all := func(t *testing.T, m Models, org string) []projections.AuditEvent {
		t.Helper()
		got, err := m.Audit.Events(context.Background(), scope(t, org), projections.AuditQuery{Limit: projections.MaxPageLimit})
		must(t, err)
		return got
	}

	t.Run("AuditSequencesArePerOrganizationAndGapless", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		// One unit per event, as the bus applies them, then the whole log
		// again: a redelivery takes no number.
		for _, env := range log {
			apply(t, m, []eventstore.Envelope{env})
		}
		apply(t, m, log)
		for org, w := range want {
			if got := all(t, m, org); !reflect.DeepEqual(got, w) {
				t.Errorf("%s: events\n%v\nwant\n%v", org, sequences(got), sequences(w))
			}
		}
		// An event older than the last indexed one is not indexed: its
		// number would be out of log order.
		late := log[0]
		late.ID, late.Position = eventstore.NewEventID(), 1
		apply(t, m, []eventstore.Envelope{late})
		if got := all(t, m, "org-a"); !reflect.DeepEqual(got, want["org-a"]) {
			t.Errorf("after an event older than the last: %v", sequences(got))
		}
		// The next event takes the next number.
		next := log[len(log)-1]
		next.ID, next.OrgID, next.Stream, next.Position = eventstore.NewEventID(), "org-a", eventstore.MustStreamName("bot", "org-a", "bot-1"), 10_000
		apply(t, m, []eventstore.Envelope{next})
		got := all(t, m, "org-a")
		if n := len(got); n != len(want["org-a"])+1 || got[n-1].Sequence != uint64(n) || got[n-1].Event.ID != next.ID {
			t.Errorf("after one more event: %v", sequences(got))
		}
	})

	t.Run("AuditSequencesAreTheSameAfterARebuild", func(t *testing.T) {
		t.Parallel()
		live, rebuilt := newModels(t), newModels(t)
		for _, env := range log {
			apply(t, live, []eventstore.Envelope{env})
		}
		apply(t, rebuilt, log) // one unit, as a rebuild applies a batch
		for org := range want {
			if got, w := all(t, rebuilt, org), all(t, live, org); !reflect.DeepEqual(got, w) {
				t.Errorf("%s rebuilt: %v, live: %v", org, sequences(got), sequences(w))
			}
		}
	})

	t.Run("AuditPagesFollowSequences", func(t *testing.T) {
		t.Parallel()
		m := newModels(t)
		ctx := context.Background()
		apply(t, m, log)
		a := scope(t, "org-a")
		wantA := want["org-a"]
		// Page by two through everything, and through one type.
		for _, types := range [][]string{nil, {"BotUpdated"}} {
			var got []projections.AuditEvent
			var after uint64
			for range len(wantA) + 1 {
				page, err := m.Audit.Events(ctx, a, projections.AuditQuery{Types: types, After: after, Limit: 2})
				must(t, err)
				got = append(got, page...)
				if len(page) < 2 {
					break
				}
				after = page[len(page)-1].Sequence
			}
			var w []projections.AuditEvent
			for _, e := range wantA {
				if types == nil || e.Event.Type == types[0] {
					w = append(w, e)
				}
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("pages of %v: %v, want %v", types, sequences(got), sequences(w))
			}
		}
		tests := []struct {
			after uint64
			want  []projections.AuditEvent
		}{
			{0, wantA},
			{1, wantA[1:]},
			{uint64(len(wantA)) - 1, wantA[len(wantA)-1:]},
			{uint64(len(wantA)), nil},
			{uint64(len(wantA)) + 5, nil},
			// A log position is no cursor: org-a's first one is past
			// all of its sequences.
			{wantA[0].Event.Position, nil},
			{math.MaxUint64, nil},
		}
		for _, tt := range tests {
			got, err := m.Audit.Events(ctx, a, projections.AuditQuery{After: tt.after})
			must(t, err)
			if len(got) != len(tt.want) || len(got) > 0 && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after %d: %v, want %v", tt.after, sequences(got), sequences(tt.want))
			}
		}
	})
}

// sequences lists the sequence and position of each event, for messages.
func sequences(events []projections.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%d@%d", e.Sequence, e.Event.Position)
	}
	return out
}
