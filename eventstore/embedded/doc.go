// Package embedded owns the single-node event store: the whole log in one
// SQLite file (modernc.org/sqlite, pure Go), for `palisade serve` without
// any outside service. [Store] implements [eventstore.Store] and passes
// the contract suite in eventstore/storetest; it also keeps named reader
// checkpoints ([Store.SaveCheckpoint]) in the same file, so the relay's
// progress is as durable as the log. The file also holds the log's
// identity ([Store.LogID]), written once: a copy of the file is the same
// log, another file another.
//
// Writes: one goroutine owns the only write connection. Concurrent
// [Store.Append] calls queue up, and the writer takes every queued request
// (up to 512 requests or 4096 events) into one transaction, checks each
// against its expected version on its own (with an in-memory cache of
// stream versions, which is authoritative because there is one writer),
// and commits them with one fsync (WAL, synchronous=FULL): group commit.
// An Append returns only after its transaction is durable. A request that
// fails its check gets ErrConflict and writes nothing; the rest of its
// batch still commits. Positions are assigned by the writer: 1, 2, 3, …
// without gaps. Stream versions start at 0.
//
// Reads use a separate pool of connections; WAL lets them run beside the
// writer. Subscribers catch up from the file, then wait for the writer's
// wake-up after each commit and read on from their last position, served
// from an in-memory tail of the most recent events when it covers them.
// A limit of 0 or less in ReadStream and ReadAll means no limit. ReadAll
// may start after any number, not only after an event's position
// ([Store.ReadsFromAnyPosition]), so a reader may split the log into
// ranges and read them at once (audit verification does). Rows are
// decoded without encoding/json ([eventstore.MetadataDecoder]).
//
// One file, one Store: Open takes an exclusive lock on "<path>.lock" and
// fails with [ErrLocked] if another Store (in this process or another)
// holds it, because the writer's view of stream versions and positions is
// only authoritative while it is the only writer.
//
// This package must never interpret event payloads, never decide who may
// append (callers authorize; the store checks only what
// [eventstore.ValidateAppend] checks), and never hand out a write path
// that bypasses the writer goroutine.
package embedded
