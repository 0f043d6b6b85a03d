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
// are shown to audit:read.
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
)

// RedactedContent replaces a content value in a redacted payload: the
// SHA-256 (hex) and byte size of the value — of the string itself for a
// string, of its compact JSON otherwise — so that an auditor can match two
// records of the same content without reading it.
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

// RedactContent returns eventType's JSON payload data with every content
// value replaced by a [RedactedContent]. Record fields are kept as they
// are; keys that the type does not declare, and payloads of unknown types
// or that are not JSON objects, are treated as content, so that nothing
// reaches a reader without audit:read-content unless a type declared it a
// record.
func (r *Registry) RedactContent(eventType string, data []byte) (json.RawMessage, Redaction, error) {
	var red Redaction
	plan := r.plans[eventType]
	if plan == nil {
		plan = &contentPlan{}
	}
	out, err := plan.redact(bytes.TrimSpace(data), &red)
	if err != nil {
		return nil, Redaction{}, fmt.Errorf("redact %s: %w", eventType, err)
	}
	return out, red, nil
}

func (p *contentPlan) redact(data []byte, red *Redaction) (json.RawMessage, error) {
	if len(data) == 0 || string(data) == "null" {
		return json.RawMessage("null"), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		// Not an object (or not JSON): the whole payload is content.
		return redactValue(data, red)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		v := obj[k]
		f, ok := p.fields[k]
		if !ok {
			f = fieldPlan{kind: fieldContent}
		}
		var nv json.RawMessage
		var err error
		switch f.kind {
		case fieldRecord:
			nv, err = compact(v)
		case fieldObject:
			nv, err = f.nested.redact(v, red)
		case fieldList:
			nv, err = f.nested.redactList(v, red)
		default:
			nv, err = redactValue(v, red)
		}
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(k)
		b.Write(key)
		b.WriteByte(':')
		b.Write(nv)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (p *contentPlan) redactList(data []byte, red *Redaction) (json.RawMessage, error) {
	if string(data) == "null" {
		return json.RawMessage("null"), nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return redactValue(data, red)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range items {
		nv, err := p.redact(it, red)
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

// redactValue replaces one content value by its hash and size.
func redactValue(v []byte, red *Redaction) (json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	if string(v) == "null" {
		return json.RawMessage("null"), nil
	}
	raw := v
	var s string
	if json.Unmarshal(v, &s) == nil {
		raw = []byte(s)
	} else if c, err := compact(v); err == nil {
		raw = c
	}
	sum := sha256.Sum256(raw)
	red.Fields++
	return json.Marshal(RedactedContent{Redacted: true, SHA256: hex.EncodeToString(sum[:]), Size: len(raw)})
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
