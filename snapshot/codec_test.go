package snapshot

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

type inner struct {
	Zero  int
	Names []string
}

type sample struct {
	Nil      []string
	Empty    []string
	Bytes    []byte
	NoBytes  []byte
	ZeroPtr  *int
	NilPtr   *int
	Struct   *inner
	Map      map[string]inner
	EmptyMap map[string]int
	At       time.Time
	Neg      int64
	F        float64
	OK       bool
	Arr      [3]byte
}

func TestRoundTripKeepsNilEmptyAndPointers(t *testing.T) {
	t.Parallel()
	zero := 0
	in := sample{
		Empty: []string{}, Bytes: []byte{}, ZeroPtr: &zero, Struct: &inner{},
		Map: map[string]inner{"a": {Names: []string{"x", ""}}}, EmptyMap: map[string]int{},
		At: time.Date(2026, 12, 5, 1, 2, 3, 4, time.FixedZone("", 3600)), Neg: -42, F: 0.25, OK: true, Arr: [3]byte{1, 2, 3},
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	if err := enc.Encode(in); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	var out sample
	if err := NewDecoder(&buf).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if !out.At.Equal(in.At) || out.At.Format(time.RFC3339Nano) != in.At.Format(time.RFC3339Nano) {
		t.Errorf("time: %v, want %v", out.At, in.At)
	}
	out.At = in.At
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
	if out.Nil != nil || out.Empty == nil || out.NoBytes != nil || out.Bytes == nil || out.ZeroPtr == nil || out.NilPtr != nil || out.EmptyMap == nil {
		t.Errorf("nil and empty mixed up: %#v", out)
	}
}

func TestFingerprintRefusesWhatItCannotKeep(t *testing.T) {
	t.Parallel()
	for name, typ := range map[string]reflect.Type{
		"unexported field": reflect.TypeFor[struct{ x int }](),
		"interface":        reflect.TypeFor[struct{ X any }](),
		"func":             reflect.TypeFor[struct{ F func() }](),
	} {
		if _, err := Fingerprint(typ); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	a, _ := Fingerprint(reflect.TypeFor[struct{ A, B string }]())
	b, _ := Fingerprint(reflect.TypeFor[struct{ A, C string }]())
	if a == b || a == "" {
		t.Errorf("renamed field, same fingerprint %q", a)
	}
}

func TestCorruptInputIsAnError(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	_ = enc.Encode(sample{Empty: []string{"a", "b"}, Bytes: []byte("hello")})
	_ = enc.Flush()
	whole := buf.Bytes()
	for cut := 0; cut < len(whole); cut++ {
		var out sample
		if err := NewDecoder(bytes.NewReader(whole[:cut])).Decode(&out); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d of %d: %v, want ErrCorrupt", cut, len(whole), err)
		}
	}
	huge := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01} // a length of 2^56
	var out sample
	if err := NewDecoder(bytes.NewReader(huge)).Decode(&out); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("huge length: %v", err)
	}
}
