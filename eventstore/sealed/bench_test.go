package sealed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/eventstore/sealed"
	"github.com/palisadehq/palisade/identity"
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
		for _, mode := range []string{"off", "on", "on+chain"} {
			b.Run(fmt.Sprintf("sealing=%s/writers=%d", mode, writers), func(b *testing.B) {
				ctx := context.Background()
				inner, err := embedded.Open(ctx, filepath.Join(b.TempDir(), "events.db"))
				if err != nil {
					b.Fatal(err)
				}
				var store eventstore.Store = inner
				if mode != "off" {
					master, _ := sealing.GenerateMasterKey()
					keys, err := keyring.Open(filepath.Join(b.TempDir(), "keys"), master)
					if err != nil {
						b.Fatal(err)
					}
					store = sealed.New(inner, sealed.NewSealer(events.NewRegistry(), keys))
				}
				defer store.Close()
				if mode == "on+chain" {
					// The audit chainer follows the log as stored while the
					// writers append, as in palisade serve: it shares the
					// CPU and the data directory's disk with them.
					stop := startChainer(b, inner)
					defer stop()
				}
				appendLoop(b, store, writers, data)
			})
		}
	}
}

// startChainer runs an audit chainer over log, with its own record and
// signing key, until the returned stop is called; stop reports how far
// behind the log it was left.
func startChainer(b *testing.B, log *embedded.Store) (stop func()) {
	b.Helper()
	dir := b.TempDir()
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		b.Fatal(err)
	}
	record, err := chain.OpenRecord(context.Background(), filepath.Join(dir, chain.RecordFile))
	if err != nil {
		b.Fatal(err)
	}
	chainer := chain.NewChainer(log, record, issuer, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = chainer.Run(ctx)
	}()
	return func() {
		head, _ := log.Head(context.Background())
		chained, _ := record.Position(context.Background())
		b.ReportMetric(float64(head-chained), "unchained-at-end")
		cancel()
		<-done
		_ = record.Close()
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
