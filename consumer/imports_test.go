package consumer_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencyArrows holds the arrows of the runtime: the write side
// (commands) and the consumer runtime never import the query side, and the
// runtime imports neither side. Only non-test files count.
func TestDependencyArrows(t *testing.T) {
	t.Parallel()
	const module = "github.com/palisadehq/palisade/"
	forbidden := map[string][]string{
		"../commands":    {module + "projections"},
		".":              {module + "projections", module + "commands"},
		"../domain/jobs": {module + "eventstore", module + "commands", module + "projections", module + "consumer"},
	}
	for dir, banned := range forbidden {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range banned {
					if path == b || strings.HasPrefix(path, b+"/") {
						t.Errorf("%s imports %s", f, path)
					}
				}
			}
		}
	}
}
