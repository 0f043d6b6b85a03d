package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

func TestAppendRetryDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing int
		expected eventstore.ExpectedVersion
	}{
		{"no stream", 0, eventstore.NoStream()},
		{"exact", 2, eventstore.Exact(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st := eventstore.MustStreamName("bot", "org1", "b1")
			if tt.existing > 0 {
				for i := range tt.existing {
					b.append(t, st, eventstore.Any(), event("org1", "Before", i))
				}
			}
			evs := []eventstore.NewEvent{event("org1", "Created", 1), event("org1", "Renamed", 2)}
			first := b.append(t, st, tt.expected, evs...)
			stored := b.server.Events()

			// The same append again, as a caller retries after a timeout:
			// the same derived ids, recognised by the server.
			again := b.append(t, st, tt.expected, evs...)
			if again != first {
				t.Fatalf("retry answered %+v, first append %+v", again, first)
			}
			if n := b.server.Events(); n != stored {
				t.Fatalf("retry wrote %d events", n-stored)
			}
			got := b.readStream(t, st)
			if len(got) != tt.existing+2 {
				t.Fatalf("stream has %d events, want %d", len(got), tt.existing+2)
			}
			if got[tt.existing].ID == uuid.Nil || got[tt.existing].ID.Version() != 8 {
				t.Fatalf("derived id %s is not a version 8 UUID", got[tt.existing].ID)
			}

			// A different append at the same version is a conflict, not a
			// retry: its metadata differs.
			other := evs[0]
			other.Actor.Subject = "someone-else"
			if _, err := b.store.Append(b.ctx, st, tt.expected, []eventstore.NewEvent{other, evs[1]}); !errors.Is(err, eventstore.ErrConflict) {
				t.Fatalf("Append of other events at the same version = %v, want ErrConflict", err)
			}
		})
	}
}

func TestAppendAnyGetsFreshIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := eventstore.MustStreamName("kb", "org1", "k")
	// Equal content appended twice with Any is two events, not a retry.
	b.append(t, st, eventstore.Any(), event("org1", "Tick", 0))
	b.append(t, st, eventstore.Any(), event("org1", "Tick", 0))
	got := b.readStream(t, st)
	if len(got) != 2 || got[0].ID == got[1].ID || got[0].ID.Version() != 7 {
		t.Fatalf("stream holds %+v, want two events with distinct UUIDv7 ids", got)
	}

	// A caller that sets the id itself gets KurrentDB's recognition of a
	// retried Any append.
	e := event("org1", "Tock", 1)
	e.ID = eventstore.NewEventID()
	first := b.append(t, st, eventstore.Any(), e)
	again := b.append(t, st, eventstore.Any(), e)
	if again != first {
		t.Fatalf("retry answered %+v, first append %+v", again, first)
	}
	if got := b.readStream(t, st); len(got) != 3 {
		t.Fatalf("stream has %d events after a retried Any append, want 3", len(got))
	}
}

// idInputs are what derivedID derives from.
type idInputs struct {
	stream   string
	expected eventstore.ExpectedVersion
	index    int
	typ      string
	data     []byte
	metadata []byte
}

func (in idInputs) id() uuid.UUID {
	return derivedID(in.stream, in.expected, in.index, in.typ, in.data, in.metadata)
}

func TestDerivedID(t *testing.T) {
	t.Parallel()
	base := idInputs{"bot-org1_b", eventstore.Exact(3), 0, "Created", []byte(`{"a":1}`), []byte(`{"org_id":"org1"}`)}
	id := base.id()
	if id != base.id() {
		t.Fatal("the same inputs gave different ids")
	}
	if id.Version() != 8 || id.Variant() != uuid.RFC4122 {
		t.Fatalf("id %s is version %d variant %v, want version 8 of RFC 9562", id, id.Version(), id.Variant())
	}
	tests := []struct {
		name   string
		change func(*idInputs)
	}{
		{"stream", func(in *idInputs) { in.stream = "bot-org1_c" }},
		{"expected version", func(in *idInputs) { in.expected = eventstore.Exact(4) }},
		{"no stream", func(in *idInputs) { in.expected = eventstore.NoStream() }},
		{"index", func(in *idInputs) { in.index = 1 }},
		{"type", func(in *idInputs) { in.typ = "Deleted" }},
		{"data", func(in *idInputs) { in.data = []byte(`{"a":2}`) }},
		{"metadata", func(in *idInputs) { in.metadata = []byte(`{"org_id":"org2"}`) }},
		// Length prefixes keep text moving from one field to the next
		// from giving the same id.
		{"boundary", func(in *idInputs) { in.data, in.metadata = []byte(`{"a":1`), []byte(`}{"org_id":"org1"}`) }},
	}
	for _, tt := range tests {
		in := base
		tt.change(&in)
		if in.id() == id {
			t.Errorf("changing the %s kept the id", tt.name)
		}
	}
}

