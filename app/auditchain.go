package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/palisadehq/palisade/audit/chain"
	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
)

// auditChainRole is the chainer's role among replicas (cluster.Elector).
const auditChainRole = "audit-chain"

// startAuditChain opens the audit chain's record, sets the query service
// over it, and starts the Chainer over a.Log, the log as stored (content
// sealed): the chain must cover that form, so that it still verifies after
// an organization's key is destroyed. Checkpoints go to Kafka when it is
// on.
//
// The record is a witness, never rebuilt from the log. With one replica
// it is a SQLite file of the data directory, whatever the read models, and
// the replica runs the chainer. With several (replicated), it is the one
// in PostgreSQL beside the read models, every replica answers the audit
// chain's queries from it, and the chainer runs on the replica elected for
// auditChainRole only, so each checkpoint is signed, recorded and
// published once per deployment. A chainer that lost its role without
// noticing yet (its session died) is fenced off by its successor's claim
// (chain.ErrFenced): the two never write conflicting heads or checkpoints,
// though both may publish the same checkpoint in that moment.
func (a *App) startAuditChain(ctx, runCtx context.Context) error {
	// The issuer's keys at each verification, not at start: they follow
	// the key set file (see issuerKeyFile).
	keys := chain.PublicKeys(a.Issuer.PublicKey)
	var publisher chain.Publisher
	if a.kafkaPublisher != nil {
		publisher = kafkaCheckpoints{pub: a.kafkaPublisher, perOrg: a.cfg.KafkaTopicPerOrg}
	}
	logger := a.cfg.Logger.With("component", "audit-chain")
	newChainer := func(record chain.RecordWriter) *chain.Chainer {
		chainer := chain.NewChainer(a.Log, record, a.Issuer, publisher, logger)
		if a.cfg.AuditCheckpointInterval > 0 {
			chainer.Interval = a.cfg.AuditCheckpointInterval
		}
		return chainer
	}
	if a.replicated() {
		a.warnOfLocalChainRecord(ctx, logger)
		record := a.postgres.ChainRecord(a.logID)
		a.Application.Queries.AuditChain = chain.NewService(a.Log, record, keys, a.Pipeline)
		a.leaders.WithLabelValues(auditChainRole).Set(0)
		// Waited for with the relays: the chainer stops before the pool,
		// the publisher and the store close.
		a.relays.Add(1)
		go func() {
			defer a.relays.Done()
			a.elector.Run(runCtx, auditChainRole, func(ctx context.Context) error {
				// A new chainer per term: it claims the record and resumes
				// from what the last holder committed.
				return newChainer(record).Run(ctx)
			})
		}()
		return nil
	}
	record, err := chain.OpenRecord(ctx, filepath.Join(a.cfg.DataDir, chain.RecordFile))
	if err != nil {
		return err
	}
	a.closers = append(a.closers, record.Close)
	a.Application.Queries.AuditChain = chain.NewService(a.Log, record, keys, a.Pipeline)
	chainer := newChainer(record)
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

// warnOfLocalChainRecord says so when a replicated server's data
// directory still holds the audit chain record of a single replica (a
// deployment from before the record moved to PostgreSQL): the shared
// record does not continue it but chains the log again from its start.
// Its signed checkpoints stay verifiable offline from that file, and an
// auditor should do so before it is discarded; nothing reads it any more.
// It is not imported: a record is a witness written as the log was, and
// one replica's file is not the deployment's.
func (a *App) warnOfLocalChainRecord(ctx context.Context, logger *slog.Logger) {
	path := filepath.Join(a.cfg.DataDir, chain.RecordFile)
	if _, err := os.Stat(path); err != nil {
		return
	}
	record, err := chain.OpenRecord(ctx, path)
	if err != nil {
		logger.Warn("audit chain: cannot read the single-replica record left in the data directory", "path", path, "err", err)
		return
	}
	defer record.Close()
	position, err := record.Position(ctx)
	if err != nil || position == 0 {
		return
	}
	logger.Warn("audit chain: the data directory holds a single-replica audit chain record that the shared record in PostgreSQL "+
		"does not continue (the shared record chains the log from its start); verify its checkpoints with "+
		"`palisade audit verify --data-dir` before removing it, nothing reads it any more",
		"path", path, "position", position)
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
