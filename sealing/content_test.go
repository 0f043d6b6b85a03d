package sealing

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealContentBindsOrgPurposeAndKey(t *testing.T) {
	t.Parallel()
	master := newMasterKey(bytes.Repeat([]byte{5}, KeySize))
	key, _, err := NewDataKey(master, "org-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := NewDataKey(master, "org-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if key.ID() == other.ID() {
		t.Fatal("two keys of one version share an id")
	}
	if v, err := ParseKeyID(key.ID()); err != nil || v != 1 {
		t.Fatalf("ParseKeyID(%q) = %d, %v", key.ID(), v, err)
	}
	big := bytes.Repeat([]byte("x"), MaxPlaintext+1) // documents exceed the secrets' limit
	box, err := SealContent(key, "org-a", big, "event:1:T:text")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenContent(key, "org-a", box, "event:1:T:text"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("open: %v", err)
	}
	for name, open := range map[string]func() error{
		"other org":     func() error { _, err := OpenContent(key, "org-b", box, "event:1:T:text"); return err },
		"other purpose": func() error { _, err := OpenContent(key, "org-a", box, "event:2:T:text"); return err },
		"other key":     func() error { _, err := OpenContent(other, "org-a", box, "event:1:T:text"); return err },
	} {
		if err := open(); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: %v, want ErrAuthentication", name, err)
		}
	}
	if _, err := OpenContent(key, "org-a", box[:10], "event:1:T:text"); !errors.Is(err, ErrMalformed) {
		t.Errorf("short box: %v", err)
	}
	// A secret's seal and a content seal never open as each other.
	s, _ := Seal(key, "org-a", []byte("pw"), "p")
	if _, err := OpenContent(key, "org-a", append(s.Nonce, s.Ciphertext...), "p"); err == nil {
		t.Error("a sealed secret opened as content")
	}
}
