// Package strictjson owns the one rule Palisade holds every JSON document
// from outside to, beyond the syntax encoding/json checks: no object has two
// keys that are equal or that differ only in case. encoding/json keeps the
// last of two equal keys and matches struct fields case-insensitively,
// while other parsers keep the first key or match exactly; a document with
// such keys means different things to different readers (a parser
// differential), so it is refused wherever one enters: request bodies
// (package http) and token headers and claims (package identity).
//
// It must never decode documents into values or judge what they mean; it
// only finds the keys.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// KeyError names an object key that repeats an earlier key of the same
// object, exactly or but for case.
type KeyError struct {
	// Path locates the object: "$" for the document, "$.grants[0]" for the
	// first element of the array under "grants".
	Path string
	// Key is the refused key; First is the earlier key it repeats (equal to
	// Key for an exact duplicate).
	Key, First string
}

func (e *KeyError) Error() string {
	if e.Key == e.First {
		return fmt.Sprintf("duplicate key %s in the object at %s", clip(e.Key), e.Path)
	}
	return fmt.Sprintf("keys %s and %s in the object at %s differ only in case", clip(e.First), clip(e.Key), e.Path)
}

// ErrSyntax is returned for a document that is not one JSON value.
var ErrSyntax = errors.New("not one JSON value")

// CheckKeys returns a *KeyError for the first object of data that holds two
// keys that are equal or differ only in case (compared as strings.EqualFold
// compares, after unescaping, so "a" and "\u0061" are the same key). data
// must be one valid JSON value; check it with json.Valid first, which also
// bounds its nesting, or CheckKeys returns an error wrapping ErrSyntax.
func CheckKeys(data []byte) error {
	if !json.Valid(data) {
		return ErrSyntax
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are skipped, never converted
	// The document is valid, so the walk ends with its last token and
	// every token is where the grammar allows it.
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if tok == json.Delim('}') {
				if stack = stack[:len(stack)-1]; len(stack) == 0 {
					return nil
				}
				stack[len(stack)-1].valueDone()
				continue
			}
			key, _ := tok.(string)
			if err := top.addKey(stack, key); err != nil {
				return err
			}
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			if stack = stack[:len(stack)-1]; len(stack) == 0 {
				return nil
			}
			stack[len(stack)-1].valueDone()
		default:
			if top == nil {
				return nil // a scalar document
			}
			top.valueDone()
		}
	}
}

// frame is one open object or array.
type frame struct {
	object  bool
	wantKey bool
	// keys maps each key's case fold to the key as written.
	keys map[string]string
	// key is the object's current key; index the array's current element.
	key   string
	index int
}

func (f *frame) addKey(stack []*frame, key string) error {
	folded := fold(key)
	if first, ok := f.keys[folded]; ok {
		return &KeyError{Path: path(stack[:len(stack)-1]), Key: key, First: first}
	}
	if f.keys == nil {
		f.keys = map[string]string{}
	}
	f.keys[folded] = key
	f.key, f.wantKey = key, false
	return nil
}

func (f *frame) valueDone() {
	if f.object {
		f.wantKey = true
	} else {
		f.index++
	}
}

// fold maps s to one representative of the strings strings.EqualFold
// finds equal to it: each rune becomes the smallest rune of its Unicode
// simple case-folding orbit (so "K", "k" and the Kelvin sign fold alike).
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < 0x80
	}
	if ascii {
		// The least rune of an ASCII letter's orbit is its capital.
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// maxPathLen bounds a path in an error message; deeper paths keep their
// end, which is the part that locates the object.
const maxPathLen = 160

// path writes where the innermost of stack's containers is.
func path(stack []*frame) string {
	var b strings.Builder
	b.WriteString("$")
	for _, f := range stack {
		if f.object {
			if isPlain(f.key) {
				b.WriteString("." + f.key)
			} else {
				b.WriteString("[" + clip(f.key) + "]")
			}
		} else {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	p := b.String()
	if len(p) > maxPathLen {
		p = "$…" + p[len(p)-maxPathLen:]
	}
	return p
}

func isPlain(key string) bool {
	if key == "" || len(key) > 40 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// clip quotes a key for a message, at most 40 bytes of it.
func clip(key string) string {
	if len(key) > 40 {
		key = key[:40]
		return strconv.Quote(key) + "…"
	}
	return strconv.Quote(key)
}
