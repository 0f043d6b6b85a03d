package events

import (
	"encoding/json"
	"unicode/utf8"
)

// A hand-written JSON scanner for the walk of content (MapContent), which
// runs for every event sealed on append and opened on read. It used
// encoding/json's Decoder to split objects, about 130 allocations for a
// seal and an open of one small event, more than AES-GCM cost. The scanner
// accepts exactly what encoding/json accepts (the grammar, its nesting
// limit) and returns values as sub-slices of the input; FuzzObjectMembers
// and FuzzArrayItems hold it to the encoding/json functions it replaced.

// maxNesting is encoding/json's limit on nested objects and arrays.
const maxNesting = 10000

// member is one key and value of an object. rawKey is the key's bytes
// between its quotes; key is set only when it differs (escapes, invalid
// UTF-8). value aliases the scanned input.
type member struct {
	rawKey []byte
	key    string
	plain  bool // rawKey is the key, and json.Marshal writes it as "rawKey"
	value  []byte
	spaced bool // value holds whitespace outside its strings
}

// name is the member's key as encoding/json decodes it.
func (m *member) name() string {
	if m.plain {
		return string(m.rawKey)
	}
	return m.key
}

// scanner walks data; every method takes the position at which to start
// and reports false for input encoding/json would refuse.
type scanner struct {
	data   []byte
	spaced bool // whitespace was skipped inside the current value
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) skipSpace(i int) int {
	for i < len(s.data) && isSpace(s.data[i]) {
		i++
	}
	return i
}

// value returns the end of the value at i (no whitespace before it);
// depth is the number of containers already open around it.
func (s *scanner) value(i, depth int) (int, bool) {
	if i >= len(s.data) {
		return i, false
	}
	switch c := s.data[i]; {
	case c == '{':
		return s.container(i, depth, '}', true)
	case c == '[':
		return s.container(i, depth, ']', false)
	case c == '"':
		end, _, ok := s.str(i)
		return end, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(i)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	}
	return i, false
}

func (s *scanner) literal(i int, lit string) (int, bool) {
	if len(s.data)-i >= len(lit) && string(s.data[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return i, false
}

// container scans an object or an array whose opening byte is at i.
func (s *scanner) container(i, depth int, closing byte, object bool) (int, bool) {
	if depth+1 > maxNesting {
		return i, false
	}
	j := s.skipSpace(i + 1)
	s.spaced = s.spaced || j > i+1
	if j < len(s.data) && s.data[j] == closing {
		return j + 1, true
	}
	for {
		if object {
			if j >= len(s.data) || s.data[j] != '"' {
				return j, false
			}
			end, _, ok := s.str(j)
			if !ok {
				return end, false
			}
			k := s.skipSpace(end)
			s.spaced = s.spaced || k > end
			if k >= len(s.data) || s.data[k] != ':' {
				return k, false
			}
			j = s.skipSpace(k + 1)
			s.spaced = s.spaced || j > k+1
		}
		end, ok := s.value(j, depth+1)
		if !ok {
			return end, false
		}
		j = s.skipSpace(end)
		s.spaced = s.spaced || j > end
		if j >= len(s.data) {
			return j, false
		}
		switch s.data[j] {
		case ',':
			k := s.skipSpace(j + 1)
			s.spaced = s.spaced || k > j+1
			j = k
		case closing:
			return j + 1, true
		default:
			return j, false
		}
	}
}

// str scans a string whose opening quote is at i. plain reports that it
// has no escape and its bytes are what json.Marshal would write back for
// the string it decodes to (no HTML character, valid UTF-8, no U+2028 or
// U+2029).
func (s *scanner) str(i int) (end int, plain bool, ok bool) {
	plain = true
	for j := i + 1; j < len(s.data); {
		c := s.data[j]
		switch {
		case c == '"':
			return j + 1, plain, true
		case c < 0x20:
			return j, false, false
		case c == '\\':
			plain = false
			if j+1 >= len(s.data) {
				return j, false, false
			}
			switch s.data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if len(s.data)-j < 6 {
					return j, false, false
				}
				for _, h := range s.data[j+2 : j+6] {
					if !isHex(h) {
						return j, false, false
					}
				}
				j += 6
			default:
				return j, false, false
			}
		case c == '<' || c == '>' || c == '&':
			plain = false
			j++
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(s.data[j:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				plain = false
			}
			j += size
		}
	}
	return len(s.data), false, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func (s *scanner) number(i int) (int, bool) {
	d := s.data
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = s.digits(i)
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		j := s.digits(i + 1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := s.digits(i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func (s *scanner) digits(i int) int {
	for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
		i++
	}
	return i
}

// objectMembers splits data, exactly one JSON object (whitespace around
// it allowed), into its members in order, duplicates included. It accepts
// what a json.Decoder reading the object token by token accepts: each
// member's value may nest up to the limit on its own.
func objectMembers(data []byte) ([]member, bool) {
	s := scanner{data: data}
	i := s.skipSpace(0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	members := make([]member, 0, 8)
	i = s.skipSpace(i + 1)
	if i < len(data) && data[i] == '}' {
		return members, s.skipSpace(i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		end, plain, ok := s.str(i)
		if !ok {
			return nil, false
		}
		m := member{rawKey: data[i+1 : end-1], plain: plain}
		if !plain {
			// Escapes or characters that decoding changes: let
			// encoding/json say what the key is.
			if json.Unmarshal(data[i:end], &m.key) != nil {
				return nil, false
			}
		}
		i = s.skipSpace(end)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = s.skipSpace(i + 1)
		s.spaced = false
		end, ok = s.value(i, 0)
		if !ok {
			return nil, false
		}
		m.value, m.spaced = data[i:end], s.spaced
		members = append(members, m)
		i = s.skipSpace(end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = s.skipSpace(i + 1)
		case '}':
			return members, s.skipSpace(i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// arrayItems splits data into the raw items of one JSON array, as
// json.Unmarshal into a []json.RawMessage does; ok is false where it would
// fail (not JSON, or JSON that is not an array; null is the caller's).
func arrayItems(data []byte) (items [][]byte, ok bool) {
	s := scanner{data: data}
	i := s.skipSpace(0)
	if i >= len(data) {
		return nil, false
	}
	if data[i] != '[' {
		return nil, false
	}
	items = [][]byte{}
	i = s.skipSpace(i + 1)
	if i < len(data) && data[i] == ']' {
		return items, s.skipSpace(i+1) == len(data)
	}
	for {
		end, ok := s.value(i, 1)
		if !ok {
			return nil, false
		}
		items = append(items, data[i:end])
		i = s.skipSpace(end)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = s.skipSpace(i + 1)
		case ']':
			return items, s.skipSpace(i+1) == len(data)
		default:
			return nil, false
		}
	}
}
