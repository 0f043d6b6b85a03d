package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeTour runs the README's short tour as written, with bash, curl
// and jq, against a real server: the two lines that differ are where the
// server listens and how palisade is run (the test binary instead of go
// run). The tour's last step, the offline replay, runs after the server
// stops, as the README says. Every command must succeed (set -euo
// pipefail), and the output must show what the comments promise.
func TestReadmeTour(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README tour needs %s: %v", tool, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	online, offline := tourScript(t, string(readme))

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	// palisade on PATH is this test binary acting as the palisade binary
	// (TestMain), its arguments handed over as JSON.
	wrapper := "#!/bin/sh\nexec env " + childEnv + "=\"$(jq -cn '$ARGS.positional' --args -- \"$@\")\" " +
		shellQuote(os.Args[0]) + " -test.run='^$'\n"
	if err := os.WriteFile(filepath.Join(bin, "palisade"), []byte(wrapper), 0o700); err != nil {
		t.Fatal(err)
	}
	server := startServer(t, filepath.Join(dir, "palisade-data"), readModelArgs(t)...)
	host := strings.TrimPrefix(server.base, "http://")
	run := func(script string) string {
		t.Helper()
		script = strings.ReplaceAll(script, "go run ./cmd/palisade", "palisade")
		script = strings.ReplaceAll(script, "localhost:8080", host)
		cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+script)
		cmd.Dir = dir
		cmd.Env = append(withoutEnv(os.Environ(), "PALISADE_DATA_DIR", childEnv), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the README tour failed: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run(online + "\necho \"tour-org=$A\"\n")
	for _, want := range []string{
		`"name": "Helpdesk"`,   // Alice reads her bot back
		`"status": 404`,        // Bob asks for it
		`"status": 403`,        // the platform lists bots
		`"type": "BotCreated"`, // Audrey reads the trail
		`Ask your manager`,     // the search finds the document
		`"results": []`,        // Bob's search finds nothing
		`"redacted": true`,     // content in the trail is redacted for Audrey
		"tour-org=",            // every step ran
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the README tour's output lacks %q:\n%s", want, out)
		}
	}
	org := out[strings.LastIndex(out, "tour-org=")+len("tour-org="):]
	org = strings.TrimSpace(org)

	server.kill()
	replay := run("A=" + shellQuote(org) + "\n" + offline)
	for _, want := range []string{"OrganizationCreated", "BotCreated", "DocumentAdded"} {
		if !strings.Contains(replay, want) {
			t.Errorf("the tour's offline replay lacks %s:\n%s", want, replay)
		}
	}
}

// tourScript returns the shell block of the README's "A short tour", cut
// before its offline part (which needs the server stopped) and that part.
func tourScript(t *testing.T, readme string) (online, offline string) {
	t.Helper()
	_, after, ok := strings.Cut(readme, "## A short tour")
	if !ok {
		t.Fatal("README.md has no \"A short tour\" section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("the tour has no sh block")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the tour's sh block does not end")
	}
	online, offline, ok = strings.Cut(block, "# Offline")
	if !ok {
		t.Fatal("the tour has no offline part (# Offline)")
	}
	return online, "# Offline" + offline
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			if name == n {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
