package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/identity"
)

// runOK runs palisade with args and fails the test on an error; it
// returns stdout and stderr.
func runOK(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("palisade %s: %v (stderr %q)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String()
}

// runFails runs palisade with args and fails the test unless it exits
// non-zero with want in its message.
func runFails(t *testing.T, want string, args ...string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	if err == nil || exitCode(err) == 0 {
		t.Fatalf("palisade %s succeeded, want an error naming %q", strings.Join(args, " "), want)
	}
	if !strings.Contains(err.Error()+errOut.String(), want) {
		t.Fatalf("palisade %s: %q does not name %q", strings.Join(args, " "), err.Error()+errOut.String(), want)
	}
}

// tokenKid returns the kid in a token's header.
func tokenKid(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(strings.TrimSpace(tok), ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestIssuerKeysCommands walks a rotation with the CLI: generate, add,
// list, mint with either key, remove the old one; and the refusals on the
// way.
func TestIssuerKeysCommands(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "issuer-keys.json")
	out, _ := runOK(t, "issuer-keys", "generate", "--file", file)
	first := strings.TrimSpace(out)
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key set file: %v, mode %v", err, info.Mode())
	}
	runFails(t, "already exists", "issuer-keys", "generate", "--file", file)

	out, errOut := runOK(t, "issuer-keys", "add", "--file", file)
	second := strings.TrimSpace(out)
	if second == "" || second == first || !strings.Contains(errOut, "verifies only") {
		t.Fatalf("add printed %q, stderr %q", out, errOut)
	}
	out, _ = runOK(t, "issuer-keys", "list", "--file", file)
	if want := first + "\tsigns (first key)\n" + second + "\tverifies\n"; out != want {
		t.Fatalf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = runOK(t, "issuer-keys", "list", "--file", file, "--issuer-signing-kid", second)
	if want := first + "\tverifies\n" + second + "\tsigns\n"; out != want {
		t.Fatalf("list with a signing kid:\n%s\nwant:\n%s", out, want)
	}
	runFails(t, "is not in the key set", "issuer-keys", "list", "--file", file, "--issuer-signing-kid", "nope")

	// palisade token mints with the set, as the servers do; a server's
	// issuer over the same file accepts both keys' tokens.
	iss, err := identity.OpenIssuerKeys(file, "", app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(identity.VerifierConfig{Audience: app.DefaultAudience, Issuers: []identity.TrustedIssuer{iss.Trusted()}})
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	for kid, args := range map[string][]string{
		first:  {"token", "--data-dir", dataDir, "--issuer-keys", file, "--platform", "--sub", "ops"},
		second: {"token", "--data-dir", dataDir, "--issuer-keys", file, "--issuer-signing-kid", second, "--platform", "--sub", "ops"},
	} {
		tok, errOut := runOK(t, args...)
		if got := tokenKid(t, tok); got != kid {
			t.Fatalf("token signed with %s, want %s", got, kid)
		}
		if !strings.Contains(errOut, "key set "+file+", signing key "+kid) {
			t.Fatalf("token stderr %q", errOut)
		}
		if _, err := verifier.Verify(strings.TrimSpace(tok)); err != nil {
			t.Fatalf("token of %s refused by the set: %v", kid, err)
		}
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("token with a key set touched the data directory: %v", err)
	}
	runFails(t, "--issuer-keys", "token", "--data-dir", dataDir, "--issuer-signing-kid", second, "--platform", "--sub", "ops")
	runFails(t, "issuer-keys generate", "token", "--issuer-keys", file, "--init", "--platform", "--sub", "ops")

	// The public set, to keep before a removal.
	out, _ = runOK(t, "issuer-keys", "jwks", "--file", file)
	if !strings.Contains(out, first) || !strings.Contains(out, second) || strings.Contains(out, `"d"`) {
		t.Fatalf("jwks printed %s", out)
	}
	archived := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(archived, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}

	// Removal: never the signing key, never silently the first.
	runFails(t, "--kid is required", "issuer-keys", "remove", "--file", file)
	runFails(t, "no key", "issuer-keys", "remove", "--file", file, "--kid", "nope")
	runFails(t, "is the signing key", "issuer-keys", "remove", "--file", file, "--kid", second, "--issuer-signing-kid", second)
	runFails(t, "is the first key", "issuer-keys", "remove", "--file", file, "--kid", first)
	runOK(t, "issuer-keys", "remove", "--file", file, "--kid", first, "--issuer-signing-kid", second)
	out, _ = runOK(t, "issuer-keys", "list", "--file", file)
	if want := second + "\tsigns (first key)\n"; out != want {
		t.Fatalf("list after the removal:\n%s\nwant:\n%s", out, want)
	}
	runFails(t, "only key", "issuer-keys", "remove", "--file", file, "--kid", second)

	// audit verify's keys: the set's and a JWKS kept from before.
	keys, err := verifyKeys(t.TempDir(), []string{archived}, file)
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{first, second} {
		if _, ok := keys(kid); !ok {
			t.Errorf("audit verify's keys lack %s", kid)
		}
	}
	keys, err = verifyKeys(t.TempDir(), nil, file)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys(first); ok {
		t.Error("the removed key still verifies without the archived JWKS")
	}
}

// TestIssuerKeysRefusals: a key set file that cannot be used is refused by
// every command that reads it, and by serve at start.
func TestIssuerKeysRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "issuer-keys.json")
	runOK(t, "issuer-keys", "generate", "--file", file)
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	runFails(t, "chmod 600", "issuer-keys", "list", "--file", file)
	runFails(t, "chmod 600", "issuer-keys", "add", "--file", file)
	runFails(t, "chmod 600", "token", "--issuer-keys", file, "--platform", "--sub", "ops")

	notJSON := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notJSON, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runFails(t, "not a JSON Web Key Set", "serve", "--data-dir", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--issuer-keys", notJSON)
	runFails(t, "--file is required", "issuer-keys", "list")
	runFails(t, "unknown command", "issuer-keys", "rotate", "--file", file)
	runFails(t, "name a command", "issuer-keys")
}

// TestIssuerKeysFromDataDir: a set started from a data directory's key
// holds that key under the same kid, so its tokens keep verifying.
func TestIssuerKeysFromDataDir(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	tok, _ := runOK(t, "token", "--data-dir", dataDir, "--init", "--platform", "--sub", "ops")
	file := filepath.Join(t.TempDir(), "issuer-keys.json")
	out, _ := runOK(t, "issuer-keys", "generate", "--file", file, "--from-data-dir", dataDir)
	if kid := strings.TrimSpace(out); kid != tokenKid(t, tok) {
		t.Fatalf("set starts with kid %s, the data directory's token has %s", kid, tokenKid(t, tok))
	}
	iss, err := identity.OpenIssuerKeys(file, "", app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(identity.VerifierConfig{Audience: app.DefaultAudience, Issuers: []identity.TrustedIssuer{iss.Trusted()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(strings.TrimSpace(tok)); err != nil {
		t.Fatalf("the data directory's token refused by the set: %v", err)
	}
	runFails(t, "issuer key of", "issuer-keys", "generate", "--file", filepath.Join(t.TempDir(), "k.json"), "--from-data-dir", t.TempDir())
}
