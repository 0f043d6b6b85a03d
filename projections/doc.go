// Package projections owns the query side: the projections (handler sets,
// consumer.Group of Kind ReadModel) that build read models from the log,
// the read-model ports with their memory adapters, and the query services
// that answer HTTP queries. The runtime that feeds projections (engine,
// checkpoints, position tracking) is package consumer. The search use case
// ([KnowledgeQueries.Search]) records every search through a
// [SearchRecorder] that the write side provides, so that no answer leaves
// without its audit record.
//
// Every read takes an access.Scope: there is no path that reads across
// organizations, and a zero scope is refused. Projections must never
// append events or decide business rules; they only fold what the log says.
// Query services record what the record must hold (refused attempts, reads
// of audit content) only through the Recorder the write side gives them,
// and show the content fields of audit events only to audit:read-content.
// A read model can be dropped and rebuilt from the log at any time and must
// come out the same. Projections never call the network: the knowledge
// projection takes chunk vectors from the embedding store ([Embeddings])
// that the ingestion process fills, and never embeds anything itself.
package projections
