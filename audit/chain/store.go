package chain

import (
	"context"
	"errors"
)

// The record's storage is a port with two adapters: [Record], a SQLite
// file of the data directory (the embedded default, one replica), and the
// PostgreSQL one beside the read models (projections/postgres), shared by
// every replica of a deployment. Both pass the same contract tests (the
// tests of this package run over each).

// Fence is a Chainer's claim on the record ([RecordWriter.Claim]): every
// claim gets a greater one, and a write made under any but the latest
// fails with [ErrFenced].
type Fence uint64

// ErrFenced: the record was claimed by another Chainer since this one
// claimed it (or moved on without it): this one must stop, writing
// nothing. On several replicas it means the chain's role moved to another
// replica while this one still ran it.
var ErrFenced = errors.New("chain: the record was claimed by another chainer")

// State is where the record leaves off, as a new claim finds it.
type State struct {
	// Position is how far in the log the record reaches (0: nothing yet).
	Position uint64
	// Heads are the organizations' last links.
	Heads map[string]Head
	// Checkpointed is each organization's last checkpointed seq.
	Checkpointed map[string]uint64
}

// StoredCheckpoint is a checkpoint with the log position the record
// keeps beside it (never published: see [Checkpoint]).
type StoredCheckpoint struct {
	Checkpoint
	Position uint64
}

// Batch is what one Chainer step commits at once.
type Batch struct {
	// From is the record's position the batch continues from; the commit
	// fails with ErrFenced if the record is elsewhere.
	From        uint64
	Entries     []Entry
	Heads       map[string]Head // the heads that changed
	Checkpoints []StoredCheckpoint
	Position    uint64 // the record's position after the batch
}

// RecordWriter is what the Chainer needs of the record. Only the holder
// of the latest claim writes: every write is conditioned on it, so two
// Chainers running at once for a moment (a failover) never write a
// conflicting head or checkpoint; the one that claimed first gets
// ErrFenced and stops.
type RecordWriter interface {
	// Claim makes the caller the record's writer, fencing off any earlier
	// claim, and returns the record's state as of the claim.
	Claim(ctx context.Context) (Fence, State, error)
	// Commit writes b in one transaction (the entries, the heads, the
	// checkpoints, the position), or nothing: ErrFenced if f is not the
	// latest claim or the record is not at b.From.
	Commit(ctx context.Context, f Fence, b Batch) error
	// Unpublished returns up to limit checkpoints not yet handed to the
	// publisher, each organization's oldest first.
	Unpublished(ctx context.Context, limit int) ([]Checkpoint, error)
	// MarkPublished records that c was published (ErrFenced as Commit).
	MarkPublished(ctx context.Context, f Fence, c Checkpoint) error
}

// Snapshot is the record of one organization or of all, read in one
// transaction so that it is consistent with its position.
type Snapshot struct {
	Position uint64
	// Entries are each organization's recorded events in seq order; only
	// OrgID, Seq, EventID and Hash need be filled (Describe names the
	// event of a finding).
	Entries     map[string][]Entry
	Checkpoints map[string][]Checkpoint
}

// RecordReader is what Verify and the Service read of the record.
type RecordReader interface {
	// ReadSnapshot returns the record of org ("" for every organization).
	// Once its transaction's snapshot is taken, and before the events are
	// read, it calls started with the record's position and how many
	// events its heads count, so that the caller can start reading the
	// log beside it: every event of the snapshot is in the log by then.
	ReadSnapshot(ctx context.Context, org string, started func(position, events uint64)) (Snapshot, error)
	// Describe returns the recorded type and stream of an organization's
	// event at seq ("" if the record has none).
	Describe(ctx context.Context, org string, seq uint64) (typ, stream string, err error)
	// Checkpoints returns up to limit of an organization's checkpoints
	// with a seq after after, in seq order (limit <= 0: all).
	Checkpoints(ctx context.Context, org string, after uint64, limit int) ([]Checkpoint, error)
}
