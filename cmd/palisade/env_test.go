package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/app"
)

// TestEnvironmentListsEveryVariableRead: app.Environment, which holds the
// deployment manifests to the variables the binary reads, names every
// PALISADE_* variable the binary's source mentions (test variables
// aside), so a new flag's variable cannot be missing from it.
func TestEnvironmentListsEveryVariableRead(t *testing.T) {
	t.Parallel()
	name := regexp.MustCompile(`"(PALISADE_[A-Z0-9_]+)"`)
	var files []string
	for _, dir := range []string{".", "../../app"} {
		found, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, found...)
	}
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			seen++
			if strings.HasPrefix(m[1], "PALISADE_TEST_") {
				continue
			}
			if !slices.Contains(app.Environment, m[1]) {
				t.Errorf("%s reads %s, which app.Environment does not list", f, m[1])
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found %d PALISADE_* names in the source, want the serve flags' at least", seen)
	}
}
