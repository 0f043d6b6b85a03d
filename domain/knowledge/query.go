package knowledge

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/palisadehq/palisade/domain"
)

// MaxQueryLen bounds a search query, in characters.
const MaxQueryLen = 2000

// QueryError refuses a search query's text: empty, too long, not UTF-8, or
// holding a control character other than tab and newline (a NUL among
// them, which no store of text accepts). It is invalid input (422). A
// search refused for its query is still recorded, with the reason.
type QueryError struct {
	// Reason says what is wrong with the query, for the caller and the record.
	Reason string
}

func (e *QueryError) Error() string { return domain.ErrInvalid.Error() + ": query " + e.Reason }

// Unwrap makes a QueryError invalid input.
func (e *QueryError) Unwrap() error { return domain.ErrInvalid }

// CheckQuery validates a search query, already trimmed of surrounding
// spaces, returning a *QueryError.
func CheckQuery(q string) error {
	switch {
	case q == "":
		return &QueryError{Reason: "is required"}
	case !utf8.ValidString(q):
		return &QueryError{Reason: "is not valid UTF-8"}
	case utf8.RuneCountInString(q) > MaxQueryLen:
		return &QueryError{Reason: fmt.Sprintf("is longer than %d characters", MaxQueryLen)}
	}
	for _, r := range q {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return &QueryError{Reason: fmt.Sprintf("contains the control character %U", r)}
		}
	}
	return nil
}
