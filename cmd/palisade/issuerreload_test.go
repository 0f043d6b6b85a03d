package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIssuerKeysPromote: promote moves a key first, the one servers sign
// with when no signing kid is set, and keeps every key.
func TestIssuerKeysPromote(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "issuer-keys.json")
	out, _ := runOK(t, "issuer-keys", "generate", "--file", file)
	first := strings.TrimSpace(out)
	out, _ = runOK(t, "issuer-keys", "add", "--file", file)
	second := strings.TrimSpace(out)
	_, errOut := runOK(t, "issuer-keys", "promote", "--file", file, "--kid", second)
	if !strings.Contains(errOut, second+" is first") {
		t.Fatalf("promote stderr %q", errOut)
	}
	out, _ = runOK(t, "issuer-keys", "list", "--file", file)
	if want := second + "\tsigns (first key)\n" + first + "\tverifies\n"; out != want {
		t.Fatalf("list after promote:\n%s\nwant:\n%s", out, want)
	}
	_, errOut = runOK(t, "issuer-keys", "promote", "--file", file, "--kid", first, "--issuer-signing-kid", second)
	if !strings.Contains(errOut, "keep signing with that key") {
		t.Fatalf("promote under a pinned signing kid says %q; it should warn that the pin wins", errOut)
	}
	runFails(t, "--kid is required", "issuer-keys", "promote", "--file", file)
	runFails(t, "no key", "issuer-keys", "promote", "--file", file, "--kid", "nope")
}

// TestServeReloadsIssuerKeysOnHangup: a server with polling off reads its
// key set file again on SIGHUP (rather than ending, SIGHUP's default):
// an added key is published, a promoted one signs (the JWKS lists the
// signing key first), and a file made unusable leaves the keys in use.
func TestServeReloadsIssuerKeysOnHangup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	file := filepath.Join(t.TempDir(), "issuer-keys.json")
	out, _ := runOK(t, "issuer-keys", "generate", "--file", file)
	first := strings.TrimSpace(out)
	srv := startServer(t, t.TempDir(), "--issuer-keys", file, "--issuer-keys-poll", "0")
	jwks := func() []string {
		t.Helper()
		resp, err := http.Get(srv.base + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range doc.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	hangup := func(want []string) {
		t.Helper()
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for got := jwks(); !slices.Equal(got, want); got = jwks() {
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP the server publishes %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	out, _ = runOK(t, "issuer-keys", "add", "--file", file)
	second := strings.TrimSpace(out)
	if got := jwks(); !slices.Equal(got, []string{first}) {
		t.Fatalf("with polling off, the server read the file without a SIGHUP: %v", got)
	}
	hangup([]string{first, second})
	runOK(t, "issuer-keys", "promote", "--file", file, "--kid", second)
	hangup([]string{second, first})
	runOK(t, "issuer-keys", "remove", "--file", file, "--kid", first)
	hangup([]string{second})
}

// TestServeRefusesAShortIssuerKeysPoll: polling faster than 100ms is a
// mistake, not a setting.
func TestServeRefusesAShortIssuerKeysPoll(t *testing.T) {
	t.Parallel()
	runFails(t, "--issuer-keys-poll", "serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--issuer-keys-poll", "10ms")
	runFails(t, "--issuer-keys-poll", "serve", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--issuer-keys-poll", "soon")
}
