package conversation

import (
	"context"
	"testing"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/eventstore"
)

// originRecorder keeps the origin each recorded turn event carried.
type originRecorder struct {
	Recorder
	origins []commands.Origin
}

func (r *originRecorder) RecordTurn(ctx context.Context, _ access.Principal, _ access.Decision, _ string, _ ...domain.Event) (commands.Result, error) {
	r.origins = append(r.origins, commands.OriginFrom(ctx))
	return commands.Result{}, nil
}

// TestFailInterruptedCarriesTheTurnsCorrelation: the failure recorded for a
// turn a stop cut short belongs to the narrative of the request that started
// the turn, caused by its TurnStarted, not to a correlation of its own.
func TestFailInterruptedCarriesTheTurnsCorrelation(t *testing.T) {
	open := NewOpenTurns()
	started := eventstore.Envelope{
		ID: eventstore.NewEventID(), Type: "TurnStarted",
		Stream:   eventstore.MustStreamName(conversations.Category, "org-a", "conv-1"),
		Metadata: eventstore.Metadata{OrgID: "org-a", CorrelationID: "req-1", TraceID: "trace-1"},
	}
	open.set(started, "turn-1", true) // what the projection does with a TurnStarted
	rec := &originRecorder{}
	if n, err := open.FailInterrupted(context.Background(), rec); err != nil || n != 1 {
		t.Fatalf("FailInterrupted = %d, %v", n, err)
	}
	want := commands.Origin{CorrelationID: "req-1", CausationID: started.ID.String(), TraceID: "trace-1"}
	if len(rec.origins) != 1 || rec.origins[0] != want {
		t.Fatalf("origins %+v, want %+v", rec.origins, want)
	}
}

// TestFailStartedBeforeLeavesRunningTurns: with replicas, only turns open
// since before the cutoff (past any turn's timeout) are failed; a turn
// started after it may be running on another replica and is left alone,
// also across a snapshot's State and Restore.
func TestFailStartedBeforeLeavesRunningTurns(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	turn := func(id string, at time.Time) eventstore.Envelope {
		return eventstore.Envelope{
			ID: eventstore.NewEventID(), Type: "TurnStarted",
			Stream:   eventstore.MustStreamName(conversations.Category, "org-a", "conv-"+id),
			Metadata: eventstore.Metadata{OrgID: "org-a", CorrelationID: "req-" + id, OccurredAt: at},
		}
	}
	open := NewOpenTurns()
	open.set(turn("old", now.Add(-5*time.Minute)), "turn-old", true)
	open.set(turn("new", now.Add(-10*time.Second)), "turn-new", true)
	restored := NewOpenTurns()
	restored.Restore(open.State())
	for name, o := range map[string]*OpenTurns{"live": open, "restored": restored} {
		rec := &originRecorder{}
		n, err := o.FailStartedBefore(context.Background(), rec, now.Add(-2*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("%s: FailStartedBefore = %d, %v; want the one old turn", name, n, err)
		}
		if len(rec.origins) != 1 || rec.origins[0].CorrelationID != "req-old" {
			t.Fatalf("%s: failed %+v, want the old turn only", name, rec.origins)
		}
	}
}
