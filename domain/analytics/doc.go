// Package analytics owns the analytics job aggregate: one question (or one
// SQL statement) asked of one data source by one member, service account or
// bot, and what came of it. One stream per job: analytics-{org}_{id}.
//
//	submitted ──► running ──► succeeded (with its result pages)
//	    │            │ ╲────► failed (authorize, translate, guard, execute)
//	    │            │  ╲───► cancelled
//	    └────────────┴──────► cancelled (a cancel before it ran)
//
// The record says which source, the question, the SQL that ran and how it
// was obtained, the guard's verdict, the duration, the row and byte counts
// and the SHA-256 of the result. The result rows are recorded too, in pages,
// as content: the log stays the only truth, and the rows' read model can be
// rebuilt from it. The running of a job is driven by the generic job state
// machine (package jobs, commands.RunJob); this stream is the job's story.
//
// This package is pure: no I/O, no clock; it must never run a query or
// decide who may ask one.
package analytics
