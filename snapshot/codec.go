package snapshot

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"time"
)

// ErrCorrupt: the bytes do not decode into the type asked for.
var ErrCorrupt = errors.New("snapshot: corrupt encoding")

// maxLength bounds any one length read back, so a corrupt length cannot
// ask for an absurd allocation.
const maxLength = 1 << 31

var timeType = reflect.TypeFor[time.Time]()

// Encoder writes values in the snapshot encoding: every exported field of
// structs in order, lengths and integers as varints, nil apart from empty
// for slices, maps and pointers, times as time.Time.MarshalBinary writes
// them. Types it cannot keep exactly (interfaces, channels, functions,
// unexported fields) are refused by Fingerprint and by Encode.
type Encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

// NewEncoder returns an encoder writing to w. Call Flush at the end.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: bufio.NewWriterSize(w, 64<<10)} }

// Err returns the first write error.
func (e *Encoder) Err() error { return e.err }

// Flush writes what is buffered and returns the first error.
func (e *Encoder) Flush() error {
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}

func (e *Encoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

// Uvarint writes u.
func (e *Encoder) Uvarint(u uint64) { e.write(e.buf[:binary.PutUvarint(e.buf[:], u)]) }

// Varint writes i.
func (e *Encoder) Varint(i int64) { e.write(e.buf[:binary.PutVarint(e.buf[:], i)]) }

// String writes s.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

// Bytes writes b, keeping nil apart from empty.
func (e *Encoder) Bytes(b []byte) {
	if b == nil {
		e.Uvarint(0)
		return
	}
	e.Uvarint(uint64(len(b)) + 1)
	e.write(b)
}

// Strings writes list, keeping nil apart from empty.
func (e *Encoder) Strings(list []string) {
	if list == nil {
		e.Uvarint(0)
		return
	}
	e.Uvarint(uint64(len(list)) + 1)
	for _, s := range list {
		e.String(s)
	}
}

// Time writes t (instant and zone offset; the monotonic reading is dropped).
func (e *Encoder) Time(t time.Time) {
	b, err := t.MarshalBinary()
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("snapshot: time: %w", err)
		}
		return
	}
	e.Bytes(b)
}

// Encode writes v, which must be of a type Fingerprint accepts.
func (e *Encoder) Encode(v any) error {
	rv := reflect.ValueOf(v)
	if _, err := Fingerprint(rv.Type()); err != nil {
		return err
	}
	e.value(rv)
	return e.err
}

func (e *Encoder) value(v reflect.Value) {
	if e.err != nil {
		return
	}
	if v.Type() == timeType {
		e.Time(v.Interface().(time.Time))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			e.Uvarint(1)
		} else {
			e.Uvarint(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.Varint(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.Uvarint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.Uvarint(math.Float64bits(v.Float()))
	case reflect.String:
		e.String(v.String())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			e.Bytes(v.Bytes())
			return
		}
		if v.IsNil() {
			e.Uvarint(0)
			return
		}
		e.Uvarint(uint64(v.Len()) + 1)
		for i := range v.Len() {
			e.value(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			e.value(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			e.Uvarint(0)
			return
		}
		e.Uvarint(uint64(v.Len()) + 1)
		iter := v.MapRange()
		for iter.Next() {
			e.value(iter.Key())
			e.value(iter.Value())
		}
	case reflect.Pointer:
		if v.IsNil() {
			e.Uvarint(0)
			return
		}
		e.Uvarint(1)
		e.value(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			e.value(v.Field(i))
		}
	default:
		e.err = fmt.Errorf("snapshot: cannot encode %s", v.Type())
	}
}

// Decoder reads what an Encoder wrote.
type Decoder struct {
	r   *bufio.Reader
	err error
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReaderSize(r, 64<<10)} }

// Err returns the first error met.
func (d *Decoder) Err() error { return d.err }

func (d *Decoder) fail(err error) {
	if d.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
}

// Uvarint reads an unsigned integer.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	u, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return u
}

// Varint reads a signed integer.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	i, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return i
}

