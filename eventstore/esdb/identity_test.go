package esdb

import (
	"sync"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
)

func TestLogIDIsSharedByEveryStoreOfTheLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	stream := eventstore.StreamName{Category: "bot", OrgID: "o1", EntityID: "b1"}
	res := b.append(t, stream, eventstore.NoStream(), event("o1", "BotCreated", 1))

	// Replicas asking at the same time, on a log without an identity yet,
	// agree on one.
	replicas := []*Store{b.store, mustOpen(t, b.server.URL()), mustOpen(t, b.server.URL())}
	ids := make([]string, len(replicas))
	var wg sync.WaitGroup
	for i, s := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := s.LogID(b.ctx)
			if err != nil {
				t.Errorf("replica %d: LogID: %v", i, err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Fatalf("replicas of one log have ids %q, want one non-empty id", ids)
	}
	restarted := mustOpen(t, b.server.URL())
	if got, err := restarted.LogID(b.ctx); err != nil || got != ids[0] {
		t.Errorf("after a restart LogID = %q, %v; want %q", got, err, ids[0])
	}

	// The identity is not an event of the log.
	if head, err := b.store.Head(b.ctx); err != nil || head != res.LastPosition {
		t.Errorf("Head = %d, %v; want the last event's %d", head, err, res.LastPosition)
	}
	if envs := b.readAll(t, 0, eventstore.Filter{}); len(envs) != 1 {
		t.Errorf("ReadAll holds %d events, want the one appended", len(envs))
	}

	// Another namespace is another log.
	other := mustOpen(t, b.server.URL(), WithNamespace(uniqueNamespace(t)))
	if id, err := other.LogID(b.ctx); err != nil || id == "" || id == ids[0] {
		t.Errorf("another namespace's LogID = %q, %v; want an id of its own", id, err)
	}
}
