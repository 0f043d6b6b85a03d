package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The reference: how the walk split JSON before the scanner, with
// encoding/json. The fuzz targets below hold the scanner to it.

func referenceObjectMembers(data []byte) (keys []string, values []json.RawMessage, ok bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, isKey := tok.(string)
		if !isKey {
			return nil, nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		keys = append(keys, k)
		values = append(values, v)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, false
	}
	return keys, values, true
}

func referenceWalk(p *contentPlan, data []byte, path string, replace func(string, []byte) ([]byte, error)) (json.RawMessage, error) {
	if len(data) == 0 || string(data) == "null" {
		return json.RawMessage("null"), nil
	}
	keys, values, ok := referenceObjectMembers(data)
	if !ok {
		return contentValue(data, join(path, "$"), &mapper{content: replace})
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		v := values[i]
		f, ok := p.fields[k]
		if !ok {
			f = fieldPlan{kind: fieldContent}
		}
		at := join(path, k)
		var nv json.RawMessage
		var err error
		switch f.kind {
		case fieldRecord, fieldDigest:
			nv, err = compact(v)
		case fieldObject:
			nv, err = referenceWalk(f.nested, v, at, replace)
		case fieldList:
			nv, err = referenceWalkList(f.nested, v, at, replace)
		default:
			nv, err = contentValue(v, at, &mapper{content: replace})
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

func referenceWalkList(p *contentPlan, data []byte, path string, replace func(string, []byte) ([]byte, error)) (json.RawMessage, error) {
	if string(data) == "null" {
		return json.RawMessage("null"), nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return contentValue(data, path, &mapper{content: replace})
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range items {
		nv, err := referenceWalk(p, bytes.TrimSpace(it), path+"."+strconv.Itoa(i), replace)
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

func scanSeeds(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a":1,"a":2}`, `{"a" : [1, {"b": null}] , "c":"x"}`, `{"a":1,}`, `{,}`, `{"a"}`,
		`{"a":-0.5e+3,"b":1E2,"c":01}`, `{"a":1.}`, `{"a":.5}`, `{"\u0041<>&\ud800":true}`, "{\"\xff\":1}", "{\"\u2028\":1}",
		`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{"a":[}`, `[]`, `[1, 2 ,{"a":[]}]`, `[1,]`, `null`, `"s"`, `{"a":1} x`,
		"{\"a\":\"\t\"}", `{"a":{"b":{"c":[[[]]]}}}`, `{"chunks":[{"text":"t","n":1},null,{"text":null}],"title":"x"}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzObjectMembers: the scanner accepts the objects encoding/json's
// Decoder accepted, and splits them into the same keys and values.
func FuzzObjectMembers(f *testing.F) {
	scanSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, values, wantOK := referenceObjectMembers(data)
		members, ok := objectMembers(data)
		if ok != wantOK {
			t.Fatalf("%q: scanner ok %v, encoding/json %v", data, ok, wantOK)
		}
		if len(members) != len(keys) && ok {
			t.Fatalf("%q: %d members, want %d", data, len(members), len(keys))
		}
		for i := range keys {
			m := members[i]
			if m.name() != keys[i] || !bytes.Equal(m.value, values[i]) {
				t.Fatalf("%q: member %d is %q: %s, want %q: %s", data, i, m.name(), m.value, keys[i], values[i])
			}
			if m.plain {
				if want, _ := json.Marshal(keys[i]); string(want) != `"`+string(m.rawKey)+`"` {
					t.Fatalf("%q: key %q called plain, but json.Marshal writes %s", data, m.rawKey, want)
				}
			}
			var c bytes.Buffer
			if err := json.Compact(&c, values[i]); err != nil || (!m.spaced && !bytes.Equal(c.Bytes(), values[i])) {
				t.Fatalf("%q: value %s not called spaced, but compacts to %s (%v)", data, values[i], c.Bytes(), err)
			}
		}
	})
}

// FuzzArrayItems: the scanner splits arrays as json.Unmarshal into a
// []json.RawMessage does, and fails where it fails.
func FuzzArrayItems(f *testing.F) {
	scanSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		items, ok := arrayItems(data)
		if ok != (wantErr == nil) || (ok && want == nil) {
			if !(wantErr == nil && want == nil) { // null decodes to nil: the caller's case
				t.Fatalf("%q: scanner ok %v, encoding/json %v", data, ok, wantErr)
			}
		}
		if !ok {
			return
		}
		if len(items) != len(want) {
			t.Fatalf("%q: %d items, want %d", data, len(items), len(want))
		}
		for i := range want {
			if !bytes.Equal(items[i], want[i]) {
				t.Fatalf("%q: item %d is %s, want %s", data, i, items[i], want[i])
			}
		}
	})
}

// FuzzMapContent: for any payload of a type with nested objects, lists and
// records, the walk maps the same values at the same paths into the same
// output as the walk over encoding/json did.
func FuzzMapContent(f *testing.F) {
	scanSeeds(f)
	plan := planFor(reflect.TypeFor[struct {
		Title  string `json:"title" audit:"content"`
		ID     string `json:"id" audit:"record"`
		N      int    `json:"n"`
		Chunks []struct {
			Text string `json:"text" audit:"content"`
			N    int    `json:"n"`
		} `json:"chunks"`
		Source struct {
			URL  string `json:"url" audit:"content"`
			Kind string `json:"kind" audit:"record"`
		} `json:"source"`
	}]())
	f.Fuzz(func(t *testing.T, data []byte) {
		var paths, wantPaths []string
		replace := func(into *[]string) func(string, []byte) ([]byte, error) {
			return func(path string, v []byte) ([]byte, error) {
				*into = append(*into, path+"="+string(v))
				if strings.Contains(path, "fail") {
					return nil, errors.New("refused")
				}
				return []byte(fmt.Sprintf(`{"at":%q}`, path)), nil
			}
		}
		trimmed := bytes.TrimSpace(data)
		want, wantErr := referenceWalk(plan, trimmed, "", replace(&wantPaths))
		got, err := plan.walk(trimmed, "", &mapper{content: replace(&paths)})
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s (%v)\nwant %s (%v)", data, got, err, want, wantErr)
		}
		if !reflect.DeepEqual(paths, wantPaths) {
			t.Fatalf("%q: replaced %q, want %q", data, paths, wantPaths)
		}
	})
}

// TestScannerNestingLimit: encoding/json refuses more than 10,000 nested
// containers; so does the scanner, counted the same way.
func TestScannerNestingLimit(t *testing.T) {
	t.Parallel()
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name string
		data string
	}{
		{"object member at the limit", `{"a":` + nested(maxNesting) + `}`},
		{"object member past the limit", `{"a":` + nested(maxNesting+1) + `}`},
		{"array at the limit", nested(maxNesting)},
		{"array past the limit", nested(maxNesting + 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, wantObject := referenceObjectMembers([]byte(tt.data))
			if _, ok := objectMembers([]byte(tt.data)); ok != wantObject {
				t.Errorf("objectMembers ok %v, encoding/json %v", ok, wantObject)
			}
			var items []json.RawMessage
			wantArray := json.Unmarshal([]byte(tt.data), &items) == nil
			if _, ok := arrayItems([]byte(tt.data)); ok != wantArray {
				t.Errorf("arrayItems ok %v, encoding/json %v", ok, wantArray)
			}
		})
	}
}
