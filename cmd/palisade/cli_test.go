package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/app"
)

// TestHelpExitsZero: -h and --help succeed on every command.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"serve", "-h"}, {"serve", "--help"}, {"migrate", "-h"}, {"token", "-h"}, {"token", "--help"},
		{"audit", "-h"}, {"audit", "replay", "-h"}, {"audit", "verify", "-h"}, {"audit", "narrative", "-h"},
		{"audit", "export", "-h"}, {"audit", "access", "-h"}, {"keys", "-h"}, {"keys", "rotate", "-h"},
		{"issuer-keys", "-h"}, {"issuer-keys", "list", "-h"}, {"issuer-keys", "generate", "--help"},
		{"tail", "-h"}, {"bench", "-h"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if code := exitCode(err); code != 0 {
			t.Errorf("palisade %s: exit %d (%v)", strings.Join(args, " "), code, err)
		}
	}
	if code := exitCode(run(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{})); code != 2 {
		t.Errorf("palisade without a command: exit %d, want 2", code)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "github.com/palisadehq/palisade") || !strings.HasPrefix(out.String(), "palisade ") {
		t.Fatalf("version printed %q", out.String())
	}
}

// TestInvalidFlagValuesAreErrors: a value that means nothing is refused,
// with the flag named, never replaced by a default.
func TestInvalidFlagValuesAreErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--data-dir", dir, "--log-level", "verbose"}, "log-level"},
		{[]string{"serve", "--data-dir", dir, "--access-log", "xml"}, "--access-log"},
		{[]string{"audit", "replay", "--data-dir", dir, "--log-level", "loud"}, "log-level"},
		{[]string{"token", "--data-dir", dir, "--init", "--org", "o", "--sub", "s", "--scope", "bots:read bots:fly"}, "bots:fly"},
		{[]string{"bench", "--tracing", "--tracing-ratio", "0"}, "--tracing-ratio"},
		{[]string{"bench", "--tracing", "--tracing-ratio", "1.5"}, "--tracing-ratio"},
		{[]string{"serve", "--data-dir", dir, "--org-index-interval", "soon"}, "--org-index-interval"},
		{[]string{"serve", "--data-dir", dir, "--org-index-interval", "10ms"}, "--org-index-interval"},
		{[]string{"serve", "--data-dir", dir, "--org-index-min", "1"}, "--org-index-min"},
		{[]string{"migrate", "--owner-url", "postgres://unused", "--index-organizations", "--org-index-min", "0"}, "--org-index-min"},
	}
	for _, tt := range tests {
		var errOut bytes.Buffer
		err := run(context.Background(), tt.args, &bytes.Buffer{}, &errOut)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("%v: err %v, want an error", tt.args, err)
			continue
		}
		if !strings.Contains(err.Error()+errOut.String(), tt.want) {
			t.Errorf("%v: %q does not name %q", tt.args, err.Error()+errOut.String(), tt.want)
		}
	}
}

// TestTokenNeedsInitForANewKey: without --init a data directory without a
// key is an error; with it the key is created, and stderr says which
// directory and key were used.
func TestTokenNeedsInitForANewKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"token", "--data-dir", dir, "--platform", "--sub", "ops"}
	err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--init") {
		t.Fatalf("no key, no --init: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "issuer-ed25519.pem")); !os.IsNotExist(err) {
		t.Fatalf("a key was created without --init: %v", err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append(args, "--init"), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), dir) || !strings.Contains(errOut.String(), "created") {
		t.Fatalf("stderr %q", errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), ".") != 2 || !strings.Contains(errOut.String(), "using signing key "+filepath.Join(dir, "issuer-ed25519.pem")) {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

// TestServeChecksTheAddressFirst: an address in use fails before the log
// is opened, and a data directory another process holds is named as such.
func TestServeChecksTheAddressFirst(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "data")
	err = run(context.Background(), []string{"serve", "--data-dir", dir, "--addr", taken.Addr().String(), "--access-log", "off"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--addr") {
		t.Fatalf("serve on a taken address: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "events.db")); !os.IsNotExist(err) {
		t.Fatalf("the log was opened before the address was checked: %v", err)
	}

	held := t.TempDir()
	a, err := app.Open(context.Background(), app.Config{DataDir: held, Logger: newLogger(&bytes.Buffer{}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = run(context.Background(), []string{"serve", "--data-dir", held, "--addr", "127.0.0.1:0", "--access-log", "off"}, &bytes.Buffer{}, &bytes.Buffer{})
	want := "data directory " + held + " is in use by another palisade process"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "another Store") {
		t.Fatalf("serve on a held data directory: %v, want %q", err, want)
	}
}
