package events

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// ContentTag is the struct tag with which an event type declares, field by
// field, what its payload holds:
//
//	Title   string `json:"title" audit:"content"` // what a member wrote or read
//	ID      string `json:"id" audit:"record"`     // who, what, which resource
//
// Content is what people wrote, uploaded or asked (document text and
// titles, chunk text, search queries, bot instructions); the audit record
// shows it only to principals holding audit:read-content, and everywhere
// else replaces it by its SHA-256 and size. Record fields are the facts of
// the audit trail (ids, names of resources, subjects, roles, reasons) and
// are shown to audit:read. Digest fields (audit:"digest") are records
// holding a hash of content, which the log keeps keyed (DeclareDigest).
//
// Every field whose JSON can carry text (strings, lists and maps of them,
// types with their own JSON or text encoding such as time.Time) must say
// which it is; struct-typed fields are walked and their own fields declare.
// Numbers and booleans are record without a tag. A text field without a
// declaration is redacted as content (fail closed), and TestEveryEventDeclaresContent
// fails until it is declared.
const ContentTag = "audit"

// Declarations of ContentTag.
const (
	DeclareContent = "content"
	DeclareRecord  = "record"
	// DeclareDigest marks a record field that holds a hash of content (a
	// SHA-256 in hex, as the domain computes it): shown like a record, but
	// what the log stores is its keyed form under the organization's
	// digest key (see eventstore/sealed and sealing.DigestKey), since a
	// plain hash of short content confirms a guess of it after the content
	// itself was shredded. Digest fields are strings.
	DeclareDigest = "digest"
)

// RedactedContent replaces a content value in a redacted payload: the
// SHA-256 (hex) and byte size of the value — of the string itself for a
// string, of its compact JSON otherwise — so that an auditor can match two
// records of the same content without reading it. Where an organization's
// events are shown (the audit API and its export) the hash is keyed under
// the organization's digest key ([Registry.RedactContentWith]), as the
// digests the log records are.
type RedactedContent struct {
	Redacted bool   `json:"redacted"`
	SHA256   string `json:"sha256"`
	Size     int    `json:"size"`
}

// contentPlan says, for one JSON object shape, what each key holds.
// Keys the plan does not know are content (fail closed).
type contentPlan struct {
	fields map[string]fieldPlan
}

type fieldKind int

const (
	fieldContent fieldKind = iota
	fieldRecord
	fieldDigest // a record holding a hash of content
	fieldObject // a struct: apply its plan
	fieldList   // a list of structs: apply its plan to each element
)

