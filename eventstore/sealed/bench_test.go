package sealed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/sealed"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// BenchmarkAppend compares durable appends of a conversation message
// (TurnStarted, 512 bytes of content) to the embedded log with sealing off
// (the inner store) and on (the decorator). Run with:
//
//	go test -run '^$' -bench Append -benchtime 20000x ./eventstore/sealed/
func BenchmarkAppend(b *testing.B) {
	message := strings.Repeat("What is our leave policy? ", 20)[:512]
	data, _ := json.Marshal(map[string]any{"turn_id": "t1", "message_id": "m1", "content": message, "content_sha256": "x", "content_size": 512})
	for _, writers := range []int{1, 64} {
		for _, mode := range []string{"off", "on"} {
			b.Run(fmt.Sprintf("sealing=%s/writers=%d", mode, writers), func(b *testing.B) {
				ctx := context.Background()
				inner, err := embedded.Open(ctx, filepath.Join(b.TempDir(), "events.db"))
				if err != nil {
					b.Fatal(err)
				}
				var store eventstore.Store = inner
				if mode == "on" {
					master, _ := sealing.GenerateMasterKey()
					keys, err := keyring.Open(filepath.Join(b.TempDir(), "keys"), master)
					if err != nil {
						b.Fatal(err)
					}
					store = sealed.New(inner, sealed.NewSealer(events.NewRegistry(), keys))
				}
				defer store.Close()
				appendLoop(b, store, writers, data)
			})
		}
	}
}

func appendLoop(b *testing.B, store eventstore.Store, writers int, data []byte) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			st := eventstore.MustStreamName("conversation", "org1", fmt.Sprint(w))
			expected := eventstore.NoStream()
			for next.Add(1) <= int64(b.N) {
				e := newEvent("org1", "TurnStarted", string(data))
				res, err := store.Append(ctx, st, expected, []eventstore.NewEvent{e})
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

// BenchmarkSealOpen measures sealing and opening one payload alone, without
// the log.
func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	master, _ := sealing.GenerateMasterKey()
	sealer := sealed.NewSealer(events.NewRegistry(), keyring.NewMemory(master))
	data, _ := json.Marshal(map[string]any{"turn_id": "t1", "message_id": "m1", "content": strings.Repeat("x", 512), "content_sha256": "x", "content_size": 512})
	id := eventstore.NewEventID()
	b.ReportAllocs()
	for b.Loop() {
		s, err := sealer.Seal(ctx, "org1", id, "TurnStarted", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sealer.OpenData(ctx, eventstore.Envelope{ID: id, Type: "TurnStarted", Data: s, Metadata: eventstore.Metadata{OrgID: "org1"}}); err != nil {
			b.Fatal(err)
		}
	}
}
