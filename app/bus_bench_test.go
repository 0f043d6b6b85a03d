package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
)

// BenchmarkLiveProjection measures events/s from an append to every live
// projection having applied it: relay → Watermill GoChannel → cqrs event
// groups → in-memory read models.
func BenchmarkLiveProjection(b *testing.B) {
	h := newHarness(b)
	org, _ := h.createOrg("Bench", "owner")
	ctx := context.Background()
	const perAppend = 100
	b.ResetTimer()
	start := time.Now()
	var last uint64
	for i := 0; i < b.N; i++ {
		batch := make([]eventstore.NewEvent, perAppend)
		for j := range batch {
			data, _ := json.Marshal(bots.BotCreated{ID: fmt.Sprintf("b%d-%d", i, j), Name: "x"})
			batch[j] = eventstore.NewEvent{Type: "BotCreated", Metadata: eventstore.Metadata{OrgID: org, SchemaVersion: 1, OccurredAt: eventstore.Now()}, Data: data}
		}
		stream := eventstore.MustStreamName("benchbot", org, fmt.Sprintf("s%d", i))
		res, err := h.app.Store.Append(ctx, stream, eventstore.NoStream(), batch)
		if err != nil {
			b.Fatal(err)
		}
		last = res.LastPosition
	}
	appended := time.Since(start)
	if err := h.app.Engine.WaitFor(ctx, last); err != nil {
		b.Fatal(err)
	}
	b.Logf("appends took %s, projections caught up %s later", appended, time.Since(start)-appended)
	b.ReportMetric(float64(b.N*perAppend)/time.Since(start).Seconds(), "events/s")
}