type fieldPlan struct {
	kind fieldKind
	// declared is false for text fields that carry no ContentTag.
	declared bool
	name     string
	nested   *contentPlan
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// planFor reads the declarations of struct type t once.
func planFor(t reflect.Type) *contentPlan {
	p := &contentPlan{fields: map[string]fieldPlan{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fp := fieldPlan{name: f.Name}
		switch tag := f.Tag.Get(ContentTag); tag {
		case DeclareContent:
			fp.kind, fp.declared = fieldContent, true
		case DeclareRecord:
			fp.kind, fp.declared = fieldRecord, true
		case DeclareDigest:
			fp.kind, fp.declared = fieldDigest, true
		default:
			fp = planUndeclared(f.Name, f.Type)
			// An unknown declaration is no declaration.
			fp.declared = fp.declared && tag == ""
		}
		p.fields[name] = fp
	}
	return p
}

// planUndeclared decides what a field without a declaration is: a walked
// struct, a number or boolean (record), or text (content, undeclared).
func planUndeclared(name string, t reflect.Type) fieldPlan {
	if encodesItself(t) {
		return fieldPlan{kind: fieldContent, name: name}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return planUndeclared(name, t.Elem())
	case reflect.Struct:
		return fieldPlan{kind: fieldObject, declared: true, name: name, nested: planFor(t)}
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if e.Kind() == reflect.Struct && !encodesItself(e) {
			return fieldPlan{kind: fieldList, declared: true, name: name, nested: planFor(e)}
		}
		if carriesText(e) {
			return fieldPlan{kind: fieldContent, name: name}
		}
		return fieldPlan{kind: fieldRecord, declared: true, name: name}
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return fieldPlan{kind: fieldRecord, declared: true, name: name}
	}
	// Strings, maps, interfaces: text that must be declared.
	return fieldPlan{kind: fieldContent, name: name}
}

func encodesItself(t reflect.Type) bool {
	return t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) ||
		t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

func carriesText(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return encodesItself(t)
	}
	return true
}

// undeclared lists, as "Type.Field" paths, the text fields of p that carry
// no declaration.
func (p *contentPlan) undeclared(prefix string) []string {
	var out []string
	for _, f := range p.fields {
		if !f.declared {
			out = append(out, prefix+"."+f.name)
		}
		if f.nested != nil && (f.kind == fieldObject || f.kind == fieldList) {
			out = append(out, f.nested.undeclared(prefix+"."+f.name)...)
		}
	}
	sort.Strings(out)
	return out
}

// Undeclared lists the text fields of registered event types that do not
// declare with ContentTag whether they are content, as "Type.Field". It is
// empty when every event type is declared; the registry's test holds it so.
func (r *Registry) Undeclared() []string {
	var out []string
	for name, p := range r.plans {
		out = append(out, p.undeclared(name)...)
	}
	sort.Strings(out)
	return out
}

// Redaction is what RedactContent took out of one payload.
type Redaction struct {
	// Fields is the number of content values replaced (null values and
	// absent fields are not counted: they reveal nothing).
	Fields int
}

// Shredded stands where a content value was sealed under a key that no
// longer exists (an organization closed, a person forgotten): the value is
// gone for good, and nothing of it — not even a hash, which would let a
// short value such as a question be guessed — is left. It is JSON null, so
// that every event still decodes into its Go type (a string field reads
// empty, a list none) and projections, aggregates and replays go on over a
// log with shredded parts; the event's type, time, actor, resource ids and
// its place in the hash chain stay. [Registry.RedactContent] keeps it as
// it is.
var Shredded = json.RawMessage(`null`)

// RedactContent returns eventType's JSON payload data with every content
// value replaced by a [RedactedContent]. Record fields are kept as they
// are; keys that the type does not declare, and payloads of unknown types
// or that are not JSON objects, are treated as content, so that nothing
// reaches a reader without audit:read-content unless a type declared it a
// record.
func (r *Registry) RedactContent(eventType string, data []byte) (json.RawMessage, Redaction, error) {
	var red Redaction
	out, err := r.MapContent(eventType, data, func(_ string, v []byte) ([]byte, error) {
		return redactValue(v, &red)
	})
	if err != nil {
		return nil, Redaction{}, fmt.Errorf("redact %s: %w", eventType, err)
	}
	return out, red, nil
}

// RedactContentWith is [Registry.RedactContent] with each value's hash
// passed through digest, which takes and returns hex: the organization's
// keyed digest (sealing.DigestKey.Digest), so that a redacted value
// equals the keyed form the log records for a hash of the same content
// (events.DeclareDigest) and, like it, confirms no guess without the key.
func (r *Registry) RedactContentWith(eventType string, data []byte, digest func(sum string) string) (json.RawMessage, Redaction, error) {
	var red Redaction
	out, err := r.MapContent(eventType, data, func(_ string, v []byte) ([]byte, error) {
		return redactValueWith(v, &red, digest)
	})
	if err != nil {
		return nil, Redaction{}, fmt.Errorf("redact %s: %w", eventType, err)
	}
	return out, red, nil
}

// MapContent returns eventType's JSON payload with every non-null content
// value v at path replaced by replace(path, v). It walks the same plan as
// [Registry.RedactContent] (the one walker of the declarations): record
// values are kept (compacted), keys keep their order, unknown keys and the
// payloads of unknown types are content, and a payload that is not a JSON
// object is one content value at path "$". Paths name the JSON keys from
// the top, with list indices: "chunks.2.text". A payload in which replace
// was not called (no content value, or only null ones) is returned as it
// is, so events without content pass unchanged. The v handed to replace is
// a slice of data: replace must not change it. Objects and lists are split
// by a scanner that accepts exactly what encoding/json accepts
// (jsonscan.go).
func (r *Registry) MapContent(eventType string, data []byte, replace func(path string, v []byte) ([]byte, error)) (json.RawMessage, error) {
	return r.mapPayload(eventType, data, replace, nil)
}

// MapContentAndDigests is [Registry.MapContent] that also replaces every
// non-null, non-empty value of a field declared [DeclareDigest] by
// digest(path, v), v being the value's JSON (a string). A payload in which
// neither function was called is returned as it is.
func (r *Registry) MapContentAndDigests(eventType string, data []byte, content, digest func(path string, v []byte) ([]byte, error)) (json.RawMessage, error) {
	return r.mapPayload(eventType, data, content, digest)
}

func (r *Registry) mapPayload(eventType string, data []byte, content, digest func(path string, v []byte) ([]byte, error)) (json.RawMessage, error) {
	plan := r.plans[eventType]
	if plan == nil {
		plan = &contentPlan{}
	}
	m := &mapper{content: content, digest: digest}
	out, err := plan.walk(bytes.TrimSpace(data), "", m)
	if err != nil {
		return nil, err
	}
	if !m.replaced {
		return data, nil
	}
	return out, nil
}

// mapper is what a walk replaces: content values, and digest values when
// digest is set (otherwise they are kept as records). replaced says
// whether either was called.
type mapper struct {
	content  func(path string, v []byte) ([]byte, error)
	digest   func(path string, v []byte) ([]byte, error)
	replaced bool
}

// redact is walk with every content value redacted.
func (p *contentPlan) redact(data []byte, red *Redaction) (json.RawMessage, error) {
	return p.walk(bytes.TrimSpace(data), "", &mapper{content: func(_ string, v []byte) ([]byte, error) {
		return redactValue(v, red)
	}})
}

func (p *contentPlan) walk(data []byte, path string, replace *mapper) (json.RawMessage, error) {
	if len(data) == 0 || string(data) == "null" {
		return json.RawMessage("null"), nil
	}
	members, ok := objectMembers(data)
	if !ok {
		// Not an object (or not JSON): the whole payload is content.
		return contentValue(data, join(path, "$"), replace)
	}
	// Room for a sealed value, which is larger than the value in clear.
	b := make([]byte, 0, len(data)+len(data)/2+128)
	b = append(b, '{')
	for i := range members {
		m := &members[i]
		f, ok := p.fields[string(m.rawKey)]
		if !m.plain {
			f, ok = p.fields[m.key]
		}
		if !ok {
			f = fieldPlan{kind: fieldContent}
		}
		var nv json.RawMessage
		var err error
		switch f.kind {
		case fieldDigest:
			if replace.digest != nil && !emptyDigest(m.value) {
				replace.replaced = true
				nv, err = replace.digest(join(path, m.name()), bytes.TrimSpace(m.value))
				break
			}
			fallthrough
		case fieldRecord:
			nv = m.value
			if m.spaced {
				nv, err = compact(m.value)
			}
		case fieldObject:
			nv, err = f.nested.walk(m.value, join(path, m.name()), replace)
		case fieldList:
			nv, err = f.nested.walkList(m.value, join(path, m.name()), replace)
		default:
			nv, err = contentValue(m.value, join(path, m.name()), replace)
		}
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append(b, ',')
		}
		if m.plain {
			b = append(append(append(b, '"'), m.rawKey...), '"')
		} else {
			key, _ := json.Marshal(m.key)
			b = append(b, key...)
		}
		b = append(b, ':')
		b = append(b, nv...)
	}
	return append(b, '}'), nil
}

