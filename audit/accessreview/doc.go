// Package accessreview answers access-review questions about the past:
// what one subject could do in its organization at a moment, and who could
// read one resource then. It folds the organization's log (tenancy,
// knowledge bases, data sources, bots) up to that moment and asks the
// aggregates of domain/tenancy, domain/knowledge, domain/datasources and
// domain/bots, and access.Decide, the same questions the server asks when
// it decides a request: it holds no rule of its own.
//
// It reads the log through the small [Log] port and never writes, except
// the refusal of a caller without audit:read, recorded through the
// [DenialRecorder] like every other refused read. It never reads another
// organization's log: the organization is always the caller's.
package accessreview
