package consumer

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestTrackerWakesOnlySatisfiedWaiters(t *testing.T) {
	t.Parallel()
	tr := newTracker()
	var wg sync.WaitGroup
	done := make([]chan struct{}, 5)
	for i := range done {
		done[i] = make(chan struct{})
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := tr.Wait(context.Background(), uint64(i+1)*10); err == nil {
				close(done[i])
			}
		}(i)
	}
	// Let the waiters register.
	for {
		tr.mu.Lock()
		n := len(tr.waiters)
		tr.mu.Unlock()
		if n == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	tr.Advance(25)
	for i, ch := range done {
		select {
		case <-ch:
			if i >= 2 {
				t.Fatalf("waiter for %d woke at 25", (i+1)*10)
			}
		case <-time.After(time.Second):
			if i < 2 {
				t.Fatalf("waiter for %d not woken at 25", (i+1)*10)
			}
		}
	}
	tr.Advance(20) // going back changes nothing
	if tr.Position() != 25 {
		t.Fatalf("position %d", tr.Position())
	}
	tr.Advance(50)
	wg.Wait()
	if len(tr.waiters) != 0 {
		t.Fatalf("%d waiters left", len(tr.waiters))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := tr.Wait(ctx, 99); err == nil {
		t.Fatal("wait for an unreached position returned")
	}
	if len(tr.waiters) != 0 {
		t.Fatal("a waiter that gave up was kept")
	}
}
