package esdbtest

import (
	"encoding/binary"
	"errors"
	"regexp"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
)

// uuidFromProto reads an id in either of the wire forms clients send.
func uuidFromProto(id *shared.UUID) (uuid.UUID, error) {
	if s := id.GetStructured(); s != nil {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], uint64(s.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(u[8:], uint64(s.GetLeastSignificantBits()))
		return u, nil
	}
	if s := id.GetString_(); s != "" {
		return uuid.Parse(s)
	}
	return uuid.UUID{}, errors.New("missing")
}

// uuidToProto writes an id in the form the reader asked for.
func uuidToProto(u uuid.UUID, structured bool) *shared.UUID {
	if !structured {
		return &shared.UUID{Value: &shared.UUID_String_{String_: u.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(u[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(u[8:])),
	}}}
}

// compileRegex compiles a filter's regular expression. KurrentDB uses .NET
// regular expressions; Go's RE2 agrees with them on the anchors, classes,
// alternations and escapes filters use, and refuses the .NET-only
// constructs (look-arounds, back-references) instead of guessing.
func compileRegex(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(expr)
}
