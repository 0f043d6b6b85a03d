// Package access owns who may do what: the permission catalog, the roles,
// principals, organization scopes, and Decide, the pure function every
// command handler and query service calls before it acts.
//
// It must never do I/O or consult anything but its arguments: a principal's
// roles are resolved by the caller from the membership read model, and
// Decide only judges. Unknown permissions, principals without an
// organization and resources of another organization are always denied.
package access
