package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
)

// countingCheckpoint counts the writes that reach the durable checkpoint.
type countingCheckpoint struct {
	*eventstore.MemoryCheckpoint
	saves int
}

func (c *countingCheckpoint) Save(ctx context.Context, pos uint64) error {
	c.saves++
	return c.MemoryCheckpoint.Save(ctx, pos)
}

func TestPeriodicCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	durable := &countingCheckpoint{MemoryCheckpoint: eventstore.NewMemoryCheckpoint(10)}
	cp := kafka.NewPeriodicCheckpoint(durable, time.Hour)
	if pos, err := cp.Load(ctx); err != nil || pos != 10 {
		t.Fatalf("load = %d, %v; want the durable 10", pos, err)
	}
	for pos := uint64(11); pos <= 20; pos++ {
		if err := cp.Save(ctx, pos); err != nil {
			t.Fatal(err)
		}
	}
	// The first save writes through; the others wait for the interval.
	if got, _ := durable.Load(ctx); got != 11 || durable.saves != 1 {
		t.Fatalf("durable at %d after %d writes, want 11 after 1", got, durable.saves)
	}
	if pos, _ := cp.Load(ctx); pos != 20 {
		t.Fatalf("load = %d, want the latest 20", pos)
	}
	if err := cp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := durable.Load(ctx); got != 20 {
		t.Fatalf("durable at %d after Flush, want 20", got)
	}
	if err := cp.Flush(ctx); err != nil || durable.saves != 2 {
		t.Fatalf("a second Flush wrote again (%d writes, %v)", durable.saves, err)
	}
}
