// Package jobs owns the one job state machine of Palisade: a unit of
// asynchronous work (a document version's ingestion today; analytics jobs,
// bot turns and workflow steps later) that is submitted, runs, and ends
// succeeded, failed or cancelled, owned by exactly one organization.
//
//	submitted ──► running ──► succeeded
//	    │            │ ╲────► failed
//	    │            │  ╲───► cancelled
//	    ├────────────┴──────► failed / cancelled
//	    running ──► running  (a new attempt after an interruption)
//
// A job lives in a stream of its own, job-{org}_{job id}, never in its
// subject's stream: the subject (a document, a conversation) keeps its
// own history and its own optimistic concurrency, a job's transitions never
// conflict with the subject's writes, and a job can be read, listed and
// audited by itself. The job id is derived from what triggered it (see
// commands.RunJob), so a redelivered trigger finds the same job instead of
// starting a second one; every transition is appended with the expected
// version of the job's stream, so an outcome is recorded at most once.
//
// Job is generic over what the work does: Kind names it and the outcome
// carries a short result. This package is pure: no I/O, no clock, no
// principal; it must never run work or decide who may run it.
package jobs
