package consistency

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func testSealer(t testing.TB, seed byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	for _, pos := range []uint64{0, 1, 42, 1 << 40, ^uint64(0)} {
		tok, err := s.Seal("org-a", pos)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Open("org-a", tok)
		if err != nil || got != pos {
			t.Fatalf("Open(Seal(%d)) = %d, %v", pos, got, err)
		}
	}
}

func TestTwoTokensForOnePositionDiffer(t *testing.T) {
	s := testSealer(t, 1)
	a, _ := s.Seal("org-a", 7)
	b, _ := s.Seal("org-a", 7)
	if a == b {
		t.Fatalf("two tokens for one position are equal: %s", a)
	}
}

func TestRefused(t *testing.T) {
	s := testSealer(t, 1)
	tok, err := s.Seal("org-a", 99)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	payload := append([]byte(nil), raw...)
	payload[1+12] ^= 0x80
	otherVersion := append([]byte(nil), raw...)
	otherVersion[0] = 2
	enc := base64.RawURLEncoding.EncodeToString
	otherDeployment, _ := testSealer(t, 2).Seal("org-a", 99)

	tests := []struct {
		name, org, token string
	}{
		{"other organization", "org-b", tok},
		{"empty organization", "", tok},
		{"other deployment", "org-a", otherDeployment},
		{"tampered tag", "org-a", enc(flipped)},
		{"tampered payload", "org-a", enc(payload)},
		{"other version", "org-a", enc(otherVersion)},
		{"truncated", "org-a", tok[:len(tok)-4]},
		{"extended", "org-a", tok + "AAAA"},
		{"empty", "org-a", ""},
		{"bare position", "org-a", "99"},
		{"not base64", "org-a", "!!!!"},
		{"padded base64", "org-a", base64.URLEncoding.EncodeToString(raw)},
		{"huge", "org-a", string(bytes.Repeat([]byte("A"), 10_000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Open(tt.org, tt.token); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Open = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte secret was accepted")
	}
}

func FuzzOpen(f *testing.F) {
	s := testSealer(f, 1)
	tok, _ := s.Seal("org-a", 5)
	f.Add("org-a", tok)
	f.Add("org-b", tok)
	f.Add("org-a", tok[:10])
	f.Add("org-a", "")
	f.Add("", "AQ")
	f.Fuzz(func(t *testing.T, org, token string) {
		pos, err := s.Open(org, token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Open error %v is not ErrInvalidToken", err)
			}
			return
		}
		// Only a genuine token opens: the only one ever sealed under this
		// key is position 5 for org-a (each fuzz worker seals its own).
		if org != "org-a" || pos != 5 {
			t.Fatalf("forged token opened: org %q token %q -> %d", org, token, pos)
		}
	})
}

// TestRotation: a sealer that also opens under older secrets opens tokens
// of a sealer with any of them, seals only under its first, and refuses a
// token once the secret that sealed it is gone from the set.
func TestRotation(t *testing.T) {
	old, next := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	mustSealer := func(secret []byte, also ...[]byte) *Sealer {
		t.Helper()
		s, err := NewSealer(secret, also...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := mustSealer(old)         // one key
	added := mustSealer(old, next)    // next added, old still seals
	switched := mustSealer(next, old) // next seals, old still opens
	removed := mustSealer(next)       // old gone
	seal := func(s *Sealer) string {
		t.Helper()
		tok, err := s.Seal("org-a", 42)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	opens := func(s *Sealer, tok string) bool {
		pos, err := s.Open("org-a", tok)
		if err == nil && pos != 42 {
			t.Fatalf("opened position %d, want 42", pos)
		}
		return err == nil
	}
	for _, tt := range []struct {
		name     string
		from, to *Sealer
		want     bool
	}{
		{"before → added", before, added, true},
		{"added → before", added, before, true},
		{"before → switched", before, switched, true},
		{"switched → added", switched, added, true},
		{"added → switched", added, switched, true},
		{"switched → removed", switched, removed, true},
		{"before → removed", before, removed, false},
		{"switched → before", switched, before, false},
	} {
		if got := opens(tt.to, seal(tt.from)); got != tt.want {
			t.Errorf("%s: opens = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := NewSealer(old, make([]byte, 16)); err == nil {
		t.Error("a short secret to open with was accepted")
	}
}
