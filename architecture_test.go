package palisade_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// This test holds the dependency arrows of DESIGN.md's Layout section
// against what `go list` reports for the production code (test files are
// not counted: a test may wire any adapter it needs).

const module = "github.com/palisadehq/palisade"

// adapters are the packages, with their sub-packages, that implement a port
// for one technology. ai/embed keeps the embedder port and both embedders
// in one package, so it is not listed; an embedder that moves into a
// package of its own belongs here.
var adapters = []string{
	"eventstore/embedded",
	"eventstore/esdb",
	"projections/memory",
	"projections/postgres",
	"bus/kafka",
	"bus/fanout",
}

// knownViolations are arrows that break a rule today: http still names
// eventstore.ErrConflict in its error table. Delete an entry once it is gone; the test fails when a listed
// arrow no longer exists, so the list cannot go stale.
var knownViolations = []arrow{
	{from: "http", to: "eventstore"},
}

// arrow is one import, direct or through other packages, between two
// packages named relative to the module ("" is the module's root package).
type arrow struct{ from, to string }

func (a arrow) String() string { return a.from + " → " + a.to }

// importRule forbids the packages under from (the package and its
// sub-packages) to import the packages forbids reports.
type importRule struct {
	from string
	// what says what is forbidden, for the failure message.
	what    string
	forbids func(pkg string) bool
	// transitive also forbids reaching such a package through others.
	// Without it only the package's own imports count.
	transitive bool
}

func importRules() []importRule {
	rules := []importRule{{
		// Direct imports suffice: a domain package that imports only
		// domain packages cannot reach anything else.
		from:    "domain",
		what:    "anything of the project outside domain",
		forbids: func(pkg string) bool { return !under(pkg, "domain") },
	}, {
		from:       "commands",
		what:       "the query side (projections) or an adapter",
		forbids:    underAny(append([]string{"projections"}, adapters...)...),
		transitive: true,
	}, {
		// The turn runner calls use cases through ports; which store or
		// read model is behind them is the app's business.
		from:       "conversation",
		what:       "an adapter",
		forbids:    underAny(adapters...),
		transitive: true,
	}, {
		// A model never sees the platform: it gets messages and tools.
		// The one exception is sqlguard, a leaf that imports nothing of
		// the project: ai/sqlgen writes for the dialects the guard
		// checks, and builds the guard's policy from its schema. Being
		// transitive, the rule still fails if sqlguard ever reaches more.
		from:       "ai",
		what:       "anything of the project outside ai (but sqlguard)",
		forbids:    func(pkg string) bool { return !under(pkg, "ai") && pkg != "sqlguard" },
		transitive: true,
	}, {
		from:       "http",
		what:       "an adapter",
		forbids:    underAny(adapters...),
		transitive: true,
	}, {
		// Direct only: the use cases http calls append through the event
		// store's port, so http reaches eventstore through them; http itself
		// must not name it.
		from:    "http",
		what:    "the event store (eventstore or its sub-packages)",
		forbids: underAny("eventstore"),
	}}
	for _, a := range adapters {
		others := slices.DeleteFunc(slices.Clone(adapters), func(b string) bool { return b == a })
		rules = append(rules, importRule{
			from:       a,
			what:       "another adapter",
			forbids:    underAny(others...),
			transitive: true,
		})
	}
	return rules
}

func TestImportRules(t *testing.T) {
	for _, problem := range checkImports(projectImports(t), importRules(), knownViolations) {
		t.Error(problem)
	}
}

