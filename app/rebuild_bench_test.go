package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/eventstore"
)

// BenchmarkRebuild measures a rebuild of every in-memory read model from
// a log of 50,000 bot events across 10 organizations.
func BenchmarkRebuild(b *testing.B) {
	h := newHarness(b)
	ctx := context.Background()
	var orgs []string
	for i := 0; i < 10; i++ {
		org, _ := h.createOrg(fmt.Sprintf("Org %d", i), "owner")
		orgs = append(orgs, org)
	}
	for i := 0; i < 500; i++ {
		batch := make([]eventstore.NewEvent, 100)
		org := orgs[i%len(orgs)]
		for j := range batch {
			data, _ := json.Marshal(bots.BotCreated{ID: eventstore.NewEventID().String(), Name: "bot", Instructions: "Answer briefly and cite sources."})
			batch[j] = eventstore.NewEvent{Type: "BotCreated", Metadata: eventstore.Metadata{
				OrgID: org, SchemaVersion: 1, OccurredAt: eventstore.Now(), CorrelationID: "c", CausationID: "c",
				Actor: eventstore.Actor{Subject: "owner", Kind: "user", Roles: []string{"owner"}},
			}, Data: data}
		}
		// One stream per event batch keeps the log realistic enough: the
		// rebuild cost is per event, not per stream.
		if _, err := h.app.Store.Append(ctx, eventstore.MustStreamName("bot", org, fmt.Sprintf("s%d", i)), eventstore.NoStream(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var events uint64
	for b.Loop() {
		n, _, err := h.app.MeasureRebuild(ctx)
		if err != nil {
			b.Fatal(err)
		}
		events += n
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
