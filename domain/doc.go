// Package domain holds Palisade's business rules, one package per bounded
// context (access, tenancy, bots, …). Domain packages are pure: they do no
// I/O, import nothing else of the project, and return typed errors that the
// HTTP layer maps to status codes in one place.
//
// Each event type declares, with an `audit:"content"`, `audit:"record"` or
// `audit:"digest"` struct tag on every field that can carry text, what of
// its payload is content (what people wrote, uploaded or asked), what is
// the record, and which records are hashes of content (kept keyed in the
// log); readers of the audit trail without audit:read-content get content
// only as its keyed hash and size (see events.ContentTag).
package domain
