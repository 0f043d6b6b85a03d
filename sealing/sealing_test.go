package sealing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// bundle is what most tests start from: a master key and one data key of
// organization "org-a".
type bundle struct {
	master  MasterKey
	key     DataKey
	wrapped WrappedKey
}

func setup(t *testing.T) bundle {
	t.Helper()
	master, err := GenerateMasterKey()
	if err != nil {
		t.Fatalf("GenerateMasterKey: %v", err)
	}
	key, wrapped, err := NewDataKey(master, "org-a", 1)
	if err != nil {
		t.Fatalf("NewDataKey: %v", err)
	}
	return bundle{master: master, key: key, wrapped: wrapped}
}

func mustSeal(t *testing.T, key DataKey, org string, plaintext []byte, purpose string) Sealed {
	t.Helper()
	s, err := Seal(key, org, plaintext, purpose)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return s
}

func TestParseMasterKey(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{7}, KeySize)
	good := base64.StdEncoding.EncodeToString(raw)
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "32 bytes", in: good},
		{name: "surrounding whitespace", in: "  " + good + "\n"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "16 bytes", in: base64.StdEncoding.EncodeToString(raw[:16]), wantErr: "decodes to 16 bytes, want 32"},
		{name: "33 bytes", in: base64.StdEncoding.EncodeToString(append(raw, 1)), wantErr: "decodes to 33 bytes, want 32"},
		{name: "hex is not accepted", in: strings.Repeat("ab", 32), wantErr: "decodes to 48 bytes"},
		{name: "not base64", in: "!!!!" + good[4:], wantErr: "not standard base64"},
		{name: "unpadded", in: strings.TrimRight(good, "="), wantErr: "not standard base64"},
		{name: "url alphabet", in: strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KeySize))), wantErr: "not standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := ParseMasterKey(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseMasterKey: %v", err)
				}
				if key.Encode() != good {
					t.Errorf("Encode() = %q, want %q", key.Encode(), good)
				}
				return
			}
			if !errors.Is(err, ErrMasterKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrMasterKey containing %q", err, tt.wantErr)
			}
			if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error %q repeats the key", err)
			}
		})
	}
}

func TestMasterKeyID(t *testing.T) {
	t.Parallel()
	a, b := setup(t).master, setup(t).master
	if a.ID() == b.ID() || len(a.ID()) != 16 {
		t.Fatalf("IDs %q and %q: want two distinct 16-character ids", a.ID(), b.ID())
	}
	again, err := ParseMasterKey(a.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != a.ID() {
		t.Errorf("ID changed across Encode/Parse: %q then %q", a.ID(), again.ID())
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	t.Parallel()
	t.Run("creates 0600 then loads the same key", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "data")
		first, err := LoadOrCreateMasterKey(dir)
		if err != nil {
			t.Fatalf("first: %v", err)
		}
		info, err := os.Stat(filepath.Join(dir, MasterKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode %04o, want 0600", perm)
		}
		dirInfo, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := dirInfo.Mode().Perm(); perm != 0o700 {
			t.Errorf("data directory mode %04o, want 0700", perm)
		}
		second, err := LoadOrCreateMasterKey(dir)
		if err != nil {
			t.Fatalf("second: %v", err)
		}
		if first.ID() != second.ID() {
			t.Errorf("second load gave key %s, want %s", second.ID(), first.ID())
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, ".master.key-*"))
		if len(leftovers) != 0 {
			t.Errorf("temporary files left behind: %v", leftovers)
		}
	})
	t.Run("concurrent first use agrees on one key", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		ids := make([]string, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				k, err := LoadOrCreateMasterKey(dir)
				ids[i], errs[i] = k.ID(), err
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("caller %d got key %s, caller 0 got %s", i, ids[i], ids[0])
			}
		}
	})

	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, KeySize)) + "\n"
	refused := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{{
		name:    "group readable",
		prepare: func(t *testing.T, path string) { writeFile(t, path, good, 0o640) },
		wantErr: "mode 0640",
	}, {
		name:    "world readable",
		prepare: func(t *testing.T, path string) { writeFile(t, path, good, 0o604) },
		wantErr: "mode 0604",
	}, {
		name: "wrong size",
		prepare: func(t *testing.T, path string) {
			writeFile(t, path, base64.StdEncoding.EncodeToString([]byte("short"))+"\n", 0o600)
		},
		wantErr: "decodes to 5 bytes, want 32",
	}, {
		name:    "too large",
		prepare: func(t *testing.T, path string) { writeFile(t, path, strings.Repeat(good, 4), 0o600) },
		wantErr: "want one base64 key",
	}, {
		name:    "empty",
		prepare: func(t *testing.T, path string) { writeFile(t, path, "", 0o600) },
		wantErr: "empty",
	}, {
		name: "symlink",
		prepare: func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			writeFile(t, target, good, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		},
		wantErr: "not a regular file",
	}, {
		name: "directory",
		prepare: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		},
		wantErr: "not a regular file",
	}}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, MasterKeyFile)
			tt.prepare(t, path)
			_, err := LoadOrCreateMasterKey(dir)
			if !errors.Is(err, ErrMasterKey) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrMasterKey containing %q", err, tt.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, plaintext := range [][]byte{nil, []byte("hunter2"), bytes.Repeat([]byte{0}, MaxPlaintext)} {
		s := mustSeal(t, b.key, "org-a", plaintext, "datasource:ds1:credentials")
		// Through both stored forms, as an event or a column would carry it.
		viaJSON := roundTripJSON(t, s)
		viaText := roundTripText(t, s)
		for name, in := range map[string]Sealed{"value": s, "json": viaJSON, "text": viaText} {
			got, err := Open(b.key, "org-a", in, "datasource:ds1:credentials")
			if err != nil {
				t.Fatalf("%s: Open: %v", name, err)
			}
			if !bytes.Equal(got, plaintext) {
				t.Fatalf("%s: Open = %d bytes, want %d", name, len(got), len(plaintext))
			}
		}
	}
}

