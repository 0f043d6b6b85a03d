package sealing

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a [Secret] shows wherever it is printed, logged or
// marshalled.
const Redacted = "[redacted]"

// Secret holds a password or token in memory. It is a struct with an
// unexported field rather than a string type, so that a conversion or a
// reflection-based encoder cannot read it by accident; fmt (every verb),
// encoding/json, encoding.TextMarshaler and log/slog all see [Redacted].
// [Secret.Reveal] is the one way to the value, for sealing it or handing it
// to a driver.
//
// A Secret unmarshals from a JSON string, so request bodies can carry one.
type Secret struct {
	value string
}

// NewSecret wraps a value.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the value.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.value == "" }

// String returns [Redacted].
func (s Secret) String() string { return Redacted }

// GoString returns [Redacted].
func (s Secret) GoString() string { return Redacted }

// Format makes every fmt verb print [Redacted].
func (s Secret) Format(f fmt.State, _ rune) { io.WriteString(f, Redacted) }

// LogValue makes log/slog print [Redacted].
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText returns [Redacted].
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalJSON returns [Redacted] as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// UnmarshalJSON reads a JSON string.
func (s *Secret) UnmarshalJSON(data []byte) error {
	var v string
	if err := json.Unmarshal(data, &v); err != nil {
		// Never echo the input: it is the secret.
		return fmt.Errorf("sealing: secret must be a JSON string")
	}
	s.value = v
	return nil
}
