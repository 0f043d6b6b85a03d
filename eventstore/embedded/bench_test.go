package embedded

import (
	"fmt"
	"testing"

	"github.com/palisadehq/palisade/eventstore/storetest"
)

// Run with, for example:
//
//	go test -run XXX -bench . -benchtime 20000x ./eventstore/embedded/
//
// Appends are durable (fsynced) in every benchmark.

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			storetest.BenchmarkAppend(b, mustOpen(b, tempPath(b), defaultConfig()), writers)
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	for _, tail := range []int{0, defaultConfig().tailSize} {
		b.Run(fmt.Sprintf("tail=%d", tail), func(b *testing.B) {
			cfg := defaultConfig()
			cfg.tailSize = tail
			storetest.BenchmarkReadAll(b, mustOpen(b, tempPath(b), cfg), 50_000)
		})
	}
}
