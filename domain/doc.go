// Package domain holds Palisade's business rules, one package per bounded
// context (access, tenancy, bots, …). Domain packages are pure: they do no
// I/O, import nothing else of the project, and return typed errors that the
// HTTP layer maps to status codes in one place.
package domain