func TestAppendRefusesBeforeTheNetwork(t *testing.T) {
	t.Parallel()
	st := eventstore.MustStreamName("bot", "org1", "b1")
	tests := []struct {
		name   string
		events []eventstore.NewEvent
		want   error
	}{
		{"other org", []eventstore.NewEvent{event("org2", "X", 0)}, eventstore.ErrOrgMismatch},
		{"second of two in another org", []eventstore.NewEvent{event("org1", "X", 0), event("org2", "X", 1)}, eventstore.ErrOrgMismatch},
		{"system type", []eventstore.NewEvent{event("org1", "$metadata", 0)}, eventstore.ErrInvalidEvent},
		{"bad data", []eventstore.NewEvent{{Type: "X", Metadata: eventstore.Metadata{OrgID: "org1"}, Data: json.RawMessage(`{`)}}, eventstore.ErrInvalidEvent},
	}

	t.Run("server sees nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, tt := range tests {
			if _, err := b.store.Append(b.ctx, st, eventstore.Any(), tt.events); !errors.Is(err, tt.want) {
				t.Fatalf("%s: Append = %v, want %v", tt.name, err, tt.want)
			}
		}
		if n := b.server.AppendCalls(); n != 0 {
			t.Fatalf("%d refused appends reached the server", n)
		}
	})

	t.Run("no server at all", func(t *testing.T) {
		t.Parallel()
		// Nothing listens here, and a call that went to the network would
		// wait a minute for it: the refusals come first.
		s := mustOpen(t, "esdb://"+freeAddr(t)+"?tls=false", WithStartupWait(time.Minute))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, tt := range tests {
			if _, err := s.Append(ctx, st, eventstore.NoStream(), tt.events); !errors.Is(err, tt.want) {
				t.Fatalf("%s: Append = %v, want %v", tt.name, err, tt.want)
			}
		}
	})
}

func TestAppendResultPositionsMatchTheLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := eventstore.MustStreamName("bot", "org1", "b1")
	one := b.append(t, st, eventstore.NoStream(), event("org1", "A", 0))
	b.server.AppendSystemEvent("$stats-127.0.0.1:2113", "$statsCollected")
	three := b.append(t, st, eventstore.Exact(0), event("org1", "B", 1), event("org1", "C", 2), event("org1", "D", 3))
	all := b.readAll(t, 0, eventstore.Filter{})
	if len(all) != 4 {
		t.Fatalf("log has %d events, want 4", len(all))
	}
	if one.FirstPosition != all[0].Position || one.LastPosition != all[0].Position {
		t.Fatalf("single append at %d..%d, log has it at %d", one.FirstPosition, one.LastPosition, all[0].Position)
	}
	if three.FirstPosition != all[1].Position || three.LastPosition != all[3].Position {
		t.Fatalf("three-event append at %d..%d, log has %v", three.FirstPosition, three.LastPosition, positions(all))
	}
	// Positions are byte offsets: sparse.
	if all[1].Position == all[0].Position+1 {
		t.Fatalf("positions %v are consecutive; the in-test server should make them sparse like KurrentDB", positions(all))
	}
	for _, env := range b.readStream(t, st) {
		if env.Position != all[env.StreamVersion].Position {
			t.Fatalf("ReadStream gives version %d position %d, ReadAll %d", env.StreamVersion, env.Position, all[env.StreamVersion].Position)
		}
	}
}
