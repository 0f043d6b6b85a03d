package eventstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The JSON of Metadata, without reflection. Reading the log decodes one
// Metadata per event and the audit chain encodes one per event; through
// encoding/json these were about half of what `palisade audit verify`
// spent per event. The two functions below are pinned to encoding/json by
// fuzz tests (metadatajson_test.go): AppendMetadataJSON writes exactly the
// bytes json.Marshal writes, and UnmarshalMetadata yields exactly what
// json.Unmarshal yields, so the stored format and the chain's hashes do
// not depend on which one ran.

// AppendMetadataJSON appends the JSON of m to dst, byte for byte what
// json.Marshal(m) returns (field order, omitted empty fields, the escaping
// of HTML characters, invalid UTF-8 and U+2028/U+2029, RFC 3339 time). Like
// json.Marshal it fails only for a time whose year is outside 0–9999.
func AppendMetadataJSON(dst []byte, m Metadata) ([]byte, error) {
	dst = append(dst, `{"org_id":`...)
	dst = appendJSONString(dst, m.OrgID)
	dst = append(dst, `,"actor":{"subject":`...)
	a := m.Actor
	dst = appendJSONString(dst, a.Subject)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, a.Kind)
	if len(a.Roles) > 0 {
		dst = appendJSONStrings(append(dst, `,"roles":`...), a.Roles)
	}
	if a.CreatedBy != "" {
		dst = appendJSONString(append(dst, `,"created_by":`...), a.CreatedBy)
	}
	if len(a.OnBehalfOf) > 0 {
		dst = appendJSONStrings(append(dst, `,"on_behalf_of":`...), a.OnBehalfOf)
	}
	if a.InvokerKind != "" {
		dst = appendJSONString(append(dst, `,"invoker_kind":`...), a.InvokerKind)
	}
	// Actor.MarshalJSON puts scope last, and keeps an empty one.
	if a.Scope != nil {
		dst = appendJSONStrings(append(dst, `,"scope":`...), a.Scope)
	}
	dst = append(dst, '}')
	for _, f := range [...]struct{ key, value string }{
		{`,"correlation_id":`, m.CorrelationID},
		{`,"causation_id":`, m.CausationID},
		{`,"trace_id":`, m.TraceID},
		{`,"span_id":`, m.SpanID},
		{`,"authorization":`, m.Authorization},
		{`,"idempotency_key":`, m.IdempotencyKey},
	} {
		if f.value != "" {
			dst = appendJSONString(append(dst, f.key...), f.value)
		}
	}
	dst = strconv.AppendInt(append(dst, `,"schema_version":`...), int64(m.SchemaVersion), 10)
	dst = append(dst, `,"occurred_at":"`...)
	// AppendText is the strict RFC 3339 that Time.MarshalJSON quotes.
	dst, err := m.OccurredAt.AppendText(dst)
	if err != nil {
		return dst, fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err)
	}
	return append(dst, `"}`...), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string with HTML
// escaping on (its default).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	from := 0 // s[from:i] is still to be copied
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch {
			case c == '"':
				esc = `\"`
			case c == '\\':
				esc = `\\`
			case c == '\n':
				esc = `\n`
			case c == '\r':
				esc = `\r`
			case c == '\t':
				esc = `\t`
			case c == '\b':
				esc = `\b`
			case c == '\f':
				esc = `\f`
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, s[from:i]...)
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				i++
				from = i
				continue
			default:
				i++
				continue
			}
			dst = append(append(dst, s[from:i]...), esc...)
			i++
			from = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[from:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[from:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		from = i
	}
	return append(append(dst, s[from:]...), '"')
}

func appendJSONStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

// UnmarshalMetadata sets *m to the Metadata that json.Unmarshal decodes
// from b into a zero Metadata, or returns its error. JSON in the shape
// AppendMetadataJSON writes (compact, fields in their order, strings of
// valid UTF-8 without escapes) is read directly; anything else is handed to
// json.Unmarshal.
func UnmarshalMetadata(b []byte, m *Metadata) error {
	return (&MetadataDecoder{}).Decode(b, m)
}

// MetadataDecoder is UnmarshalMetadata for many events in a row: the
// strings that repeat from event to event (organization, actor, kind,
// roles, authorization) are kept once and shared, up to a bound. Its zero
// value is ready; it is not safe for concurrent use.
type MetadataDecoder struct {
	shared map[string]string
}

// maxShared bounds the strings one MetadataDecoder keeps.
const maxShared = 1024

// Decode is UnmarshalMetadata.
func (c *MetadataDecoder) Decode(b []byte, m *Metadata) error {
	*m = Metadata{}
	d := metadataDecoder{b: b, shared: c}
	if d.metadata(m) && d.i == len(b) {
		return nil
	}
	*m = Metadata{}
	return json.Unmarshal(b, m)
}

