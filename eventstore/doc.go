// Package eventstore owns the event log: the Store port, the envelope every
// event travels in, stream naming, and the relay that carries the log to
// Watermill in global order. Adapters live in subpackages (embedded,
// esdb); storetest holds the contract suite every adapter passes.
//
// The log is the system of record. This package must never interpret event
// payloads: it checks only what every event must satisfy (an organization,
// a stream whose name embeds the same organization, an expected version).
package eventstore
