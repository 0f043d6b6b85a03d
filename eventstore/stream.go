package eventstore

import (
	"fmt"
	"strings"
)

// StreamName identifies one stream: "{category}-{orgID}_{entityID}". The
// category is the text before the first dash (EventStoreDB's category
// projections rely on that), so categories contain no dash; org ids contain
// no underscore, so the org is the text between the first dash and the
// first underscore after it.
type StreamName struct {
	Category string
	OrgID    string
	EntityID string
}

// NewStreamName builds a stream name, checking every part.
func NewStreamName(category, orgID, entityID string) (StreamName, error) {
	s := StreamName{Category: category, OrgID: orgID, EntityID: entityID}
	return s, s.validate()
}

// MustStreamName is NewStreamName for names built from constants and
// validated ids; it panics on a programming error.
func MustStreamName(category, orgID, entityID string) StreamName {
	s, err := NewStreamName(category, orgID, entityID)
	if err != nil {
		panic(err)
	}
	return s
}

// String returns the stream's name in the log.
func (s StreamName) String() string { return s.Category + "-" + s.OrgID + "_" + s.EntityID }

// OrgPrefix returns the prefix shared by every stream of category in org.
func OrgPrefix(category, orgID string) string { return category + "-" + orgID + "_" }

// ParseStreamName splits a stream name into its parts.
func ParseStreamName(name string) (StreamName, error) {
	category, rest, ok := strings.Cut(name, "-")
	if !ok {
		return StreamName{}, fmt.Errorf("%w: %q has no category", ErrInvalidStream, name)
	}
	org, entity, ok := strings.Cut(rest, "_")
	if !ok {
		return StreamName{}, fmt.Errorf("%w: %q has no organization", ErrInvalidStream, name)
	}
	s := StreamName{Category: category, OrgID: org, EntityID: entity}
	return s, s.validate()
}

// Validate checks every part of the name, as an ErrInvalidStream error.
func (s StreamName) Validate() error { return s.validate() }

func (s StreamName) validate() error {
	switch {
	case !validPart(s.Category, "_-"):
		return fmt.Errorf("%w: bad category %q", ErrInvalidStream, s.Category)
	case !validPart(s.OrgID, "_"):
		return fmt.Errorf("%w: bad organization %q", ErrInvalidStream, s.OrgID)
	case !validPart(s.EntityID, ""):
		return fmt.Errorf("%w: bad entity %q", ErrInvalidStream, s.EntityID)
	}
	return nil
}

// validPart accepts 1–128 characters of [A-Za-z0-9._:-] minus forbidden.
func validPart(s, forbidden string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == ':'
		if !ok || strings.ContainsRune(forbidden, r) {
			return false
		}
	}
	return true
}
