package access

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeRoleMatrix keeps the README's role table true: every row must
// match what the roles grant in code, and every permission must have a row.
func TestReadmeRoleMatrix(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	rows := map[string][]string{}
	inTable := false
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] == "permission" {
			header, inTable = cells[1:], true
			continue
		}
		if inTable && strings.HasPrefix(cells[0], "`") {
			rows[strings.Trim(cells[0], "`")] = cells[1:]
		}
	}
	if strings.Join(header, ",") != strings.Join(RoleNames(), ",") {
		t.Fatalf("README role columns %v, code roles %v", header, RoleNames())
	}
	for _, name := range Catalog() {
		p, _ := ParsePermission(name)
		row, ok := rows[name]
		if !ok {
			t.Errorf("README has no row for %s", name)
			continue
		}
		for i, roleName := range header {
			r, _ := ParseRole(roleName)
			if got, want := row[i] == "✓", r.Permissions().Has(p); got != want {
				t.Errorf("README says %s has %s = %v, code says %v", roleName, name, got, want)
			}
		}
	}
	if len(rows) != len(Catalog()) {
		t.Errorf("README lists %d permissions, catalog has %d", len(rows), len(Catalog()))
	}
}
