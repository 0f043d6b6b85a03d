package app

import (
	"context"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
)

// startAuditChain opens the audit chain's record in the data directory
// (whatever the read models: it is a witness, never rebuilt from the log),
// sets the query service, and starts the Chainer over a.Log, the log as
// stored (content sealed): the chain must cover that form, so that it
// still verifies after an organization's key is destroyed. Checkpoints go to Kafka when it is on.
func (a *App) startAuditChain(ctx, runCtx context.Context) error {
	record, err := chain.OpenRecord(ctx, filepath.Join(a.cfg.DataDir, chain.RecordFile))
	if err != nil {
		return err
	}
	a.closers = append(a.closers, record.Close)
	// The issuer's keys at each verification, not at start: they follow
	// the key set file (see issuerKeyFile).
	keys := chain.PublicKeys(a.Issuer.PublicKey)
	a.Application.Queries.AuditChain = chain.NewService(a.Log, record, keys, a.Pipeline)
	var publisher chain.Publisher
	if a.kafkaPublisher != nil {
		publisher = kafkaCheckpoints{pub: a.kafkaPublisher, perOrg: a.cfg.KafkaTopicPerOrg}
	}
	logger := a.cfg.Logger.With("component", "audit-chain")
	chainer := chain.NewChainer(a.Log, record, a.Issuer, publisher, logger)
	if a.cfg.AuditCheckpointInterval > 0 {
		chainer.Interval = a.cfg.AuditCheckpointInterval
	}
	// Waited for with the relays: the chainer stops before the record,
	// the publisher and the store close.
	a.relays.Add(1)
	go func() {
		defer a.relays.Done()
		backoff := 100 * time.Millisecond
		for {
			err := chainer.Run(runCtx)
			if runCtx.Err() != nil {
				return
			}
			logger.Error("audit chain stopped; restarting", "err", err, "backoff", backoff.String())
			select {
			case <-runCtx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
		}
	}()
	return nil
}

// kafkaCheckpoints publishes signed checkpoints as JSON, keyed by org.
type kafkaCheckpoints struct {
	pub    message.Publisher
	perOrg bool
}

func (k kafkaCheckpoints) PublishCheckpoint(_ context.Context, c chain.Checkpoint) error {
	topic, err := kafka.CheckpointTopic(c.OrgID, k.perOrg)
	if err != nil {
		return err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	msg := message.NewMessage(uuid.NewString(), body)
	msg.Metadata.Set(eventstore.MetaOrgID, c.OrgID)
	msg.Metadata.Set(eventstore.MetaType, "AuditCheckpoint")
	return k.pub.Publish(topic, msg)
}
