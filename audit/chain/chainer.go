package chain

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/palisadehq/palisade/eventstore"
)

// Log is what the chain reads of the event store: the log in global order,
// as stored (never through a reader that opens sealed content).
type Log interface {
	ReadAll(ctx context.Context, after uint64, filter eventstore.Filter, limit int) ([]eventstore.Envelope, error)
}

// Publisher hands a signed checkpoint to downstream systems (Kafka).
type Publisher interface {
	PublishCheckpoint(ctx context.Context, c Checkpoint) error
}

// Defaults of the Chainer.
const (
	// EveryEvents: an organization is checkpointed at every multiple of
	// this many of its events.
	EveryEvents = 1000
	// EveryInterval: an organization with events after its last
	// checkpoint is checkpointed at least this often.
	EveryInterval = 10 * time.Second
	// pollInterval is how long the Chainer waits when it has caught up
	// with the log before it reads again.
	pollInterval = 200 * time.Millisecond
	readBatch    = 2000
)

// Chainer follows the log and writes the record. One runs per deployment:
// on the embedded default, in the one replica; with several replicas, on
// the one elected for it (see ARCHITECTURE.md). It claims the record when
// it starts ([RecordWriter.Claim]) and stops with [ErrFenced] once another
// Chainer has claimed it since.
type Chainer struct {
	log       Log
	record    RecordWriter
	signer    Signer
	publisher Publisher // nil: checkpoints are only recorded
	logger    *slog.Logger
	now       func() time.Time

	// Every and Interval are the checkpoint cadence (EveryEvents,
	// EveryInterval); Poll how often a caught-up Chainer reads again.
	Every    uint64
	Interval time.Duration
	Poll     time.Duration

	fence     Fence
	heads     map[string]Head
	lastCkpt  map[string]uint64
	position  uint64
	lastTimed time.Time
	hasher    *Hasher
}

// NewChainer returns a Chainer over log, writing record and signing
// checkpoints with signer. publisher may be nil.
func NewChainer(log Log, record RecordWriter, signer Signer, publisher Publisher, logger *slog.Logger) *Chainer {
	return &Chainer{
		log: log, record: record, signer: signer, publisher: publisher, logger: logger, now: time.Now,
		Every: EveryEvents, Interval: EveryInterval, Poll: pollInterval,
		hasher: NewHasher(),
	}
}

// load claims the record and reads where it left off.
func (c *Chainer) load(ctx context.Context) error {
	fence, st, err := c.record.Claim(ctx)
	if err != nil {
		return err
	}
	c.fence, c.position, c.heads, c.lastCkpt = fence, st.Position, st.Heads, st.Checkpointed
	if c.heads == nil {
		c.heads = map[string]Head{}
	}
	if c.lastCkpt == nil {
		c.lastCkpt = map[string]uint64{}
	}
	c.lastTimed = c.now()
	return nil
}

// Run chains the log until ctx ends. It returns nil then, and an error if
// the log or the record fails, or ErrFenced if another Chainer claimed
// the record.
func (c *Chainer) Run(ctx context.Context) error {
	if err := c.load(ctx); err != nil {
		return err
	}
	c.logger.Info("audit chain started", "after", c.position, "organizations", len(c.heads))
	for {
		n, err := c.Step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n == readBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Poll):
		}
	}
}

// CatchUp chains every event in the log now and returns how many it
// chained; tests and benchmarks use it instead of Run.
func (c *Chainer) CatchUp(ctx context.Context) (int, error) {
	if c.heads == nil {
		if err := c.load(ctx); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		n, err := c.Step(ctx)
		total += n
		if err != nil || n < readBatch {
			return total, err
		}
	}
}

