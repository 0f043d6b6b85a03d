package chain_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/eventstore/embedded"
	"github.com/palisadehq/palisade/identity"
)

// BenchmarkVerify measures palisade audit verify's work over an embedded
// log of PALISADE_BENCH_EVENTS events (default 1,000,000) of 10
// organizations: the chainer first chains it all (its throughput is
// reported as chain-events/s), then each iteration verifies the whole log
// (verify-events/s). Building the log is not timed.
//
//	go test -run XXX -bench Verify -benchtime 1x ./audit/chain/
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	total := 1_000_000
	if v := os.Getenv("PALISADE_BENCH_EVENTS"); v != "" {
		total, _ = strconv.Atoi(v)
	}
	dir := b.TempDir()
	store, err := embedded.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	orgs := make([]string, 10)
	for i := range orgs {
		orgs[i] = uuid.NewString()
	}
	const perAppend = 500
	for n := 0; n < total; n += perAppend {
		org := orgs[(n/perAppend)%len(orgs)]
		events := make([]eventstore.NewEvent, perAppend)
		for i := range events {
			events[i] = eventstore.NewEvent{
				Type: "BotUpdated",
				Metadata: eventstore.Metadata{OrgID: org, SchemaVersion: 1, CorrelationID: uuid.NewString(),
					Actor: eventstore.Actor{Subject: "user-1", Kind: "user", Roles: []string{"owner"}}},
				Data: json.RawMessage(fmt.Sprintf(`{"name":"bot %d","instructions":"answer from the handbook only","n":%d}`, n, i)),
			}
		}
		stream := eventstore.MustStreamName("bot", org, fmt.Sprintf("b%d", n))
		if _, err := store.Append(ctx, stream, eventstore.NoStream(), events); err != nil {
			b.Fatal(err)
		}
	}
	issuer, err := identity.LoadOrCreateIssuer(dir, "palisade", "palisade")
	if err != nil {
		b.Fatal(err)
	}
	record, err := chain.OpenRecord(ctx, filepath.Join(dir, chain.RecordFile))
	if err != nil {
		b.Fatal(err)
	}
	defer record.Close()
	chainer := chain.NewChainer(store, record, issuer, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	if n, err := chainer.CatchUp(ctx); err != nil || n != total {
		b.Fatalf("chained %d (%v)", n, err)
	}
	chainRate := float64(total) / time.Since(start).Seconds()
	jwks, _ := issuer.JWKS()
	keys, err := chain.KeysFromJWKS(jwks)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		reports, err := chain.Verify(ctx, store, record, keys, "")
		if err != nil {
			b.Fatal(err)
		}
		var events uint64
		for _, r := range reports {
			if !r.OK {
				b.Fatalf("clean log has findings: %+v", r)
			}
			events += r.Events
		}
		if events != uint64(total) {
			b.Fatalf("verified %d events, want %d", events, total)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "verify-events/s")
	// On a shared machine the wall clock says little; events per second
	// of the process's CPU time (both cores) says what verification costs.
	b.ReportMetric(float64(total)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "verify-events/cpu-s")
	b.ReportMetric(chainRate, "chain-events/s")
}

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
