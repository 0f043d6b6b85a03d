package domain

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits shared by every bounded context.
const (
	MaxNameLen        = 200
	MaxSubjectLen     = 256
	MaxDescriptionLen = 4000
)

// CheckName validates a display name: 1–MaxNameLen characters of valid
// UTF-8, no control characters, not only spaces.
func CheckName(field, v string) error {
	if err := CheckText(field, v, MaxNameLen); err != nil {
		return err
	}
	for _, r := range v {
		if !unicode.IsSpace(r) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s must not be empty", ErrInvalid, field)
}

// CheckText validates free text up to max characters: valid UTF-8 and no
// control characters other than newlines and tabs.
func CheckText(field, v string, max int) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case utf8.RuneCountInString(v) > max:
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalid, field, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, field)
		}
	}
	return nil
}

// CheckSubject validates an identity subject (a user's "sub"): 1–256
// printable characters without spaces.
func CheckSubject(field, v string) error {
	if v == "" || len(v) > MaxSubjectLen || !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s must be 1 to %d bytes of UTF-8", ErrInvalid, field, MaxSubjectLen)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: %s must be printable and contain no spaces", ErrInvalid, field)
		}
	}
	return nil
}