func roundTripJSON(t *testing.T, s Sealed) Sealed {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out Sealed
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("Unmarshal %s: %v", data, err)
	}
	return out
}

func roundTripText(t *testing.T, s Sealed) Sealed {
	t.Helper()
	data, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var out Sealed
	if err := out.UnmarshalText(data); err != nil {
		t.Fatalf("UnmarshalText %s: %v", data, err)
	}
	return out
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const purpose = "datasource:ds1:credentials"
	sealed := mustSeal(t, b.key, "org-a", []byte("hunter2"), purpose)
	otherKey, _, err := NewDataKey(b.master, "org-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	version2, _, err := NewDataKey(b.master, "org-a", 2)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(p []byte, i int) []byte {
		p = bytes.Clone(p)
		p[i] ^= 1
		return p
	}
	tests := []struct {
		name    string
		key     DataKey
		org     string
		purpose string
		edit    func(s Sealed) Sealed
		want    error
	}{
		{name: "another organization", org: "org-b", want: ErrAuthentication},
		{name: "another purpose", purpose: "datasource:ds2:credentials", want: ErrAuthentication},
		{name: "organization and purpose boundary moved", org: "org-adatasource:ds1", purpose: ":credentials", want: ErrAuthentication},
		{name: "another data key", key: otherKey, want: ErrAuthentication},
		{name: "another key version", key: version2, want: ErrWrongKeyVersion},
		{name: "key version relabelled", edit: func(s Sealed) Sealed { s.KeyVersion = 2; return s }, key: func() DataKey { k := b.key; k.version = 2; return k }(), want: ErrAuthentication},
		{name: "ciphertext bit flipped", edit: func(s Sealed) Sealed { s.Ciphertext = flip(s.Ciphertext, 0); return s }, want: ErrAuthentication},
		{name: "tag bit flipped", edit: func(s Sealed) Sealed { s.Ciphertext = flip(s.Ciphertext, len(s.Ciphertext)-1); return s }, want: ErrAuthentication},
		{name: "nonce bit flipped", edit: func(s Sealed) Sealed { s.Nonce = flip(s.Nonce, 3); return s }, want: ErrAuthentication},
		{name: "truncated by one byte", edit: func(s Sealed) Sealed { s.Ciphertext = s.Ciphertext[:len(s.Ciphertext)-1]; return s }, want: ErrAuthentication},
		{name: "truncated below the tag", edit: func(s Sealed) Sealed { s.Ciphertext = s.Ciphertext[:15]; return s }, want: ErrMalformed},
		{name: "empty", edit: func(Sealed) Sealed { return Sealed{} }, want: ErrMalformed},
		{name: "short nonce", edit: func(s Sealed) Sealed { s.Nonce = s.Nonce[:8]; return s }, want: ErrMalformed},
		{name: "unknown format", edit: func(s Sealed) Sealed { s.Format = 2; return s }, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, org, p, s := b.key, "org-a", purpose, sealed
			if !tt.key.IsZero() {
				key = tt.key
			}
			if tt.org != "" {
				org = tt.org
			}
			if tt.purpose != "" {
				p = tt.purpose
			}
			if tt.edit != nil {
				s = tt.edit(s)
			}
			got, err := Open(key, org, s, p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open err = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Open returned %d bytes along with an error", len(got))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q holds the plaintext", err)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name      string
		key       DataKey
		org       string
		purpose   string
		plaintext []byte
	}{
		{name: "zero key", key: DataKey{}, org: "org-a", purpose: "p"},
		{name: "no organization", key: b.key, purpose: "p"},
		{name: "no purpose", key: b.key, org: "org-a"},
		{name: "too large", key: b.key, org: "org-a", purpose: "p", plaintext: make([]byte, MaxPlaintext+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Seal(tt.key, tt.org, tt.plaintext, tt.purpose); err == nil {
				t.Fatal("Seal succeeded")
			}
		})
	}
}

func TestNoncesDiffer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seen := map[string]bool{}
	ciphertexts := map[string]bool{}
	for range 100 {
		s := mustSeal(t, b.key, "org-a", []byte("same"), "p")
		if seen[string(s.Nonce)] || ciphertexts[string(s.Ciphertext)] {
			t.Fatal("a nonce or ciphertext repeated across seals of the same plaintext")
		}
		seen[string(s.Nonce)], ciphertexts[string(s.Ciphertext)] = true, true
	}
	_, w1, _ := NewDataKey(b.master, "org-a", 1)
	_, w2, _ := NewDataKey(b.master, "org-a", 1)
	if bytes.Equal(w1.Nonce, w2.Nonce) {
		t.Error("two wrapped keys share a nonce")
	}
}

func TestUnwrapDataKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := setup(t).master
	sealed := mustSeal(t, b.key, "org-a", []byte("hunter2"), "p")

	key, err := UnwrapDataKey(b.master, roundTripWrappedJSON(t, b.wrapped), "org-a")
	if err != nil {
		t.Fatalf("UnwrapDataKey: %v", err)
	}
	if got, err := Open(key, "org-a", sealed, "p"); err != nil || string(got) != "hunter2" {
		t.Fatalf("Open with the unwrapped key = %q, %v", got, err)
	}

	tests := []struct {
		name   string
		master MasterKey
		org    string
		edit   func(w WrappedKey) WrappedKey
		want   error
	}{
		{name: "another organization", org: "org-b", want: ErrAuthentication},
		{name: "another master key", master: other, want: ErrWrongMasterKey},
		{name: "another master key under a forged id", master: other, edit: func(w WrappedKey) WrappedKey { w.MasterKeyID = other.ID(); return w }, want: ErrAuthentication},
		{name: "version relabelled", edit: func(w WrappedKey) WrappedKey { w.Version = 7; return w }, want: ErrAuthentication},
		{name: "tampered", edit: func(w WrappedKey) WrappedKey {
			w.Ciphertext = bytes.Clone(w.Ciphertext)
			w.Ciphertext[5] ^= 0x80
			return w
		}, want: ErrAuthentication},
		{name: "truncated", edit: func(w WrappedKey) WrappedKey { w.Ciphertext = w.Ciphertext[:40]; return w }, want: ErrMalformed},
		{name: "bad nonce", edit: func(w WrappedKey) WrappedKey { w.Nonce = nil; return w }, want: ErrMalformed},
		{name: "unknown format", edit: func(w WrappedKey) WrappedKey { w.Format = 0; return w }, want: ErrMalformed},
		{name: "zero master key", master: MasterKey{}, org: "org-a", want: ErrMasterKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			master, org, w := b.master, "org-a", b.wrapped
			if !tt.master.IsZero() || tt.name == "zero master key" {
				master = tt.master
			}
			if tt.org != "" {
				org = tt.org
			}
			if tt.edit != nil {
				w = tt.edit(w)
			}
			if _, err := UnwrapDataKey(master, w, org); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func roundTripWrappedJSON(t *testing.T, w WrappedKey) WrappedKey {
	t.Helper()
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var out WrappedKey
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRewrap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	next := setup(t).master
	sealed := mustSeal(t, b.key, "org-a", []byte("hunter2"), "p")

	rewrapped, err := Rewrap(b.master, next, b.wrapped, "org-a")
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if rewrapped.MasterKeyID != next.ID() || rewrapped.Version != b.wrapped.Version {
		t.Fatalf("rewrapped names master %s version %d, want %s version %d", rewrapped.MasterKeyID, rewrapped.Version, next.ID(), b.wrapped.Version)
	}
	key, err := UnwrapDataKey(next, rewrapped, "org-a")
	if err != nil {
		t.Fatalf("unwrap under the new master key: %v", err)
	}
	if got, err := Open(key, "org-a", sealed, "p"); err != nil || string(got) != "hunter2" {
		t.Fatalf("value sealed before the rotation: Open = %q, %v", got, err)
	}
	if _, err := UnwrapDataKey(b.master, rewrapped, "org-a"); !errors.Is(err, ErrWrongMasterKey) {
		t.Errorf("unwrap under the old master key: err = %v, want ErrWrongMasterKey", err)
	}
	if _, err := Rewrap(next, b.master, b.wrapped, "org-a"); !errors.Is(err, ErrWrongMasterKey) {
		t.Errorf("Rewrap from the wrong old key: err = %v, want ErrWrongMasterKey", err)
	}
	if _, err := Rewrap(b.master, next, b.wrapped, "org-b"); !errors.Is(err, ErrAuthentication) {
		t.Errorf("Rewrap as another organization: err = %v, want ErrAuthentication", err)
	}
}

func TestSealedText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := mustSeal(t, b.key, "org-a", []byte("x"), "p")
	text, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "sealed:v1:1:") {
		t.Errorf("text form %q", text)
	}
	bad := []string{
		"",
		"sealed:v2",
		"sealed:v1:1:AAAA",
		"sealed:v01:1:" + b64.EncodeToString(s.Nonce) + ":" + b64.EncodeToString(s.Ciphertext),
		"sealed:v1:+1:" + b64.EncodeToString(s.Nonce) + ":" + b64.EncodeToString(s.Ciphertext),
		"sealed:v1:4294967296:" + b64.EncodeToString(s.Nonce) + ":" + b64.EncodeToString(s.Ciphertext),
		"sealed:v1:1:" + b64.EncodeToString(s.Nonce) + ":" + b64.EncodeToString(s.Ciphertext) + ":",
		"sealed:v1:1:" + b64.EncodeToString(s.Nonce) + ":%%%%",
		"sealed:v1:1:AB==:" + b64.EncodeToString(s.Ciphertext),                                         // non-zero padding bits
		"sealed:v1:1:" + b64.EncodeToString(s.Nonce) + ":" + b64.EncodeToString(s.Ciphertext) + "\r\n", // the decoder skips line breaks
	}
	for _, in := range bad {
		var out Sealed
		if err := out.UnmarshalText([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("UnmarshalText(%q) err = %v, want ErrMalformed", in, err)
		}
	}
	var out Sealed
	if err := json.Unmarshal([]byte(`{"format":1,"key_version":1,"nonce":"","ciphertext":"","plaintext":"x"}`), &out); !errors.Is(err, ErrMalformed) {
		t.Errorf("JSON with an unknown field: err = %v, want ErrMalformed", err)
	}
}

// TestRedaction prints, marshals and logs every type that holds or guards
// a secret, and looks for the secret in the output.
func TestRedaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const password = "correct horse battery staple"
	sealed := mustSeal(t, b.key, "org-a", []byte(password), "p")
	secret := NewSecret(password)
	type request struct {
		User     string `json:"user"`
		Password Secret `json:"password"`
	}
	values := map[string]any{
		"secret":      secret,
		"secret ptr":  &secret,
		"in a struct": request{User: "u", Password: secret},
		"sealed":      sealed,
		"data key":    b.key,
		"master key":  b.master,
	}
	// Byte-level forms of the key material that must not show up either.
	forbidden := []string{
		password,
		fmt.Sprintf("%x", b.key.key[:]),
		base64.StdEncoding.EncodeToString(b.key.key[:]),
		fmt.Sprintf("%x", b.master.key[:]),
		b.master.Encode(),
		fmt.Sprint(b.key.key[:4]), // as a decimal byte list
		fmt.Sprint(b.master.key[:4]),
	}
	check := func(t *testing.T, what, out string) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("%s shows secret material: %q", what, out)
			}
		}
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
				check(t, verb, fmt.Sprintf(verb, v))
			}
			check(t, "Sprint", fmt.Sprint(v))
			check(t, "slice", fmt.Sprintf("%v", []any{v}))
			check(t, "map", fmt.Sprintf("%v", map[string]any{"k": v}))
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			logger.Info("msg", "value", v)
			text := slog.New(slog.NewTextHandler(&buf, nil))
			text.Info("msg", "value", v)
			check(t, "slog", buf.String())
			if data, err := json.Marshal(v); err == nil {
				check(t, "json", string(data))
			}
		})
	}

	data, err := json.Marshal(request{User: "u", Password: secret})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"user":"u","password":"[redacted]"}` {
		t.Errorf("json = %s", data)
	}
	var in request
	if err := json.Unmarshal([]byte(`{"user":"u","password":"`+password+`"}`), &in); err != nil {
		t.Fatal(err)
	}
	if in.Password.Reveal() != password {
		t.Errorf("unmarshalled secret = %q", in.Password.Reveal())
	}
	if err := json.Unmarshal([]byte(`{"password":12345}`), &in); err == nil || strings.Contains(err.Error(), "12345") {
		t.Errorf("non-string secret: err = %v, want an error that does not echo the input", err)
	}
	if got := fmt.Sprintf("%v", sealed); got != "sealing.Sealed{format: 1, key version: 1, 44 bytes}" {
		t.Errorf("%%v of a Sealed = %q", got)
	}
}
