package sealed

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseValue: the direct reading of the written form gives the same
// answer as encoding/json for any bytes.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{
		`{"sealed":"AAAA","key":"1-abcdef01"}`, `{"sealed":"AA==","key":"1-abcdef01","subject":"00ff"}`,
		`{"sealed":"","key":"","subject":""}`, `{"key":"1-abcdef01","sealed":"AAAA"}`, `{"sealed":"A\u0041","key":"k"}`,
		`{"sealed":"a<b","key":"k"}`, `{"sealed":"AAAA","key":"k","subject":null}`, `{"sealed":"AAAA","key":"k"} `,
		`{"sealed":"AAAA","key":"k","x":1}`, `{"sealed":"AAAA","sealed":"BBBB","key":"k"}`, "{\"sealed\":\"\xff\",\"key\":\"k\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		want, wantOK := parseValueJSON(v)
		got, ok := parseValue(v)
		if ok != wantOK || got != want {
			t.Fatalf("%q: %+v %v, encoding/json %+v %v", v, got, ok, want, wantOK)
		}
	})
}

// FuzzAppendValue: the sealed form is written as json.Marshal writes a
// Value, and reads back.
func FuzzAppendValue(f *testing.F) {
	f.Add([]byte("box"), "1-abcdef01", "")
	f.Add([]byte{0, 0xff, 0xfe}, "12-00000000", "0123456789abcdef0123456789abcdef")
	f.Add([]byte(""), "k<&>\"\\\u2028", "\xff")
	f.Fuzz(func(t *testing.T, box []byte, keyID, handle string) {
		want, err := json.Marshal(Value{Sealed: b64.EncodeToString(box), Key: keyID, Subject: handle})
		if err != nil {
			t.Fatal(err)
		}
		got := appendValue([]byte("x"), box, keyID, handle)
		if !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Fatalf("\n got %s\nwant x%s", got, want)
		}
		sv, ok := parseValue(got[1:])
		if !ok || sv.Sealed != b64.EncodeToString(box) || sv.Key != keyID || sv.Subject != handle {
			if plainJSON(keyID) && plainJSON(handle) {
				t.Fatalf("%s reads back as %+v %v", got[1:], sv, ok)
			}
		}
	})
}
