// Package quota owns the per-organization limits that keep one tenant from
// slowing another: the request rate (a token bucket per organization),
// concurrent work (document uploads and PDF parses per organization, and
// PDF parser children across all of them) and stored resources (bots,
// knowledge bases, documents). Each limit has a deployment default
// ([Limits], from configuration) that the platform may override per
// organization with an OrganizationQuotasSet event.
//
// A [Book] keeps the overrides and the resource counts in memory, built by
// its projection from the log (it is rebuilt in full at every start), and
// the rate buckets and work slots of the running process. It answers
// "may this organization do one more"; it must never decide authorization,
// never read another organization's data to answer for one, and never hold
// a lock while work runs or while it waits.
package quota
