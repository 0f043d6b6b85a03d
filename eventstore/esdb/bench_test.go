package esdb

import (
	"fmt"
	"testing"

	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/eventstore/storetest"
)

// Run with, for example:
//
//	go test -run XXX -bench Append -benchtime 5000x ./eventstore/esdb/
//	go test -run XXX -bench ReadAll -benchtime 5x ./eventstore/esdb/
//
// against the in-test server, or against KurrentDB with
// PALISADE_TEST_ESDB_URL set (each benchmark in a namespace of its own).
// The in-test server measures the adapter and the client, not KurrentDB.

func benchStore(b *testing.B) *Store {
	if url := realServer(); url != "" {
		return mustOpen(b, url, WithNamespace(uniqueNamespace(b)))
	}
	return mustOpen(b, esdbtest.New(b).URL())
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			storetest.BenchmarkAppend(b, benchStore(b), writers)
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	storetest.BenchmarkReadAll(b, benchStore(b), 20_000)
}