func (d *Decoder) length(n uint64) int {
	if n > maxLength {
		d.fail(fmt.Errorf("length %d", n))
		return 0
	}
	return int(n)
}

func (d *Decoder) read(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail(err)
		return nil
	}
	return b
}

// String reads a string.
func (d *Decoder) String() string {
	n := d.length(d.Uvarint())
	if n == 0 || d.err != nil {
		return ""
	}
	return string(d.read(n))
}

// Bytes reads bytes, nil when nil was written.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.read(d.length(n - 1))
}

// Strings reads a list of strings, nil when nil was written.
func (d *Decoder) Strings() []string {
	n := d.Uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	out := make([]string, d.length(n-1))
	for i := range out {
		out[i] = d.String()
	}
	return out
}

// Time reads a time.
func (d *Decoder) Time() time.Time {
	var t time.Time
	b := d.Bytes()
	if d.err != nil {
		return t
	}
	if err := t.UnmarshalBinary(b); err != nil {
		d.fail(err)
	}
	return t
}

// Decode reads into what ptr points to, of a type Fingerprint accepts.
func (d *Decoder) Decode(ptr any) error {
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("snapshot: decode into %T, not a pointer", ptr)
	}
	if _, err := Fingerprint(rv.Type().Elem()); err != nil {
		return err
	}
	d.value(rv.Elem())
	return d.err
}

func (d *Decoder) value(v reflect.Value) {
	if d.err != nil {
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(d.Time()))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(d.Uvarint() != 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(d.Varint())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(d.Uvarint())
	case reflect.Float32, reflect.Float64:
		v.SetFloat(math.Float64frombits(d.Uvarint()))
	case reflect.String:
		v.SetString(d.String())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if b := d.Bytes(); b != nil {
				v.SetBytes(b)
			}
			return
		}
		n := d.Uvarint()
		if n == 0 || d.err != nil {
			return
		}
		l := d.length(n - 1)
		s := reflect.MakeSlice(v.Type(), l, l)
		for i := range l {
			d.value(s.Index(i))
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			d.value(v.Index(i))
		}
	case reflect.Map:
		n := d.Uvarint()
		if n == 0 || d.err != nil {
			return
		}
		l := d.length(n - 1)
		m := reflect.MakeMapWithSize(v.Type(), l)
		for range l {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(k)
			d.value(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if d.Uvarint() == 0 || d.err != nil {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.value(p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			d.value(v.Field(i))
		}
	default:
		d.fail(fmt.Errorf("cannot decode %s", v.Type()))
	}
}

// Fingerprint describes t as the encoding sees it (every field's name and
// type, recursively) and returns the SHA-256 of that description: a
// snapshot written for another shape of t has another fingerprint. It
// refuses types the encoding cannot keep exactly.
func Fingerprint(t reflect.Type) (string, error) {
	var b strings.Builder
	if err := describe(&b, t, map[reflect.Type]bool{}); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:]), nil
}

func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) error {
	if t == timeType {
		b.WriteString("time")
		return nil
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		b.WriteString(t.Kind().String())
	case reflect.Slice:
		b.WriteString("[]")
		return describe(b, t.Elem(), seen)
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		return describe(b, t.Elem(), seen)
	case reflect.Map:
		b.WriteString("map[")
		if err := describe(b, t.Key(), seen); err != nil {
			return err
		}
		b.WriteString("]")
		return describe(b, t.Elem(), seen)
	case reflect.Pointer:
		b.WriteString("*")
		return describe(b, t.Elem(), seen)
	case reflect.Struct:
		if seen[t] {
			return fmt.Errorf("snapshot: recursive type %s", t)
		}
		seen[t] = true
		defer delete(seen, t)
		b.WriteString("{")
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				return fmt.Errorf("snapshot: %s.%s is unexported: the encoding would drop it", t, f.Name)
			}
			b.WriteString(f.Name)
			b.WriteString(" ")
			if err := describe(b, f.Type, seen); err != nil {
				return err
			}
			b.WriteString(";")
		}
		b.WriteString("}")
	default:
		return fmt.Errorf("snapshot: cannot encode %s (%s)", t, t.Kind())
	}
	return nil
}
