package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/palisadehq/palisade/eventstore"
)

// RunBenchmarks runs the port's benchmarks: appends of one event by 1 and
// by 64 concurrent writers, and a scan of the whole log. Each reports
// events/s.
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) eventstore.Store) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("Append/writers=%d", writers), func(b *testing.B) {
			BenchmarkAppend(b, newStore(b), writers)
		})
	}
	b.Run("ReadAll", func(b *testing.B) {
		BenchmarkReadAll(b, newStore(b), 50_000)
	})
}

// BenchmarkAppend appends b.N single-event appends to store from writers
// goroutines, each on its own stream with an exact expected version, and
// reports events/s.
func BenchmarkAppend(b *testing.B, store eventstore.Store, writers int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			st := eventstore.MustStreamName("bench", "org1", fmt.Sprint(w))
			expected := eventstore.NoStream()
			for next.Add(1) <= int64(b.N) {
				res, err := store.Append(ctx, st, expected, []eventstore.NewEvent{event("org1", "Benchmarked", w)})
				if err != nil {
					b.Errorf("writer %d: %v", w, err)
					return
				}
				expected = eventstore.Exact(res.LastVersion)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadAll fills store with events, then scans the whole log with
// ReadAll in pages of 1000 b.N times, and reports events/s.
func BenchmarkReadAll(b *testing.B, store eventstore.Store, events int) {
	ctx := context.Background()
	const perAppend = 500
	for i := 0; i < events; i += perAppend {
		st := eventstore.MustStreamName("bench", fmt.Sprintf("org%d", i%5), fmt.Sprint(i))
		evs := make([]eventstore.NewEvent, min(perAppend, events-i))
		for j := range evs {
			evs[j] = event(st.OrgID, "Benchmarked", i+j)
		}
		if _, err := store.Append(ctx, st, eventstore.NoStream(), evs); err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var after uint64
		n := 0
		for {
			page, err := store.ReadAll(ctx, after, eventstore.Filter{}, 1000)
			if err != nil {
				b.Fatalf("ReadAll: %v", err)
			}
			if len(page) == 0 {
				break
			}
			n += len(page)
			after = page[len(page)-1].Position
		}
		if n != events {
			b.Fatalf("scanned %d events, want %d", n, events)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