// TestCheckImportsCatches holds the checker itself to the rules, on
// made-up graphs, so that TestImportRules passing means something.
func TestCheckImportsCatches(t *testing.T) {
	// clean has every package the rules name, with allowed arrows only.
	clean := func() map[string][]string {
		return map[string][]string{
			"domain":               {},
			"domain/access":        {"domain"},
			"eventstore":           {},
			"eventstore/embedded":  {"eventstore"},
			"eventstore/esdb":      {"eventstore"},
			"projections":          {"eventstore", "domain/access"},
			"projections/memory":   {"projections"},
			"projections/postgres": {"projections"},
			"bus/kafka":            {"eventstore"},
			"bus/fanout":           {},
			"commands":             {"eventstore", "domain/access"},
			"ai/llm":               {},
			"ai/sqlgen":            {"ai/llm", "sqlguard"},
			"sqlguard":             {},
			"conversation":         {"ai/llm", "commands", "projections", "domain/access"},
			"http":                 {"commands", "projections", "conversation"},
			"app":                  {"http", "eventstore/embedded", "eventstore/esdb", "projections/memory", "projections/postgres", "bus/kafka", "bus/fanout"},
		}
	}
	tests := []struct {
		name  string
		edit  func(g map[string][]string)
		known []arrow
		want  []string
	}{{
		name: "clean",
		edit: func(map[string][]string) {},
	}, {
		name: "domain imports the event store",
		edit: func(g map[string][]string) { g["domain/access"] = append(g["domain/access"], "eventstore") },
		want: []string{"domain/access must not import anything of the project outside domain, but domain/access → eventstore"},
	}, {
		name: "commands reaches the query side through a helper",
		edit: func(g map[string][]string) {
			g["commands/helper"] = []string{"projections/memory"}
			g["commands"] = append(g["commands"], "commands/helper")
		},
		want: []string{
			"commands must not import the query side (projections) or an adapter, but commands → commands/helper → projections/memory",
			"commands must not import the query side (projections) or an adapter, but commands → commands/helper → projections/memory → projections",
			"commands/helper must not import the query side (projections) or an adapter, but commands/helper → projections/memory",
			"commands/helper must not import the query side (projections) or an adapter, but commands/helper → projections/memory → projections",
			"conversation must not import an adapter, but conversation → commands → commands/helper → projections/memory",
			"http must not import an adapter, but http → commands → commands/helper → projections/memory",
		},
	}, {
		name: "http imports an adapter of the event store",
		edit: func(g map[string][]string) { g["http"] = append(g["http"], "eventstore/esdb") },
		want: []string{
			"http must not import an adapter, but http → eventstore/esdb",
			"http must not import the event store (eventstore or its sub-packages), but http → eventstore/esdb",
		},
	}, {
		name: "the model port reaches the platform",
		edit: func(g map[string][]string) { g["ai/llm"] = append(g["ai/llm"], "domain/access") },
		want: []string{
			"ai/llm must not import anything of the project outside ai (but sqlguard), but ai/llm → domain/access",
			"ai/llm must not import anything of the project outside ai (but sqlguard), but ai/llm → domain/access → domain",
			"ai/sqlgen must not import anything of the project outside ai (but sqlguard), but ai/sqlgen → ai/llm → domain/access",
			"ai/sqlgen must not import anything of the project outside ai (but sqlguard), but ai/sqlgen → ai/llm → domain/access → domain",
		},
	}, {
		name: "the guard the translator may use reaches the platform",
		edit: func(g map[string][]string) { g["sqlguard"] = append(g["sqlguard"], "domain/access") },
		want: []string{
			"ai/sqlgen must not import anything of the project outside ai (but sqlguard), but ai/sqlgen → sqlguard → domain/access",
			"ai/sqlgen must not import anything of the project outside ai (but sqlguard), but ai/sqlgen → sqlguard → domain/access → domain",
		},
	}, {
		name: "one adapter imports another",
		edit: func(g map[string][]string) { g["bus/kafka"] = append(g["bus/kafka"], "eventstore/embedded") },
		want: []string{"bus/kafka must not import another adapter, but bus/kafka → eventstore/embedded"},
	}, {
		name:  "a known violation is tolerated",
		edit:  func(g map[string][]string) { g["http"] = append(g["http"], "eventstore") },
		known: []arrow{{from: "http", to: "eventstore"}},
	}, {
		name:  "a known violation that is gone is reported",
		edit:  func(map[string][]string) {},
		known: []arrow{{from: "commands", to: "projections"}},
		want:  []string{"known violation commands → projections no longer exists: delete it from knownViolations"},
	}, {
		name: "a renamed package leaves a rule matching nothing",
		edit: func(g map[string][]string) { delete(g, "bus/kafka") },
		want: []string{
			"adapter bus/kafka is not a package of the module: update the adapters list",
			"the rule for bus/kafka matches no package of the module: update the rules",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := clean()
			tt.edit(g)
			got := checkImports(g, importRules(), tt.known)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

// checkImports returns, one line each, every import in graph that breaks a
// rule and is not in known, every entry of known that no longer breaks a
// rule, and every rule or adapter that names no package of graph.
func checkImports(graph map[string][]string, rules []importRule, known []arrow) []string {
	var problems []string
	for _, a := range adapters {
		if !matchesAny(graph, a) {
			problems = append(problems, fmt.Sprintf("adapter %s is not a package of the module: update the adapters list", a))
		}
	}
	var found []arrow
	for _, rule := range rules {
		if !matchesAny(graph, rule.from) {
			problems = append(problems, fmt.Sprintf("the rule for %s matches no package of the module: update the rules", rule.from))
			continue
		}
		for _, pkg := range sortedKeys(graph) {
			if !under(pkg, rule.from) {
				continue
			}
			for _, path := range violations(graph, pkg, rule) {
				a := arrow{from: pkg, to: path[len(path)-1]}
				found = append(found, a)
				if !slices.Contains(known, a) {
					problems = append(problems, fmt.Sprintf("%s must not import %s, but %s", pkg, rule.what, strings.Join(path, " → ")))
				}
			}
		}
	}
	for _, a := range known {
		if !slices.Contains(found, a) {
			problems = append(problems, fmt.Sprintf("known violation %s no longer exists: delete it from knownViolations", a))
		}
	}
	return problems
}

// violations returns, for each package pkg may not import under rule, the
// chain of imports from pkg to it.
func violations(graph map[string][]string, pkg string, rule importRule) [][]string {
	if !rule.transitive {
		var out [][]string
		for _, imp := range graph[pkg] {
			if rule.forbids(imp) {
				out = append(out, []string{pkg, imp})
			}
		}
		return out
	}
	// Breadth first, so each chain printed is a shortest one.
	parent := map[string]string{pkg: ""}
	queue := []string{pkg}
	var out [][]string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range graph[cur] {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = cur
			queue = append(queue, imp)
			if rule.forbids(imp) {
				var path []string
				for p := imp; p != ""; p = parent[p] {
					path = append(path, p)
				}
				slices.Reverse(path)
				out = append(out, path)
			}
		}
	}
	return out
}

// projectImports lists the module's packages with `go list` and returns
// each one's imports of other packages of the module (test files
// excluded), all named relative to the module.
func projectImports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		name, ok := relative(p.ImportPath)
		if !ok {
			t.Fatalf("go list reported %s, outside module %s", p.ImportPath, module)
		}
		graph[name] = []string{}
		for _, imp := range p.Imports {
			if rel, ok := relative(imp); ok {
				graph[name] = append(graph[name], rel)
			}
		}
	}
	if len(graph) == 0 {
		t.Fatal("go list found no package")
	}
	return graph
}

// relative names a package of the module relative to it.
func relative(importPath string) (string, bool) {
	if importPath == module {
		return "", true
	}
	rest, ok := strings.CutPrefix(importPath, module+"/")
	return rest, ok
}

// under reports whether pkg is pattern or one of its sub-packages.
func under(pkg, pattern string) bool {
	return pkg == pattern || strings.HasPrefix(pkg, pattern+"/")
}

func underAny(patterns ...string) func(string) bool {
	return func(pkg string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { return under(pkg, p) })
	}
}

func matchesAny(graph map[string][]string, pattern string) bool {
	for pkg := range graph {
		if under(pkg, pattern) {
			return true
		}
	}
	return false
}

func sortedKeys(graph map[string][]string) []string {
	keys := make([]string, 0, len(graph))
	for k := range graph {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
