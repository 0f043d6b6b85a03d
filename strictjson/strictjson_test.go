package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/strictjson"
)

func TestCheckKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc        string
		path       string // "" when the document passes
		key, first string
	}{
		{doc: `{"name":"a","owner_sub":"b"}`},
		{doc: `{}`},
		{doc: `[]`},
		{doc: `"name"`},
		{doc: `12`},
		{doc: `[{"a":1},{"a":2}]`},   // one key in each of two objects
		{doc: `{"a":{"a":{"a":1}}}`}, // one key per level
		{doc: `{"ß":1,"ss":2}`},      // no simple fold between them
		{doc: `{"name":"a","name":"b"}`, path: "$", key: "name", first: "name"},
		{doc: `{"name":"a","NAME":"b"}`, path: "$", key: "NAME", first: "name"},
		{doc: `{"Name":"a","nAmE":"b"}`, path: "$", key: "nAmE", first: "Name"},
		{doc: `{"name":"a","n\u0061me":"b"}`, path: "$", key: "name", first: "name"},
		{doc: "{\"kind\":\"user\",\"\u212aind\":\"platform\"}", path: "$", key: "\u212aind", first: "kind"},
		{doc: "{\"s\":1,\"\u017f\":2}", path: "$", key: "\u017f", first: "s"},
		{doc: `{"grants":[{"subject":"user:a","permissions":[],"Subject":"role:owner"}]}`, path: "$.grants[0]", key: "Subject", first: "subject"},
		{doc: `{"a":[1,[2,{"b":{"c":1,"c":2}}]]}`, path: "$.a[1][1].b", key: "c", first: "c"},
		{doc: `{"x y":{"k":1,"K":2}}`, path: `$["x y"]`, key: "K", first: "k"},
		{doc: `[{"a":1,"b":2,"a":3}]`, path: "$[0]", key: "a", first: "a"},
	} {
		err := strictjson.CheckKeys([]byte(tc.doc))
		if tc.path == "" {
			if err != nil {
				t.Errorf("%s: %v, want no error", tc.doc, err)
			}
			continue
		}
		var ke *strictjson.KeyError
		if !errors.As(err, &ke) {
			t.Errorf("%s: %v, want a KeyError", tc.doc, err)
			continue
		}
		if ke.Path != tc.path || ke.Key != tc.key || ke.First != tc.first {
			t.Errorf("%s: %+v, want path %s key %q first %q", tc.doc, ke, tc.path, tc.key, tc.first)
		}
		if !strings.Contains(ke.Error(), tc.key) && len(tc.key) < 40 {
			t.Errorf("%s: message %q does not name the key", tc.doc, ke.Error())
		}
	}
	for _, bad := range []string{``, `{`, `{"a":1}{}`, `{"a":}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001)} {
		if err := strictjson.CheckKeys([]byte(bad)); !errors.Is(err, strictjson.ErrSyntax) {
			t.Errorf("%.40q: %v, want ErrSyntax", bad, err)
		}
	}
}

// TestKeyErrorIsBounded: however long the keys and however deep the
// object, the message stays short.
func TestKeyErrorIsBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 5000)
	doc := strings.Repeat(`{"`+long+`":`, 500) + `{"` + long + `":1,"` + long + `":2}` + strings.Repeat("}", 500)
	err := strictjson.CheckKeys([]byte(doc))
	var ke *strictjson.KeyError
	if !errors.As(err, &ke) || len(err.Error()) > 400 {
		t.Fatalf("%d bytes: %.100v", len(err.Error()), err)
	}
}

// repeatedKey is the reference: a recursive walk that compares every pair
// of keys of every object with strings.EqualFold.
func repeatedKey(dec *json.Decoder) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	switch tok {
	case json.Delim('{'):
		var keys []string
		found := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return false, err
			}
			for _, seen := range keys {
				found = found || strings.EqualFold(seen, k.(string))
			}
			keys = append(keys, k.(string))
			inner, err := repeatedKey(dec)
			if err != nil {
				return false, err
			}
			found = found || inner
		}
		_, err := dec.Token()
		return found, err
	case json.Delim('['):
		found := false
		for dec.More() {
			inner, err := repeatedKey(dec)
			if err != nil {
				return false, err
			}
			found = found || inner
		}
		_, err := dec.Token()
		return found, err
	}
	return false, nil
}

// FuzzCheckKeys: CheckKeys never panics, refuses exactly the valid
// documents the reference finds a repeated key in, and answers ErrSyntax
// for everything json.Valid refuses.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"a":{"b":1,"b":2}}`, `[{"k":1},{"K":1}]`, `{"\u212a":1,"k":2}`, `{}`, `1`, `{"a":[{"x":1,"y":2}]}`, `{"a":1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := strictjson.CheckKeys(doc)
		if !json.Valid(doc) {
			if !errors.Is(err, strictjson.ErrSyntax) {
				t.Fatalf("invalid %q: %v, want ErrSyntax", doc, err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		want, rerr := repeatedKey(dec)
		if rerr != nil {
			t.Skipf("the reference cannot walk %q: %v", doc, rerr)
		}
		var ke *strictjson.KeyError
		if got := errors.As(err, &ke); got != want || (err != nil && ke == nil) {
			t.Fatalf("%q: CheckKeys = %v, the reference finds a repeated key: %v", doc, err, want)
		}
		if ke != nil && !strings.EqualFold(ke.Key, ke.First) {
			t.Fatalf("%q: %q and %q are not equal but for case", doc, ke.Key, ke.First)
		}
	})
}
