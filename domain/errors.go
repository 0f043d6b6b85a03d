package domain

import "errors"

// Error kinds. Domain packages wrap one of these with context
// (fmt.Errorf("%w: …", domain.ErrInvalid)); the HTTP layer maps each kind to
// one status in one place.
var (
	// ErrInvalid: the request breaks a rule of the domain (400/422).
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound: no such resource in the caller's organization (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts the current state (409).
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the caller may see the resource but not do this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrTooLarge: the input is larger than the domain accepts (413).
	ErrTooLarge = errors.New("too large")
)

// Event is a fact a domain package records. Its type name is stable: it is
// written into the log and read back forever.
type Event interface {
	EventType() string
}

// ArchivedError refuses a write to an archived resource, or to a resource
// inside one (a document of an archived knowledge base): archived means
// read-only. It is a conflict with the resource's state, so errors.Is(err,
// ErrConflict) holds and the HTTP layer answers 409.
type ArchivedError struct {
	// Resource names what is archived, for example "knowledge base".
	Resource string
}

func (e *ArchivedError) Error() string {
	return ErrConflict.Error() + ": " + e.Resource + " is archived, and archived resources are read-only"
}

// Unwrap makes an ArchivedError a conflict.
func (e *ArchivedError) Unwrap() error { return ErrConflict }

// ErrQuotaExceeded: the organization is at one of its quotas of stored
// resources (409: the request conflicts with the organization's state
// until something is archived or deleted, or the quota is raised).
var ErrQuotaExceeded = errors.New("quota exceeded")
