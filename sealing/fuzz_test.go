package sealing

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzOpen feeds arbitrary text and JSON to the parsers and arbitrary
// fields to Open. Nothing may panic, and Open may succeed only on the one
// value really sealed, whatever encoding of it the fuzzer found.
func FuzzOpen(f *testing.F) {
	master := newMasterKey(bytes.Repeat([]byte{3}, KeySize))
	key, _, err := NewDataKey(master, "org-a", 1)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := Seal(key, "org-a", []byte("hunter2"), "p")
	if err != nil {
		f.Fatal(err)
	}
	text, _ := sealed.MarshalText()
	js, _ := json.Marshal(sealed)
	f.Add(text, "org-a", "p", uint32(1), sealed.Nonce, sealed.Ciphertext)
	f.Add(js, "org-a", "p", uint32(1), sealed.Nonce, sealed.Ciphertext[1:])
	f.Add([]byte("sealed:v1:1::"), "org-b", "", uint32(0), []byte{}, []byte{})
	f.Add([]byte(`{"format":1}`), "", "p", uint32(2), make([]byte, 12), make([]byte, 16))

	isOriginal := func(s Sealed) bool {
		return s.Format == sealed.Format && s.KeyVersion == sealed.KeyVersion &&
			bytes.Equal(s.Nonce, sealed.Nonce) && bytes.Equal(s.Ciphertext, sealed.Ciphertext)
	}
	try := func(t *testing.T, s Sealed, org, purpose string) {
		t.Helper()
		got, err := Open(key, org, s, purpose)
		if err != nil {
			if got != nil {
				t.Fatalf("Open returned plaintext with error %v", err)
			}
			return
		}
		if !isOriginal(s) || org != "org-a" || purpose != "p" || string(got) != "hunter2" {
			t.Fatalf("Open succeeded on %v for %q/%q: %q", s, org, purpose, got)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, org, purpose string, keyVersion uint32, nonce, ciphertext []byte) {
		var fromText Sealed
		if fromText.UnmarshalText(data) == nil {
			try(t, fromText, org, purpose)
			try(t, fromText, "org-a", "p")
			again, err := fromText.MarshalText()
			if err == nil && !bytes.Equal(again, data) {
				t.Fatalf("text %q parsed, but writes back as %q", data, again)
			}
		}
		var fromJSON Sealed
		if json.Unmarshal(data, &fromJSON) == nil {
			try(t, fromJSON, org, purpose)
			try(t, fromJSON, "org-a", "p")
		}
		raw := Sealed{Format: SealVersion, KeyVersion: keyVersion, Nonce: nonce, Ciphertext: ciphertext}
		try(t, raw, org, purpose)
		try(t, raw, "org-a", "p")
	})
}
