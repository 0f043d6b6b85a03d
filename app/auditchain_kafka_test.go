package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/identity"
)

// TestAuditCheckpointsReachKafka: with Kafka on, the audit chain publishes
// every signed checkpoint, the very ones GET /v1/audit/checkpoints lists,
// to the checkpoint topic (one topic, or one per organization with
// KafkaTopicPerOrg), keyed by its organization and marked AuditCheckpoint;
// each verifies against the published JWKS, and a per-organization topic
// carries no other organization's checkpoint.
func TestAuditCheckpointsReachKafka(t *testing.T) {
	t.Parallel()
	for _, perOrg := range []bool{false, true} {
		t.Run(fmt.Sprintf("perOrg=%v", perOrg), func(t *testing.T) {
			t.Parallel()
			brokers := kafkaForTest(t)
			a, err := app.Open(context.Background(), app.Config{
				DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				KafkaBrokers: brokers, KafkaTopicPerOrg: perOrg, AuditCheckpointInterval: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("open app: %v", err)
			}
			h := &harness{t: t, app: a, srv: httptest.NewServer(a.Handler())}
			t.Cleanup(h.close)
			h.platform = h.mint(identity.Claims{Kind: identity.KindPlatform}, "platform-ops")
			orgA, ownerA := h.createOrg("Alpha", "alice")
			orgB, ownerB := h.createOrg("Beta", "bob")
			for i := range 3 {
				h.createBot(ownerA, fmt.Sprintf("a-%d", i))
				h.createBot(ownerB, fmt.Sprintf("b-%d", i))
			}
			keys, err := chain.KeysFromJWKS(h.must(http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", nil).body)
			if err != nil {
				t.Fatal(err)
			}

			// What the API lists once the chain has caught up.
			listed := map[string][]chain.Checkpoint{}
			for org, owner := range map[string]string{orgA: ownerA, orgB: ownerB} {
				deadline := time.Now().Add(15 * time.Second)
				for {
					var report chain.Report
					var page checkpointPage
					h.must(http.StatusOK, http.MethodGet, "/v1/audit/verify", owner, nil).json(t, &report)
					h.must(http.StatusOK, http.MethodGet, "/v1/audit/checkpoints?limit=500", owner, nil).json(t, &page)
					n := len(page.Items)
					if report.Pending == 0 && n > 0 && page.Items[n-1].Seq == report.VerifiedThroughSeq {
						listed[org] = page.Items
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the chain of %s did not catch up: %+v, %d checkpoints", org, report, n)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}

			topics := map[string]string{} // topic → the organization it is for ("" for all)
			for _, org := range []string{orgA, orgB} {
				topic, err := kafka.CheckpointTopic(org, perOrg)
				if err != nil {
					t.Fatal(err)
				}
				if perOrg {
					topics[topic] = org
				} else {
					topics[topic] = ""
				}
			}
			names := make([]string, 0, len(topics))
			for topic := range topics {
				names = append(names, topic)
			}
			client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(names...),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			published := map[string]map[uint64]chain.Checkpoint{orgA: {}, orgB: {}}
			complete := func() bool {
				for org, want := range listed {
					for _, c := range want {
						if _, ok := published[org][c.Seq]; !ok {
							return false
						}
					}
				}
				return true
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for !complete() {
				fetches := client.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("not every listed checkpoint reached Kafka: listed %d+%d, published %d+%d",
						len(listed[orgA]), len(listed[orgB]), len(published[orgA]), len(published[orgB]))
				}
				fetches.EachRecord(func(r *kgo.Record) {
					var c chain.Checkpoint
					if err := json.Unmarshal(r.Value, &c); err != nil {
						t.Errorf("a record of %s is no checkpoint: %v", r.Topic, err)
						return
					}
					if err := c.VerifySignature(keys); err != nil {
						t.Errorf("checkpoint %s/%d from Kafka: %v", c.OrgID, c.Seq, err)
					}
					if string(r.Key) != c.OrgID {
						t.Errorf("checkpoint of %s keyed %q", c.OrgID, r.Key)
					}
					if want := topics[r.Topic]; want != "" && want != c.OrgID {
						t.Errorf("topic %s (of %s) carries a checkpoint of %s", r.Topic, want, c.OrgID)
					}
					typ := ""
					for _, hd := range r.Headers {
						if hd.Key == eventstore.MetaType {
							typ = string(hd.Value)
						}
					}
					if typ != "AuditCheckpoint" {
						t.Errorf("checkpoint %s/%d has type header %q", c.OrgID, c.Seq, typ)
					}
					if _, ok := published[c.OrgID]; !ok {
						t.Errorf("a checkpoint of an unknown organization %q", c.OrgID)
						return
					}
					published[c.OrgID][c.Seq] = c
				})
			}
			for org, want := range listed {
				for _, c := range want {
					got := published[org][c.Seq]
					if got.Head != c.Head || got.KeyID != c.KeyID || string(got.Signature) != string(c.Signature) {
						t.Errorf("checkpoint %s/%d on Kafka differs from the API's: %+v vs %+v", org, c.Seq, got, c)
					}
				}
			}
		})
	}
}
