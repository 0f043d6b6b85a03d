package deploy

import (
	"bytes"
	"errors"
	"github.com/palisadehq/palisade/app"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// knownEnv is every configuration variable the palisade binary reads. The
// manifests may set no other PALISADE_* variable: one the binary ignores
// is a setting an operator believes in that does nothing.
var knownEnv = app.Environment

// setting is one PALISADE_* variable a manifest sets, and where.
type setting struct{ name, where string }

func TestComposeSetsOnlyKnownVariables(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Environment yaml.Node `yaml:"environment"`
		} `yaml:"services"`
	}
	decodeAll(t, "compose.yaml", func(dec *yaml.Decoder) error { return dec.Decode(&compose) })
	var found []setting
	for name, svc := range compose.Services {
		for _, v := range composeEnv(t, svc.Environment) {
			found = append(found, setting{v, "compose.yaml service " + name})
		}
	}
	checkSettings(t, found, "PALISADE_EVENTSTORE_URL", "PALISADE_KAFKA_BROKERS", "PALISADE_POSTGRES_URL", "PALISADE_POSTGRES_OWNER_URL")
}

// composeEnv reads a service's environment, a mapping or a list of
// NAME=value, and returns the names.
func composeEnv(t *testing.T, n yaml.Node) []string {
	t.Helper()
	var names []string
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			names = append(names, n.Content[i].Value)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			name, _, _ := strings.Cut(item.Value, "=")
			names = append(names, name)
		}
	default:
		t.Fatalf("compose.yaml line %d: environment is neither a mapping nor a list", n.Line)
	}
	return names
}

// k8sObject is what the test reads of any Kubernetes manifest: the
// variables a ConfigMap or Secret provides and a workload's containers set.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]any `yaml:"data"`
	StringData map[string]any `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers     []container `yaml:"containers"`
	InitContainers []container `yaml:"initContainers"`
}

type container struct {
	Name string `yaml:"name"`
	Env  []struct {
		Name string `yaml:"name"`
	} `yaml:"env"`
}

func TestKubernetesSetsOnlyKnownVariables(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/: %v", err)
	}
	var found []setting
	kinds := map[string]bool{}
	for _, f := range files {
		decodeAll(t, f, func(dec *yaml.Decoder) error {
			var obj k8sObject
			if err := dec.Decode(&obj); err != nil {
				return err
			}
			kinds[obj.Kind] = true
			where := f + " " + obj.Kind + " " + obj.Metadata.Name
			// Several replicas is the point of the production stack
			// (ARCHITECTURE.md, "Several replicas").
			if obj.Kind == "StatefulSet" && (obj.Spec.Replicas == nil || *obj.Spec.Replicas < 3) {
				t.Errorf("%s: replicas %v, want at least 3", where, obj.Spec.Replicas)
			}
			// envFrom turns every ConfigMap and Secret key into a variable.
			for _, data := range []map[string]any{obj.Data, obj.StringData} {
				for k := range data {
					if obj.Kind == "ConfigMap" || obj.Kind == "Secret" {
						found = append(found, setting{k, where})
					}
				}
			}
			for _, c := range append(obj.Spec.Template.Spec.Containers, obj.Spec.Template.Spec.InitContainers...) {
				for _, e := range c.Env {
					found = append(found, setting{e.Name, where + " container " + c.Name})
				}
			}
			return nil
		})
	}
	for _, kind := range []string{"StatefulSet", "Service", "ConfigMap"} {
		if !kinds[kind] {
			t.Errorf("k8s/ has no %s", kind)
		}
	}
	checkSettings(t, found, "PALISADE_EVENTSTORE_URL", "PALISADE_KAFKA_BROKERS", "PALISADE_POSTGRES_URL", "PALISADE_POSTGRES_OWNER_URL")
}

// decodeAll runs decode over every YAML document of path.
func decodeAll(t *testing.T, path string, decode func(*yaml.Decoder) error) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		err := decode(dec)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}

// checkSettings fails for every PALISADE_* variable not in knownEnv, and
// if one of must is set nowhere (so that the test cannot pass by finding
// nothing at all).
func checkSettings(t *testing.T, found []setting, must ...string) {
	t.Helper()
	set := map[string]bool{}
	for _, s := range found {
		if !strings.HasPrefix(s.name, "PALISADE_") {
			continue
		}
		set[s.name] = true
		if !slices.Contains(knownEnv, s.name) {
			t.Errorf("%s sets %s, which the binary does not read (known: %s)", s.where, s.name, strings.Join(knownEnv, ", "))
		}
	}
	var missing []string
	for _, m := range must {
		if !set[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%v set nowhere: the manifests would not reach the production adapters", missing)
	}
}
