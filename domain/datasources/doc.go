// Package datasources owns the data source aggregate: a connection to one of
// an organization's own databases (PostgreSQL, MySQL or MariaDB, SQLite),
// the tables it exposes, who may query it, and the last connection test with
// its schema snapshot. One stream per source: datasource-{org}_{id}.
//
// A source is default-deny: with no grants it can be queried by nobody but
// the members who manage data sources, and a grant names its subject
// ("user:SUB", "role:ROLE", "service:ID") with datasources:query. Only the
// tables of AllowedTables (and, when listed, only their columns) may be
// queried; everything else of the database is invisible.
//
// The password never enters this package in clear: a connection carries it
// sealed (see package sealing), as the text the caller produced. This package
// is pure: no I/O, no clock, no keys; it must never connect to anything or
// decide whether an address is reachable (netguard does, where it connects).
package datasources
