// Package projections owns the query side: the Watermill handlers that
// build read models from the log, the read-model ports with their memory
// adapters, and the query services that answer HTTP queries.
//
// Every read takes an access.Scope: there is no path that reads across
// organizations, and a zero scope is refused. Projections must never
// append events or decide business rules; they only fold what the log says.
// Query services record what the record must hold (refused attempts, reads
// of audit content) only through the Recorder the write side gives them,
// and show the content fields of audit events only to audit:read-content.
// A read model can be dropped and rebuilt from the log at any time and must
// come out the same.
package projections