// Step chains the next batch of the log, commits it with the checkpoints
// due, and publishes what was not published. It returns how many events
// it read.
func (c *Chainer) Step(ctx context.Context) (int, error) {
	if c.heads == nil {
		if err := c.load(ctx); err != nil {
			return 0, err
		}
	}
	envs, err := c.log.ReadAll(ctx, c.position, eventstore.Filter{}, readBatch)
	if err != nil {
		return 0, fmt.Errorf("chain: read log after %d: %w", c.position, err)
	}
	now := c.now()
	b := Batch{From: c.position, Heads: map[string]Head{}, Position: c.position}
	heads := c.heads
	// Work on copies of the changed heads: a failed commit leaves the
	// Chainer where the record is.
	changed := map[string]Head{}
	head := func(org string) Head {
		if h, ok := changed[org]; ok {
			return h
		}
		return heads[org]
	}
	for _, env := range envs {
		h := head(env.OrgID)
		seq := h.Seq + 1
		d, err := c.hasher.Hash(h.Hash, seq, env)
		if err != nil {
			return 0, err
		}
		b.Entries = append(b.Entries, Entry{
			OrgID: env.OrgID, Seq: seq, EventID: env.ID, Type: env.Type, Stream: env.Stream.String(), Hash: d,
		})
		changed[env.OrgID] = Head{Seq: seq, Hash: d}
		if seq%c.Every == 0 {
			b.Checkpoints = append(b.Checkpoints, StoredCheckpoint{
				Checkpoint: sign(Checkpoint{OrgID: env.OrgID, Seq: seq, Head: d, Time: now}, c.signer),
				Position:   env.Position,
			})
		}
		b.Position = env.Position
	}
	timed := now.Sub(c.lastTimed) >= c.Interval
	lastCkpt := map[string]uint64{}
	for _, s := range b.Checkpoints {
		lastCkpt[s.OrgID] = s.Seq
	}
	if timed {
		for org, h := range heads {
			if _, ok := changed[org]; !ok && h.Seq > c.lastCkpt[org] {
				changed[org] = h // a head of an earlier batch not checkpointed yet
			}
		}
		for org, h := range changed {
			done := max(lastCkpt[org], c.lastCkpt[org])
			if h.Seq > done {
				b.Checkpoints = append(b.Checkpoints, StoredCheckpoint{
					Checkpoint: sign(Checkpoint{OrgID: org, Seq: h.Seq, Head: h.Hash, Time: now}, c.signer),
					Position:   b.Position,
				})
				lastCkpt[org] = h.Seq
			}
		}
	}
	if len(envs) == 0 && len(b.Checkpoints) == 0 {
		if timed {
			c.lastTimed = now
		}
		return 0, c.publish(ctx)
	}
	for org, h := range changed {
		if h != heads[org] {
			b.Heads[org] = h
		}
	}
	if err := c.record.Commit(ctx, c.fence, b); err != nil {
		return 0, err
	}
	for org, h := range b.Heads {
		c.heads[org] = h
	}
	for org, seq := range lastCkpt {
		c.lastCkpt[org] = seq
	}
	c.position = b.Position
	if timed {
		c.lastTimed = now
	}
	return len(envs), c.publish(ctx)
}

// publish hands every unpublished checkpoint to the publisher, marking
// each once it is accepted: a crash in between publishes it again
// (at least once, like the relay). So may a failover: a Chainer that lost
// its role may publish a checkpoint its successor publishes too, before
// its next write finds it fenced off; downstream sees the same signed
// checkpoint twice (the same org, seq, head, time and signature), never
// two different ones for one seq.
func (c *Chainer) publish(ctx context.Context) error {
	if c.publisher == nil {
		return nil
	}
	for {
		pending, err := c.record.Unpublished(ctx, 100)
		if err != nil {
			return err
		}
		for _, ck := range pending {
			if err := c.publisher.PublishCheckpoint(ctx, ck); err != nil {
				// The next step tries again; the record is already safe.
				c.logger.Error("publishing an audit checkpoint", "org", ck.OrgID, "seq", ck.Seq, "err", err)
				return nil
			}
			if err := c.record.MarkPublished(ctx, c.fence, ck); err != nil {
				return err
			}
		}
		if len(pending) < 100 {
			return nil
		}
	}
}
