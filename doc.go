// Package palisade is the guide to Palisade, a multi-tenant, event-sourced
// CQRS backend for AI operations: organizations run bots and knowledge
// bases on one platform whose promise is that organization boundaries hold
// on every path and every action is on the record. The package holds no
// code; it tells a reader where each part lives. ARCHITECTURE.md at the
// root of the repository draws the same map.
//
// # Starting it
//
// [github.com/palisadehq/palisade/app.Open] starts Palisade for a
// [github.com/palisadehq/palisade/app.Config]: with only a data directory it
// runs on the embedded default (an SQLite event log, in-memory read models,
// the in-process bus, the built-in token issuer). The example below starts
// it and creates an organization over HTTP. cmd/palisade is the binary that
// does the same from flags and PALISADE_* variables.
//
// # The write side
//
// Every change is a command. HTTP routes (package httpapi, folder http)
// authenticate the bearer token with
// [github.com/palisadehq/palisade/identity.Verifier], resolve the principal
// with [github.com/palisadehq/palisade/projections.Principals], and call one
// use case: a handler of [github.com/palisadehq/palisade/commands.Commands]
// ([github.com/palisadehq/palisade/commands.Tenancy],
// [github.com/palisadehq/palisade/commands.Bots],
// [github.com/palisadehq/palisade/commands.Knowledge]). Each runs through the
// core, [github.com/palisadehq/palisade/commands.Pipeline]: authorize with
// [github.com/palisadehq/palisade/domain/access.Decide], load the aggregate
// from its stream, let the aggregate decide, and append org-tagged events
// whose metadata carries the effective principal
// ([github.com/palisadehq/palisade/eventstore.Actor]) to the
// [github.com/palisadehq/palisade/eventstore.Store]. The domain packages
// (domain/tenancy, domain/bots, domain/knowledge, domain/jobs) are pure
// rules with no I/O.
//
// # The read side
//
// [github.com/palisadehq/palisade/consumer.Engine] feeds every
// [github.com/palisadehq/palisade/consumer.Group] from the log: read models
// (package projections, with memory and postgres adapters) and processes
// (the ingestion of documents). Queries go through query services such as
// [github.com/palisadehq/palisade/projections.Queries], and every read takes
// an [github.com/palisadehq/palisade/domain/access.Scope], which can only be
// built from a verified principal or from an event's own organization.
//
// # Asynchronous work
//
// A process runs each unit of work as a job
// ([github.com/palisadehq/palisade/commands.RunJob], states in
// [github.com/palisadehq/palisade/domain/jobs]): it re-authorizes with the
// principal recorded on its trigger, narrowed through
// [github.com/palisadehq/palisade/domain/access.Delegate], and records its
// outcome once. Document ingestion chunks a document and embeds its chunks
// into the durable embedding store
// ([github.com/palisadehq/palisade/commands.ChunkEmbedding]) before it
// records them; projections only read vectors from that store.
//
// # Production parts
//
// The same code runs on EventStoreDB (eventstore/esdb), Kafka (bus/kafka) and
// PostgreSQL with row-level security (projections/postgres), chosen by
// configuration. Each port has one contract suite that every adapter
// passes: eventstore/storetest, projections/readmodeltest,
// knowledge/embeddings/embeddingstest, ai/embed/embedtest. On that stack
// any number of replicas serve together: each applies the log to the
// shared read models (each event once), and
// [github.com/palisadehq/palisade/cluster.Elector] picks the one replica
// that runs each relay and process.
package palisade
