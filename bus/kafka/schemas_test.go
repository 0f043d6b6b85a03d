package kafka_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// compileSchema compiles schemas/<name>.schema.json, format assertions on.
func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("schemas", name+".schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// TestEverySchemaIsThere: every registered event type has a schema file,
// and every schema file but the envelope's names a registered type.
func TestEverySchemaIsThere(t *testing.T) {
	t.Parallel()
	types := events.NewRegistry().Types()
	sort.Strings(types)
	files, err := filepath.Glob(filepath.Join("schemas", "*.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".schema.json"); name != "envelope" {
			named = append(named, name)
		}
	}
	sort.Strings(named)
	if !slices.Equal(types, named) {
		t.Fatalf("event types %v\nschema files %v", types, named)
	}
}

// TestSchemasMatchGoTypes: each schema has exactly the Go type's JSON
// fields, requires exactly those without omitempty, and accepts the JSON
// of the type's zero value and of a value with every field filled, while
// refusing a field of the wrong type.
func TestSchemasMatchGoTypes(t *testing.T) {
	t.Parallel()
	registry := events.NewRegistry()
	for _, typ := range registry.Types() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			sch := compileSchema(t, typ)
			raw, err := os.ReadFile(filepath.Join("schemas", typ+".schema.json"))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			zero, err := registry.New(typ)
			if err != nil {
				t.Fatal(err)
			}
			goType := reflect.TypeOf(zero).Elem()
			sameFields(t, typ, goType, doc, doc)

			for name, v := range map[string]any{"zero": zero, "filled": filled(t, goType)} {
				data, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate(sch, data); err != nil {
					t.Errorf("%s value %s does not validate: %v", name, data, err)
				}
				if _, err := registry.Decode(typ, data); err != nil {
					t.Errorf("%s value %s does not decode: %v", name, data, err)
				}
			}
			if goType.NumField() > 0 {
				var broken map[string]any
				data, _ := json.Marshal(filled(t, goType))
				_ = json.Unmarshal(data, &broken)
				for k := range broken {
					broken[k] = map[string]any{"not": "this"}
					break
				}
				data, _ = json.Marshal(broken)
				if err := validate(sch, data); err == nil {
					t.Errorf("%s accepted %s", typ, data)
				}
			}
		})
	}
}

// sameFields compares a Go struct's JSON fields with an object schema's
// properties and required list, descending into nested structs (local
// $refs resolved against root).
func sameFields(t *testing.T, where string, goType reflect.Type, schema, root map[string]any) {
	t.Helper()
	if ref, ok := schema["$ref"].(string); ok {
		path, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			t.Fatalf("%s: unexpected $ref %q", where, ref)
		}
		schema = root["$defs"].(map[string]any)[path].(map[string]any)
	}
	props, _ := schema["properties"].(map[string]any)
	var required []string
	for _, r := range asSlice(schema["required"]) {
		required = append(required, r.(string))
	}
	var fields, mandatory []string
	for i := range goType.NumField() {
		f := goType.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, name)
		if !strings.Contains(opts, "omitempty") {
			mandatory = append(mandatory, name)
		}
		ft := f.Type
		sub, _ := props[name].(map[string]any)
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
			sub, _ = sub["items"].(map[string]any)
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
			if sub == nil {
				t.Fatalf("%s: no object schema for %s", where, name)
			}
			sameFields(t, where+"."+name, ft, sub, root)
		}
	}
	var names []string
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(fields)
	sort.Strings(names)
	sort.Strings(mandatory)
	sort.Strings(required)
	if !slices.Equal(fields, names) {
		t.Errorf("%s: Go fields %v, schema properties %v", where, fields, names)
	}
	if !slices.Equal(mandatory, required) {
		t.Errorf("%s: Go fields without omitempty %v, schema requires %v", where, mandatory, required)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// filled returns a pointer to a value of typ with every field set.
func filled(t *testing.T, typ reflect.Type) any {
	t.Helper()
	v := reflect.New(typ)
	fill(t, v.Elem())
	return v.Interface()
}

func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	if v.Type() == reflect.TypeOf(json.RawMessage(nil)) {
		// Raw JSON fields hold rows of a result: an array of arrays.
		v.SetBytes([]byte(`[["value-RawMessage",7],["value-RawMessage",8]]`))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("value-" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.75)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"key-1", "key-2"} {
			key, elem := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			key.SetString(k)
			fill(t, elem)
			m.SetMapIndex(key, elem)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem())
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 13, 14, 15, 123456000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i))
			}
		}
	default:
		t.Fatalf("fill: no sample for kind %s (%s); teach fill and the schema", v.Kind(), v.Type())
	}
}

