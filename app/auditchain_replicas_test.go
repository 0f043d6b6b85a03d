package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/sealing"
)

// holdsRole reports whether the replica holds a single-active role now,
// from its palisade_leader gauge.
func holdsRole(t *testing.T, h *harness, role string) bool {
	t.Helper()
	families, err := h.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "palisade_leader" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "role" && l.GetValue() == role {
					return m.GetGauge().GetValue() == 1
				}
			}
		}
	}
	return false
}

// chainSeen is what one replica answers about an organization's chain.
type chainSeen struct {
	report      chain.Report
	checkpoints []chain.Checkpoint
}

// caughtUp waits until the replica's answer covers every event of the
// organization in the log, up to a checkpoint at its head, and returns it.
func caughtUp(t *testing.T, h *harness, auditor string) chainSeen {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s chainSeen
		var page checkpointPage
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/verify", auditor, nil).json(t, &s.report)
		h.must(http.StatusOK, http.MethodGet, "/v1/audit/checkpoints?limit=500", auditor, nil).json(t, &page)
		s.checkpoints = page.Items
		n := len(s.checkpoints)
		if s.report.Pending == 0 && s.report.Events > 0 && n > 0 && s.checkpoints[n-1].Seq == s.report.VerifiedThroughSeq {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chain did not catch up: %+v, %d checkpoints", s.report, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditChainAcrossReplicas: two replicas on one EventStoreDB log, one
// PostgreSQL schema and one Kafka. The audit chain is one for the
// deployment: one replica holds the chainer's role; both answer
// GET /v1/audit/verify and /v1/audit/checkpoints alike, from the one
// record; each checkpoint is signed once and reaches Kafka once (not once
// per replica). When the holder stops, the other replica takes the role
// and the chain continues from the shared record: later events are chained
// and checkpointed with no gap and no fork, and everything verifies.
func TestAuditChainAcrossReplicas(t *testing.T) {
	t.Parallel()
	keySet, _ := writeKeySet(t, 1)
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	owner, appURL, schema := postgresForTest(t, dirA)
	logURL := esdbForTest(t, dirA)
	brokers := kafkaForTest(t)
	replica := func(dir string) *harness {
		return openHarnessWith(t, dir, func(cfg *app.Config) {
			cfg.PostgresOwnerURL, cfg.PostgresURL, cfg.PostgresSchema = owner, appURL, schema
			cfg.EventStoreURL = logURL
			cfg.KafkaBrokers = brokers
			cfg.IssuerKeys = keySet                            // the replicas sign alike
			cfg.MasterKey = sealing.NewSecret(master.Encode()) // and open alike
			cfg.AuditCheckpointInterval = 100 * time.Millisecond
		})
	}
	replicas := []*harness{replica(dirA), replica(dirB)}

	org, ownerTok := replicas[0].createOrg("Acme", "alice")
	auditor := replicas[0].addMember(org, ownerTok, "audrey", "auditor")
	for i := range 6 {
		h := replicas[i%2]
		h.waitFor(t, func() bool { return h.do(http.MethodGet, "/v1/bots", ownerTok, nil).status == http.StatusOK })
		h.createBot(ownerTok, fmt.Sprintf("bot-%d", i))
	}
	keys, err := chain.KeysFromJWKS(replicas[0].must(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", nil).body)
	if err != nil {
		t.Fatal(err)
	}

	// Both replicas answer alike, from one record.
	seenA := caughtUp(t, replicas[0], auditor)
	seenB := caughtUp(t, replicas[1], auditor)
	if seenA.report.VerifiedThroughSeq != seenB.report.VerifiedThroughSeq {
		// One may have answered before a later checkpoint: ask again.
		seenA = caughtUp(t, replicas[0], auditor)
	}
	ja, _ := json.Marshal(seenA)
	reportA, _ := json.Marshal(seenA.report)
	reportB, _ := json.Marshal(seenB.report)
	if !bytes.Equal(reportA, reportB) {
		t.Errorf("the replicas verify differently:\nA %s\nB %s", reportA, reportB)
	}
	if !seenA.report.OK || seenA.report.Events != seenA.report.VerifiedThroughSeq {
		t.Errorf("verify: %s", ja)
	}
	sameCheckpoints := func(a, b []chain.Checkpoint) bool {
		ca, _ := json.Marshal(a)
		cb, _ := json.Marshal(b)
		return bytes.Equal(ca, cb)
	}
	if !sameCheckpoints(seenA.checkpoints, seenB.checkpoints) {
		t.Errorf("the replicas list different checkpoints (each signed its own?):\nA %+v\nB %+v", seenA.checkpoints, seenB.checkpoints)
	}

	// One replica holds the chainer.
	var holder, other int
	switch a, b := holdsRole(t, replicas[0], "audit-chain"), holdsRole(t, replicas[1], "audit-chain"); {
	case a && !b:
		holder, other = 0, 1
	case b && !a:
		holder, other = 1, 0
	default:
		t.Fatalf("audit chain role held by A %v, by B %v; want exactly one", a, b)
	}

	// Every checkpoint reaches Kafka once, not once per replica.
	topic, err := kafka.CheckpointTopic(org, false)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	published := map[uint64][]chain.Checkpoint{}
	consume := func(want []chain.Checkpoint) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		complete := func() bool {
			for _, c := range want {
				if len(published[c.Seq]) == 0 {
					return false
				}
			}
			return true
		}
		for !complete() {
			fetches := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("not every listed checkpoint reached Kafka: %d listed, %d seqs published", len(want), len(published))
			}
			fetches.EachRecord(func(r *kgo.Record) {
				var c chain.Checkpoint
				if err := json.Unmarshal(r.Value, &c); err != nil {
					t.Errorf("a record of %s is no checkpoint: %v", r.Topic, err)
					return
				}
				if c.OrgID == org {
					published[c.Seq] = append(published[c.Seq], c)
				}
			})
		}
	}
	consume(seenA.checkpoints)
	// A moment more: a second replica's copies would come now.
	linger, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	for linger.Err() == nil {
		consumer.PollFetches(linger).EachRecord(func(r *kgo.Record) {
			var c chain.Checkpoint
			if json.Unmarshal(r.Value, &c) == nil && c.OrgID == org {
				published[c.Seq] = append(published[c.Seq], c)
			}
		})
	}
	cancel()
	for _, c := range seenA.checkpoints {
		if got := published[c.Seq]; len(got) != 1 || !sameCheckpoints(got, []chain.Checkpoint{c}) {
			t.Errorf("checkpoint at seq %d reached Kafka %d times: %+v; want once, as listed: %+v", c.Seq, len(got), got, c)
		}
	}

	// The holder stops; the other takes the chain over and continues it.
	before := seenA
	replicas[holder].close()
	survivor := replicas[other]
	for i := range 4 {
		survivor.createBot(ownerTok, fmt.Sprintf("after-%d", i))
	}
	deadline := time.Now().Add(30 * time.Second)
	for !holdsRole(t, survivor, "audit-chain") {
		if time.Now().After(deadline) {
			t.Fatal("the surviving replica did not take the audit chain over")
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := caughtUp(t, survivor, auditor)
	for after.report.VerifiedThroughSeq <= before.report.VerifiedThroughSeq+4 && time.Now().Before(deadline) {
		after = caughtUp(t, survivor, auditor)
	}
	r := after.report
	if !r.OK || len(r.Findings) != 0 || r.Events != r.VerifiedThroughSeq || r.VerifiedThroughSeq < before.report.VerifiedThroughSeq+4 {
		t.Fatalf("after the failover: %+v; want every event verified, %d and more", r, before.report.VerifiedThroughSeq+4)
	}
	if len(after.checkpoints) <= len(before.checkpoints) || !sameCheckpoints(after.checkpoints[:len(before.checkpoints)], before.checkpoints) {
		t.Errorf("the checkpoints after the failover do not extend those before:\nbefore %+v\nafter %+v", before.checkpoints, after.checkpoints)
	}
	for i, c := range after.checkpoints {
		if err := c.VerifySignature(keys); err != nil {
			t.Errorf("checkpoint %d: %v", c.Seq, err)
		}
		if i > 0 && c.Seq <= after.checkpoints[i-1].Seq {
			t.Errorf("checkpoint seq %d after %d", c.Seq, after.checkpoints[i-1].Seq)
		}
	}
	// Kafka carries the new checkpoints too; a seq is never published as
	// two different checkpoints (a repeat of the same one, in the moment of
	// a failover, is allowed).
	consume(after.checkpoints)
	for seq, got := range published {
		for _, c := range got[1:] {
			if !sameCheckpoints([]chain.Checkpoint{c}, got[:1]) {
				t.Errorf("two different checkpoints published at seq %d: %+v", seq, got)
			}
		}
	}
}