func (c *MetadataDecoder) share(b []byte) string {
	if s, ok := c.shared[string(b)]; ok {
		return s
	}
	s := string(b)
	if c.shared == nil {
		c.shared = map[string]string{}
	}
	if len(c.shared) < maxShared {
		c.shared[s] = s
	}
	return s
}

// metadataDecoder reads the compact form; each method reports false when
// the input leaves that form, and the caller then falls back.
type metadataDecoder struct {
	b      []byte
	i      int
	shared *MetadataDecoder // nil: nothing shared
}

func (d *metadataDecoder) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// rawString returns the bytes between the quotes of a string that needs
// no unescaping: no backslash, no control character, valid UTF-8.
func (d *metadataDecoder) rawString() ([]byte, bool) {
	if !d.lit(`"`) {
		return nil, false
	}
	start, ascii := d.i, true
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (d *metadataDecoder) str(dst *string) bool {
	s, ok := d.rawString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// name is str for a value that repeats across events.
func (d *metadataDecoder) name(dst *string) bool {
	s, ok := d.rawString()
	if ok {
		if d.shared != nil {
			*dst = d.shared.share(s)
		} else {
			*dst = string(s)
		}
	}
	return ok
}

// strs reads an array of strings; [] is an empty, non-nil slice, as
// json.Unmarshal makes it.
func (d *metadataDecoder) strs(dst *[]string) bool {
	if !d.lit(`[`) {
		return false
	}
	out := []string{}
	if d.lit(`]`) {
		*dst = out
		return true
	}
	for {
		var s string
		if !d.name(&s) {
			return false
		}
		out = append(out, s)
		if d.lit(`]`) {
			*dst = out
			return true
		}
		if !d.lit(`,`) {
			return false
		}
	}
}

// object reads {"key":value,…} whose keys are among keys, each at most
// once and in that order; value reads the value of keys[k].
func (d *metadataDecoder) object(keys []string, value func(k int) bool) bool {
	if !d.lit(`{`) {
		return false
	}
	if d.lit(`}`) {
		return true
	}
	next := 0
	for {
		name, ok := d.rawString()
		if !ok || !d.lit(`:`) {
			return false
		}
		k := next
		for k < len(keys) && keys[k] != string(name) {
			k++
		}
		if k == len(keys) || !value(k) {
			return false // unknown, repeated or out of order: not the compact form
		}
		next = k + 1
		if d.lit(`}`) {
			return true
		}
		if !d.lit(`,`) {
			return false
		}
	}
}

var (
	metadataKeys = []string{"org_id", "actor", "correlation_id", "causation_id", "trace_id", "span_id",
		"authorization", "idempotency_key", "schema_version", "occurred_at"}
	actorKeys = []string{"subject", "kind", "roles", "created_by", "on_behalf_of", "invoker_kind", "scope"}
)

func (d *metadataDecoder) metadata(m *Metadata) bool {
	return d.object(metadataKeys, func(k int) bool {
		switch k {
		case 0:
			return d.name(&m.OrgID)
		case 1:
			return d.actor(&m.Actor)
		case 2:
			return d.str(&m.CorrelationID)
		case 3:
			return d.str(&m.CausationID)
		case 4:
			return d.str(&m.TraceID)
		case 5:
			return d.str(&m.SpanID)
		case 6:
			return d.name(&m.Authorization)
		case 7:
			return d.str(&m.IdempotencyKey)
		case 8:
			return d.int(&m.SchemaVersion)
		default:
			start := d.i
			if _, ok := d.rawString(); !ok {
				return false
			}
			return m.OccurredAt.UnmarshalJSON(d.b[start:d.i]) == nil
		}
	})
}

func (d *metadataDecoder) actor(a *Actor) bool {
	return d.object(actorKeys, func(k int) bool {
		switch k {
		case 0:
			return d.name(&a.Subject)
		case 1:
			return d.name(&a.Kind)
		case 2:
			return d.strs(&a.Roles)
		case 3:
			return d.name(&a.CreatedBy)
		case 4:
			return d.strs(&a.OnBehalfOf)
		case 5:
			return d.name(&a.InvokerKind)
		default:
			return d.strs(&a.Scope)
		}
	})
}

// int reads -?(0|[1-9][0-9]*) of at most 18 digits, which cannot
// overflow.
func (d *metadataDecoder) int(dst *int) bool {
	neg := d.lit(`-`)
	start := d.i
	var n int
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		n = n*10 + int(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 18 || (digits > 1 && d.b[start] == '0') {
		return false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return false
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}
