package domain_test

import (
	"errors"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/domain"
)

func TestCheckSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sub  string
		ok   bool
		note string
	}{
		{"alice", true, "letters"},
		{"01J9ZQ4Y5X", true, "letters and digits"},
		{"5f0c1e2a-8d4b-4c1e-9f7a-2b3c4d5e6f70", true, "a UUID"},
		{"alice+test@example.com", true, "an e-mail address"},
		{"auth0|5f7c8ec7c33c6c004bbafe82", true, "an Auth0 subject"},
		{"github:1234", true, "a prefixed subject"},
		{"a_b~c", true, "underscore and tilde"},
		{"...", true, "three dots are a name, not a path step"},
		{".a", true, "a leading dot"},
		{strings.Repeat("a", domain.MaxSubjectLen), true, "the longest"},
		{"", false, "empty"},
		{".", false, "a dot"},
		{"..", false, "two dots"},
		{strings.Repeat("a", domain.MaxSubjectLen+1), false, "too long"},
		{"p/q", false, "a slash"},
		{`p\q`, false, "a backslash"},
		{"p%2Fq", false, "a percent escape"},
		{"a b", false, "a space"},
		{"a\x00b", false, "a NUL"},
		{"a\nb", false, "a newline"},
		{"a?b", false, "a question mark"},
		{"a#b", false, "a hash"},
		{"a;b", false, "a semicolon"},
		{"\u0430lice", false, "a Cyrillic a"},
		{"\xff", false, "invalid UTF-8"},
	} {
		err := domain.CheckSubject("sub", tc.sub)
		if (err == nil) != tc.ok {
			t.Errorf("%s (%q): %v, want ok=%v", tc.note, tc.sub, err, tc.ok)
		}
		if err != nil && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", tc.note, err)
		}
	}
}

// subjectPattern restates the documented character set independently of
// CheckSubject's loop.
var subjectPattern = regexp.MustCompile(`^[A-Za-z0-9.\-_~@+:|]{1,256}$`)

// FuzzCheckSubject: CheckSubject never panics, accepts exactly the
// documented set, and whatever it accepts is one URL path segment that
// survives escaping, unescaping and path cleaning unchanged, so that
// /v1/members/{sub} routes to it.
func FuzzCheckSubject(f *testing.F) {
	for _, s := range []string{"alice", "p/q", ".", "..", "...", "", "a%2Fb", "auth0|x", "a+b@c.d", "\x00", "\u212a", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sub string) {
		err := domain.CheckSubject("sub", sub)
		want := subjectPattern.MatchString(sub) && sub != "." && sub != ".."
		if (err == nil) != want {
			t.Fatalf("CheckSubject(%q) = %v, the documented set says ok=%v", sub, err, want)
		}
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("CheckSubject(%q) = %v, not ErrInvalid", sub, err)
			}
			return
		}
		escaped := url.PathEscape(sub)
		if strings.Contains(escaped, "/") {
			t.Fatalf("%q escapes to %q, more than one segment", sub, escaped)
		}
		if back, err := url.PathUnescape(escaped); err != nil || back != sub {
			t.Fatalf("%q escapes to %q, which unescapes to %q (%v)", sub, escaped, back, err)
		}
		if p := "/v1/members/" + sub; path.Clean(p) != p {
			t.Fatalf("%q: the path %q cleans to %q", sub, p, path.Clean(p))
		}
		u, err := url.Parse("http://h/v1/members/" + escaped)
		if err != nil || u.Path != "/v1/members/"+sub {
			t.Fatalf("%q: the request path parses to %q (%v)", sub, u.Path, err)
		}
	})
}