func (p *contentPlan) walkList(data []byte, path string, replace *mapper) (json.RawMessage, error) {
	if string(data) == "null" {
		return json.RawMessage("null"), nil
	}
	items, ok := arrayItems(data)
	if !ok {
		return contentValue(data, path, replace)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range items {
		nv, err := p.walk(it, path+"."+strconv.Itoa(i), replace)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(nv)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// contentValue replaces one content value; null stays null (it reveals
// nothing).
func contentValue(v []byte, path string, replace *mapper) (json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	if string(v) == "null" {
		return json.RawMessage("null"), nil
	}
	replace.replaced = true
	return replace.content(path, v)
}

// emptyDigest reports whether a digest value names no content: null or
// the empty string.
func emptyDigest(v []byte) bool {
	v = bytes.TrimSpace(v)
	return string(v) == "null" || string(v) == `""`
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// redactValue replaces one content value by its hash and size.
func redactValue(v []byte, red *Redaction) (json.RawMessage, error) {
	return redactValueWith(v, red, nil)
}

// redactValueWith replaces one content value by its hash, passed through
// digest when it is set, and size.
func redactValueWith(v []byte, red *Redaction, digest func(string) string) (json.RawMessage, error) {
	if isShredded(v) {
		return Shredded, nil
	}
	raw := v
	var s string
	if json.Unmarshal(v, &s) == nil {
		raw = []byte(s)
	} else if c, err := compact(v); err == nil {
		raw = c
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	if digest != nil {
		hash = digest(hash)
	}
	red.Fields++
	return json.Marshal(RedactedContent{Redacted: true, SHA256: hash, Size: len(raw)})
}

// isShredded reports whether v is the [Shredded] value.
func isShredded(v []byte) bool {
	return bytes.Equal(bytes.TrimSpace(v), Shredded)
}

// compact re-encodes a record value, so that bytes that are not JSON never
// pass through unexamined.
func compact(v []byte) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
