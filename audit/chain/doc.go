// Package chain owns Palisade's tamper evidence: a hash chain per
// organization over the events exactly as the event store returns them,
// the durable record of that chain, signed checkpoints of its heads, and
// the verification that recomputes the chains from the log and compares.
//
// Each event's hash ([Hash]) is SHA-256 over a length-prefixed encoding of
// the organization's previous hash, the organization's sequence (1, 2, 3 …
// in log order), the event id, type, stream name, stream version, the
// stored bytes of Data and the canonical JSON of Metadata. The global
// position is left out, so a chain means the same on every adapter. Data is
// hashed as stored: where content fields are sealed before the append, the
// chain covers the ciphertext, and it still verifies after an organization's
// data key was destroyed. The chain must therefore be handed the raw store,
// never a reader that opens sealed fields.
//
// The [Chainer] is an asynchronous process of palisade serve, one per
// deployment (with several replicas, on the one elected for it): it claims
// the record ([RecordWriter.Claim]), follows the log in global order and
// records, in one transaction per batch, each
// event's (org, seq, id, hash), each organization's head, its own position,
// and the checkpoints due: at every 1,000th event of an organization and
// every 10 s while an organization has new events. A checkpoint is signed
// with the deployment's Ed25519 key (a signature over its canonical JSON,
// checked with the key of the JWKS), kept in the [Record] and handed to a
// [Publisher] (Kafka, when it is on).
//
// The record is a port: the Chainer writes it through [RecordWriter],
// [Verify] and the [Service] read it through [RecordReader]. With one
// replica it is a SQLite file of the data directory ([OpenRecord]),
// whatever the read models; with several, the PostgreSQL adapter beside
// the read models (projections/postgres.ChainRecord), which every replica
// reads, so that any of them answers alike. Either way it is the witness
// the log is checked against, so it is never rebuilt from the log (a
// rebuild would bless tampering). Each claim fences off the ones before
// it: a Chainer that lost its role but still runs for a moment gets
// [ErrFenced] at its next write and writes nothing, so two never record
// conflicting heads or checkpoints; both may publish the same checkpoint
// in that moment (at least once, as ever). The tests of this package run
// over both adapters.
//
// [Verify] reads the log and the record and reports, per organization, the
// first event that was altered, removed, inserted or reordered, the signed
// checkpoint it contradicts, checkpoints whose signature fails, and
// recorded hashes that do not reach their signed heads (a record rewritten
// along with the log). It reads the record in one transaction and, from
// the moment that transaction has its snapshot, the log beside it: a
// [SeekableLog] (the embedded store) in position ranges on every CPU, any
// other in one pass; the events are compared in log order either way. [Service] is the same for HTTP, authorized for
// audit:read and limited to the caller's organization.
//
// The package never opens sealed content, never writes to the log, and
// never imports an event store adapter.
package chain
