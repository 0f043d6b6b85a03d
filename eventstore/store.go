package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors every adapter returns, matched with errors.Is.
var (
	// ErrConflict: the stream is not at the expected version.
	ErrConflict = errors.New("stream version conflict")
	// ErrOrgMismatch: an event's org differs from its stream's org.
	ErrOrgMismatch = errors.New("event organization does not match stream organization")
	// ErrInvalidStream: a stream name is not "{category}-{orgID}_{entityID}".
	ErrInvalidStream = errors.New("invalid stream name")
	// ErrInvalidEvent: an event lacks a type, an org, or valid JSON data.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("event store closed")
	// ErrConditionFailed: the condition stream of an AppendIf was not at
	// the version the append depended on. It is not an ErrConflict: the
	// appended stream itself may be where the caller expected it.
	ErrConditionFailed = errors.New("append condition failed")
)

// Store is the event log port.
type Store interface {
	// Append adds events to the end of stream, atomically and durably, if
	// the stream is at the expected version. Every event must carry the
	// stream's org. It returns the versions and positions assigned.
	Append(ctx context.Context, stream StreamName, expected ExpectedVersion, events []NewEvent) (AppendResult, error)
	// AppendIf is Append that also requires another stream of the same
	// organization to be where cond says (for example: the organization's
	// membership stream at the version an authorization was decided on).
	// A failed condition appends nothing and returns ErrConditionFailed.
	// How atomic the check and the append are is the adapter's to say.
	AppendIf(ctx context.Context, stream StreamName, expected ExpectedVersion, cond Condition, events []NewEvent) (AppendResult, error)
	// ReadStream returns up to limit events of one stream from version on.
	ReadStream(ctx context.Context, stream StreamName, from uint64, limit int) ([]Envelope, error)
	// ReadAll returns up to limit events in global order with a position
	// strictly greater than after, that pass filter.
	ReadAll(ctx context.Context, after uint64, filter Filter, limit int) ([]Envelope, error)
	// Subscribe calls handle for every event after position after that
	// passes filter, in global order: first the history, then live events,
	// without a gap or a repeat at the boundary. It returns when ctx ends
	// (with ctx.Err()), when handle fails (with its error), or when the
	// store closes.
	Subscribe(ctx context.Context, after uint64, filter Filter, handle func(Envelope) error) error
	// Head returns the position of the last event in the log (0 if empty).
	Head(ctx context.Context) (uint64, error)
	Close() error
}

// ExpectedVersion is the condition an append puts on its stream.
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

// Any appends whatever the stream's version.
func Any() ExpectedVersion { return ExpectedVersion{kind: expectAny} }

// NoStream appends only if the stream has no events yet.
func NoStream() ExpectedVersion { return ExpectedVersion{kind: expectNoStream} }

// Exact appends only if the stream's last event has version v (the first
// event of a stream has version 0).
func Exact(v uint64) ExpectedVersion { return ExpectedVersion{kind: expectExact, version: v} }

// IsAny, IsNoStream and Version describe the condition for adapters.
func (e ExpectedVersion) IsAny() bool      { return e.kind == expectAny }
func (e ExpectedVersion) IsNoStream() bool { return e.kind == expectNoStream }

// Version returns the exact version expected, and false for Any and NoStream.
func (e ExpectedVersion) Version() (uint64, bool) { return e.version, e.kind == expectExact }

// Check reports whether a stream whose last version is current (exists
// false for an empty stream) satisfies e, as an ErrConflict error if not.
func (e ExpectedVersion) Check(stream StreamName, current uint64, exists bool) error {
	switch e.kind {
	case expectNoStream:
		if exists {
			return fmt.Errorf("%w: %s exists at version %d, expected no stream", ErrConflict, stream, current)
		}
	case expectExact:
		if !exists || current != e.version {
			have := "no stream"
			if exists {
				have = fmt.Sprintf("version %d", current)
			}
			return fmt.Errorf("%w: %s is at %s, expected version %d", ErrConflict, stream, have, e.version)
		}
	}
	return nil
}

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExact:
		return fmt.Sprintf("version %d", e.version)
	}
	return "any"
}

// Condition is what an AppendIf requires of a stream other than the one
// it appends to.
type Condition struct {
	Stream   StreamName
	Expected ExpectedVersion
}

// Check reports whether a condition stream whose last version is current
// (exists false for an empty stream) satisfies c, as an
// ErrConditionFailed error if not.
func (c Condition) Check(current uint64, exists bool) error {
	if err := c.Expected.Check(c.Stream, current, exists); err != nil {
		return fmt.Errorf("%w: %s", ErrConditionFailed, strings.TrimPrefix(err.Error(), ErrConflict.Error()+": "))
	}
	return nil
}

// ValidateCondition checks that cond names a valid stream of stream's
// organization: an append may depend only on its own tenant's facts.
func ValidateCondition(stream StreamName, cond Condition) error {
	if err := cond.Stream.validate(); err != nil {
		return fmt.Errorf("condition: %w", err)
	}
	if cond.Stream.OrgID != stream.OrgID {
		return fmt.Errorf("%w: condition stream %s is not of %s's organization", ErrOrgMismatch, cond.Stream, stream)
	}
	return nil
}

// AppendResult says where an append landed.
type AppendResult struct {
	// FirstVersion and LastVersion are the stream versions of the first and
	// last appended event.
	FirstVersion, LastVersion uint64
	// FirstPosition and LastPosition are their global positions.
	FirstPosition, LastPosition uint64
}

// Filter selects events in ReadAll and Subscribe. Empty fields match all;
// non-empty fields must all match.
type Filter struct {
	// OrgID keeps one organization's events.
	OrgID string
	// Categories keeps events whose stream has one of these categories.
	Categories []string
	// Types keeps events of these types.
	Types []string
}

// Match reports whether env passes the filter.
func (f Filter) Match(env Envelope) bool {
	if f.OrgID != "" && env.OrgID != f.OrgID {
		return false
	}
	if len(f.Categories) > 0 && !contains(f.Categories, env.Stream.Category) {
		return false
	}
	if len(f.Types) > 0 && !contains(f.Types, env.Type) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ValidateAppend checks what every adapter must check before it writes:
// at least one event, and each event well formed and of the stream's org.
func ValidateAppend(stream StreamName, events []NewEvent) error {
	if err := ValidateAppendExceptData(stream, events); err != nil {
		return err
	}
	for i, e := range events {
		if !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %d data is not valid JSON", ErrInvalidEvent, i)
		}
	}
	return nil
}

// ValidateAppendExceptData is ValidateAppend without the check that each
// event's data is JSON, for a decorator that checks that on its own way
// before the adapter checks it again (eventstore/sealed, whose walk of the
// payload reads all of it anyway).
func ValidateAppendExceptData(stream StreamName, events []NewEvent) error {
	if err := stream.validate(); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: an append needs at least one event", ErrInvalidEvent)
	}
	for i, e := range events {
		switch {
		case e.Type == "":
			return fmt.Errorf("%w: event %d has no type", ErrInvalidEvent, i)
		case e.OrgID != stream.OrgID:
			return fmt.Errorf("%w: event %d has org %q, stream %s has org %q", ErrOrgMismatch, i, e.OrgID, stream, stream.OrgID)
		}
	}
	return nil
}

// Now returns the current time truncated to microseconds, the precision
// every adapter stores, so that a round trip compares equal.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
