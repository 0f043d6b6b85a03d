package eventstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// metadataFrom builds a Metadata whose every field comes from the fuzzer:
// strs is split on '|' for the lists, and an empty list stays distinct
// from none where the JSON tells them apart (scope).
func metadataFrom(s, strs string, flags uint8, version int, nanos int64) Metadata {
	list := func(bit uint8) []string {
		switch {
		case flags&bit == 0:
			return nil
		case strs == "":
			return []string{}
		}
		return strings.Split(strs, "|")
	}
	field := func(bit uint8, v string) string {
		if flags&bit == 0 {
			return ""
		}
		return v
	}
	return Metadata{
		OrgID: s,
		Actor: Actor{Subject: s + "-sub", Kind: field(1, "user"), Roles: list(2), Scope: list(4),
			CreatedBy: field(8, s), OnBehalfOf: list(16), InvokerKind: field(32, strs)},
		CorrelationID: field(64, s), CausationID: field(128, strs), TraceID: s, SpanID: strs,
		Authorization: field(1, strs), IdempotencyKey: field(2, s),
		SchemaVersion: version,
		OccurredAt:    time.Unix(0, nanos).UTC(),
	}
}

// FuzzAppendMetadataJSON: the hand-written encoder writes what json.Marshal
// writes, for any strings (escapes, HTML, invalid UTF-8, U+2028) and times.
func FuzzAppendMetadataJSON(f *testing.F) {
	f.Add("org-1", "owner|admin", uint8(0xff), 1, int64(1_700_000_000_123_456_000))
	f.Add("<&>\"\\\n\t\x00\x1f", "", uint8(0x04), -7, int64(0))
	f.Add("\xff\xfe\u2028\u2029é€😀", "a|\xc3", uint8(0x5a), 1<<40, int64(-1))
	f.Add("", "|", uint8(0), 0, int64(253_402_300_800_000_000_000/1000)) // past year 9999
	f.Fuzz(func(t *testing.T, s, strs string, flags uint8, version int, nanos int64) {
		m := metadataFrom(s, strs, flags, version, nanos)
		want, wantErr := json.Marshal(m)
		got, err := AppendMetadataJSON([]byte("prefix"), m)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("error %v, json.Marshal's %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("\n got %s\nwant prefix%s", got, want)
		}
	})
}

// FuzzUnmarshalMetadata: whatever the bytes, the decoder agrees with
// json.Unmarshal into a zero Metadata, on failure and on every field.
func FuzzUnmarshalMetadata(f *testing.F) {
	for _, m := range []Metadata{
		metadataFrom("org-1", "owner|admin", 0xff, 1, 1_700_000_000_123_456_000),
		metadataFrom("o", "", 0x04, -3, 0),
		metadataFrom("é", "x", 0x00, 0, 5),
	} {
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `null`, `{"org_id":"a","org_id":"b"}`, `{"ORG_ID":"a"}`, `{"actor":null}`,
		`{"actor":{"scope":null,"roles":[]}}`, `{"schema_version":01}`, `{"schema_version":1e2}`,
		`{"schema_version":-0}`, `{"org_id":"a\u0041"}`, `{"org_id":"\xff"}`, `{"occurred_at":"2024-01-01T00:00:00+01:00"}`,
		`{"occurred_at":"nope"}`, `{"kind":"x"} `, `{"schema_version":99999999999999999999}`, `{"org_id":"a",}`,
		`{"actor":{"kind":"k","subject":"s"}}`, `{"extra":1,"org_id":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got Metadata
		wantErr := json.Unmarshal(b, &want)
		got.OrgID = "left over" // UnmarshalMetadata starts from zero
		err := UnmarshalMetadata(b, &got)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, json.Unmarshal's %v", b, err, wantErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
		}
		// A decoder that shares strings decodes the same the second time,
		// from the strings it kept the first.
		var dec MetadataDecoder
		for range 2 {
			var again Metadata
			if err := dec.Decode(b, &again); err != nil || !reflect.DeepEqual(again, want) {
				t.Fatalf("%q, shared strings: %v\n got %#v\nwant %#v", b, err, again, want)
			}
		}
	})
}

// TestMetadataJSONRoundTrip: what the encoder writes, the fast path of the
// decoder reads back whole, without falling back to encoding/json.
func TestMetadataJSONRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    Metadata
	}{
		{"every field", metadataFrom("org-1", "owner|admin", 0xff, 3, 1_700_000_000_123_456_000)},
		{"empty scope", metadataFrom("org-1", "", 0x04, 1, 1)},
		{"no optional field", metadataFrom("org-1", "x", 0x00, 1, 1)},
		{"non-ASCII", metadataFrom("organisation-é", "rôle", 0x02, 1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := AppendMetadataJSON(nil, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			var got Metadata
			d := metadataDecoder{b: b}
			if !d.metadata(&got) || d.i != len(b) {
				t.Fatalf("the fast path refused %s at byte %d", b, d.i)
			}
			if !reflect.DeepEqual(got, tt.m) {
				t.Fatalf("\n got %#v\nwant %#v", got, tt.m)
			}
		})
	}
}
