package sealing

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestDigestKeyIsKeyedAndStable: a digest is neither the plain SHA-256 nor
// the same under another organization's key; it is the same for equal
// content under one key, stays empty for no hash, ContentDigest is Digest
// of the recorded hash, and it matches its definition (an HMAC-SHA-256
// under a key derived from the data key with its own label).
func TestDigestKeyIsKeyedAndStable(t *testing.T) {
	t.Parallel()
	master := newMasterKey(bytes.Repeat([]byte{6}, KeySize))
	a, _, err := NewDataKey(master, "org-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := NewDataKey(master, "org-b", 1)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("yes")
	plain := sha256.Sum256(content)
	sum := hex.EncodeToString(plain[:])

	da := a.DigestKey()
	got := da.Digest(sum)
	if len(got) != 64 || got == sum {
		t.Fatalf("digest %q of %q: want 64 hex digits other than the plain hash", got, sum)
	}
	if again := a.DigestKey().Digest(sum); again != got {
		t.Fatalf("the digest of the same hash changed: %s then %s", got, again)
	}
	if other := b.DigestKey().Digest(sum); other == got {
		t.Fatal("two organizations' keys give one digest")
	}
	if c := da.ContentDigest(content); c != got {
		t.Fatalf("ContentDigest %s, Digest of the content's hash %s", c, got)
	}
	if e := da.Digest(""); e != "" {
		t.Fatalf("Digest of no hash = %q, want empty", e)
	}
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte("palisade content digest key v1\x00"))
	dk := mac.Sum(nil)
	mac = hmac.New(sha256.New, dk)
	mac.Write([]byte(sum))
	if want := hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("digest %s, the definition gives %s", got, want)
	}
	for _, s := range []string{fmt.Sprint(da), fmt.Sprintf("%#v", da), fmt.Sprintf("%x", da)} {
		if strings.Contains(s, hex.EncodeToString(dk)[:8]) || !strings.Contains(s, "DigestKey") {
			t.Errorf("a printed digest key shows %q", s)
		}
	}
	if !(DataKey{}).DigestKey().IsZero() || da.IsZero() {
		t.Error("IsZero")
	}
}
