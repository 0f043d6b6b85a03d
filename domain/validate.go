package domain

import (
	"fmt"
	"strings"
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

// SubjectSpecials are the characters other than ASCII letters and digits
// a subject may hold. Together they are the subject character set: it
// covers the subjects identity providers issue (UUIDs, numbers, e-mail
// addresses, "auth0|…", "github:…"), and each of them reaches a handler
// unchanged through a URL path segment, sent as is or percent-encoded, so
// GET, PUT and DELETE /v1/members/{sub} reach every member. "/" (which ends a path segment), "%" and the backslash
// (which decode into other characters), spaces, control characters and
// anything outside ASCII (which has look-alikes) are not in it.
const SubjectSpecials = ".-_~@+:|"

// CheckSubject validates an identity subject: a member's "sub", the owner
// of a new organization, the SUB of a "user:SUB" grant, the subject of a
// token. A subject is 1–MaxSubjectLen characters of ASCII letters, digits
// and SubjectSpecials, and is neither "." nor "..", which a URL path
// resolves away. This is the only rule for subjects; a subject it refuses
// can never be a member.
func CheckSubject(field, v string) error {
	if v == "" || len(v) > MaxSubjectLen {
		return fmt.Errorf("%w: %s must be 1 to %d characters", ErrInvalid, field, MaxSubjectLen)
	}
	if v == "." || v == ".." {
		return fmt.Errorf("%w: %s must not be %q", ErrInvalid, field, v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(SubjectSpecials, c) >= 0 {
			continue
		}
		return fmt.Errorf("%w: %s may hold only ASCII letters, digits and %s", ErrInvalid, field, SubjectSpecials)
	}
	return nil
}

// Clip shortens s to at most n bytes, cut on a rune boundary and ending in
// "…" when it was cut, for reasons and errors kept in events.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