// TestEnvelopeSchema: the envelope schema accepts every event type's
// envelope as Tail prints it (rebuilt from a Kafka message), checks its
// data against the type's schema, and covers every registered type.
func TestEnvelopeSchema(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t, "envelope")
	registry := events.NewRegistry()
	for _, typ := range registry.Types() {
		zero, _ := registry.New(typ)
		for name, v := range map[string]any{"zero": zero, "filled": filled(t, reflect.TypeOf(zero).Elem())} {
			data, _ := json.Marshal(v)
			env := eventstore.Envelope{
				ID: eventstore.NewEventID(), Type: typ, Position: 42, StreamVersion: 3, Data: data,
				Stream: eventstore.MustStreamName("bot", orgA, "bot-1"),
				Metadata: eventstore.Metadata{
					OrgID: orgA, Actor: eventstore.Actor{Subject: "u", Kind: "user", Roles: []string{"owner"}},
					CorrelationID: "c", SchemaVersion: 1, OccurredAt: eventstore.Now(),
				},
			}
			msg, err := eventstore.ToMessage(env)
			if err != nil {
				t.Fatal(err)
			}
			if env, err = eventstore.FromMessage(msg); err != nil {
				t.Fatal(err)
			}
			line, _ := json.Marshal(env)
			if err := validate(sch, line); err != nil {
				t.Errorf("%s %s envelope %s: %v", name, typ, line, err)
			}
		}
		// The type's data schema applies: a string where an object or
		// nothing is expected is refused.
		env := eventstore.Envelope{
			ID: eventstore.NewEventID(), Type: typ, Position: 1, Data: json.RawMessage(`"not an object"`),
			Stream:   eventstore.MustStreamName("bot", orgA, "bot-1"),
			Metadata: eventstore.Metadata{OrgID: orgA, Actor: eventstore.Actor{Subject: "u", Kind: "user"}, OccurredAt: eventstore.Now()},
		}
		line, _ := json.Marshal(env)
		if err := validate(sch, line); err == nil {
			t.Errorf("envelope of %s accepted data %s", typ, env.Data)
		}
	}
	// The schema describes every field the envelope has.
	full := eventstore.Envelope{
		ID: eventstore.NewEventID(), Type: "BotArchived", Position: 1, Data: json.RawMessage(`{}`),
		Stream: eventstore.MustStreamName("bot", orgA, "bot-1"),
		Metadata: eventstore.Metadata{
			OrgID: orgA, Actor: eventstore.Actor{Subject: "u", Kind: "bot", Roles: []string{"r"}, Scope: []string{"kb:read"}, CreatedBy: "user-2", OnBehalfOf: []string{"user-1"}, InvokerKind: "user"},
			CorrelationID: "c", CausationID: "c", TraceID: "t", SpanID: "00f067aa0ba902b7", Authorization: "a", IdempotencyKey: "k",
			SchemaVersion: 1, OccurredAt: eventstore.Now(),
		},
	}
	line, _ := json.Marshal(full)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"properties"`
	}
	raw, _ := os.ReadFile(filepath.Join("schemas", "envelope.schema.json"))
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(doc.Properties), sortedKeys(fields); !slices.Equal(got, want) {
		t.Errorf("envelope schema properties %v, envelope fields %v", got, want)
	}
	var actor map[string]any
	_ = json.Unmarshal(fields["actor"], &actor)
	if got, want := sortedKeys(doc.Properties["actor"].Properties), sortedKeys(actor); !slices.Equal(got, want) {
		t.Errorf("actor schema properties %v, actor fields %v", got, want)
	}
	if err := validate(sch, line); err != nil {
		t.Errorf("full envelope %s: %v", line, err)
	}

	bad := []byte(`{"id":"x","type":"BotArchived","stream":"bot","stream_version":0,"position":0,"data":{},"org_id":"","actor":{},"schema_version":1,"occurred_at":"yesterday"}`)
	if err := validate(sch, bad); err == nil {
		t.Error("envelope schema accepted a malformed envelope")
	}
}
