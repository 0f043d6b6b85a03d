// Package tenancy owns organizations: their creation by the platform,
// their members and roles, their service accounts, and the external token
// issuers each binds (a member is its issuer and subject together). An
// organization is one aggregate, recorded in the stream "org-{orgID}_{orgID}".
//
// It must never do I/O or decide permissions beyond the organization's own
// rules (a last owner stays, a service account never exceeds its creator);
// who may call which operation is the command handlers' business, through
// access.Decide.
package tenancy
