package embed

import (
	"hash/fnv"
	"testing"
)

// The inline hash must stay FNV-1a, the published function, so the offline
// vectors can be recomputed by anyone from the algorithm alone.
func TestInlineHashIsFNV1a(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", "palisade", "東京", "\x02doc\x03"} {
		ref := fnv.New64a()
		ref.Write([]byte(s))
		if got, want := fnv1a(fnvOffset64, []byte(s)), ref.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %x, hash/fnv says %x", s, got, want)
		}
	}
}

func TestStem(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"documents": "document", "studies": "study", "passwords": "password",
		"configured": "configur", "configuring": "configur", "class": "class",
		"status": "status", "analysis": "analysis", "keys": "key", "is": "is",
		"grüße": "grüße", "red": "red",
	} {
		if got := string(stem([]byte(in))); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}
