package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/sealing"
)

// fakeDatabases plays the databases data sources connect to: host
// "db.ok" answers a schema, "db.leaky" fails with an error quoting the
// password (as a careless driver might), anything else is unreachable. It
// keeps every password it was handed, to show what was sealed opens again.
type fakeDatabases struct {
	mu        sync.Mutex
	passwords []string
}

func (f *fakeDatabases) Validate(kind datasources.Kind, conn datasources.Connection) error {
	for k := range conn.Params {
		if kind != datasources.Postgres || k != "sslmode" {
			return fmt.Errorf("parameter %q is not allowed for %s", k, kind)
		}
	}
	return nil
}

func (f *fakeDatabases) Test(_ context.Context, _ string, kind datasources.Kind, conn datasources.Connection, password sealing.Secret) (datasources.Schema, error) {
	f.mu.Lock()
	f.passwords = append(f.passwords, password.Reveal())
	f.mu.Unlock()
	switch conn.Host {
	case "db.ok":
		return datasources.Schema{Tables: []datasources.Table{{Name: "sales", Columns: []datasources.Column{
			{Name: "region", Type: "text"}, {Name: "total", Type: "numeric"}}}}}, nil
	case "db.leaky":
		return datasources.Schema{}, fmt.Errorf("pq: password authentication failed for user %q (password %q)", conn.User, password.Reveal())
	}
	return datasources.Schema{}, errors.New("dial tcp: no route to host")
}

func (f *fakeDatabases) opened() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.passwords)
}

type dsView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Connection struct {
		Host        string            `json:"host"`
		Port        int               `json:"port"`
		Path        string            `json:"path"`
		Params      map[string]string `json:"params"`
		PasswordSet bool              `json:"password_set"`
	} `json:"connection"`
	AllowedTables []datasources.AllowedTable `json:"allowed_tables"`
	Grants        *[]datasources.Grant       `json:"grants"`
	State         string                     `json:"state"`
	Schema        *datasources.Schema        `json:"schema"`
	LastTest      *struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"last_test"`
	Consistency string `json:"consistency"`
}

type dsTest struct {
	OK     bool               `json:"ok"`
	Error  string             `json:"error"`
	Schema datasources.Schema `json:"schema"`
}

func (h *harness) createSource(token string, body map[string]any) dsView {
	h.t.Helper()
	var v dsView
	h.must(http.StatusCreated, http.MethodPost, "/v1/data-sources", token, body).json(h.t, &v)
	return v
}

func (h *harness) getSource(token, id string) dsView {
	h.t.Helper()
	var v dsView
	h.must(http.StatusOK, http.MethodGet, "/v1/data-sources/"+id, token, nil).json(h.t, &v)
	return v
}

func (h *harness) listSources(token string) []string {
	h.t.Helper()
	var list struct{ Items []dsView }
	h.must(http.StatusOK, http.MethodGet, "/v1/data-sources?limit=500", token, nil).json(h.t, &list)
	var ids []string
	for _, v := range list.Items {
		ids = append(ids, v.ID)
	}
	return ids
}

// TestDataSourcesThroughHTTP walks a source's life: created with a sealed
// password, listed, read, changed, tested, granted and deleted, and who
// sees it at each step.
func TestDataSourcesThroughHTTP(t *testing.T) {
	t.Parallel()
	dbs := &fakeDatabases{}
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.SourceTester = dbs })
	orgA, owner := h.createOrg("Alpha", "alice")
	analyst := h.addMember(orgA, owner, "anna", "analyst")
	other := h.addMember(orgA, owner, "otto", "analyst")
	builder := h.addMember(orgA, owner, "bella", "builder")
	member := h.addMember(orgA, owner, "mike", "member")
	_, ownerB := h.createOrg("Bravo", "bob")

	created := h.createSource(owner, map[string]any{
		"name": "Sales", "kind": "postgres",
		"connection": map[string]any{"host": "db.ok", "database": "sales", "user": "reader", "password": "s3cret-pw",
			"params": map[string]string{"sslmode": "require"}},
		"allowed_tables": []any{"sales", map[string]any{"name": "regions", "columns": []string{"name", "id"}}},
	})
	if created.ID == "" || created.State != "untested" || !created.Connection.PasswordSet || created.Connection.Port != 5432 ||
		created.Grants == nil || len(*created.Grants) != 0 || created.Schema != nil {
		t.Fatalf("created = %+v", created)
	}
	wantTables := []datasources.AllowedTable{{Name: "regions", Columns: []string{"id", "name"}}, {Name: "sales"}}
	if !slices.EqualFunc(created.AllowedTables, wantTables, func(a, b datasources.AllowedTable) bool {
		return a.Name == b.Name && slices.Equal(a.Columns, b.Columns)
	}) {
		t.Fatalf("allowed tables = %+v, want %+v", created.AllowedTables, wantTables)
	}
	id := created.ID
	src := "/v1/data-sources/" + id

	// Bad input: 422 (or 400 for an unknown field), nothing recorded.
	for _, bad := range []map[string]any{
		{"name": "x", "kind": "oracle", "connection": map[string]any{"host": "h", "database": "d", "user": "u"}, "allowed_tables": []string{"t"}},
		{"name": "x", "kind": "postgres", "connection": map[string]any{"host": "h", "database": "d", "user": "u"}, "allowed_tables": []string{}},
		{"name": "x", "kind": "postgres", "connection": map[string]any{"host": "h", "database": "d", "user": "u", "params": map[string]string{"sslrootcert": "/etc/passwd"}}, "allowed_tables": []string{"t"}},
		{"name": "x", "kind": "sqlite", "connection": map[string]any{"path": "a.db", "password": "nope"}, "allowed_tables": []string{"t"}},
		{"name": "x", "kind": "sqlite", "connection": map[string]any{"path": "../outside.db"}, "allowed_tables": []string{"t"}},
		{"name": "x", "kind": "sqlite", "connection": map[string]any{"path": "/etc/passwd"}, "allowed_tables": []string{"t"}},
		{"name": "x", "kind": "postgres", "connection": map[string]any{"host": "h", "database": "d", "user": "u"}, "allowed_tables": []string{"t; DROP"}},
	} {
		h.must(http.StatusUnprocessableEntity, http.MethodPost, "/v1/data-sources", owner, bad)
	}
	h.must(http.StatusBadRequest, http.MethodPost, "/v1/data-sources", owner, map[string]any{"name": "x", "kind": "postgres",
		"connection": map[string]any{"host": "h", "database": "d", "user": "u", "pasword": "typo"}, "allowed_tables": []string{"t"}})
	h.must(http.StatusBadRequest, http.MethodPost, "/v1/data-sources", owner, map[string]any{"name": "x", "kind": "postgres",
		"connection": map[string]any{"host": "h", "database": "d", "user": "u"}, "allowed_tables": []any{map[string]any{"name": "t", "rows": 1}}})

	// Managing needs datasources:manage: a builder reads but does not manage.
	h.must(http.StatusForbidden, http.MethodPost, "/v1/data-sources", builder, map[string]any{"name": "mine", "kind": "sqlite",
		"connection": map[string]any{"path": "b.db"}, "allowed_tables": []string{"t"}})

	// Visible to its managers only until a grant names someone.
	if got := h.getSource(owner, id); got.Name != "Sales" || got.Grants == nil {
		t.Fatalf("owner reads %+v", got)
	}
	for _, tok := range []string{analyst, builder} {
		h.must(http.StatusNotFound, http.MethodGet, src, tok, nil)
		if ids := h.listSources(tok); len(ids) != 0 {
			t.Fatalf("a member without a grant lists %v", ids)
		}
	}
	h.must(http.StatusForbidden, http.MethodGet, src, member, nil) // no datasources:read at all
	h.must(http.StatusForbidden, http.MethodGet, "/v1/data-sources", member, nil)

	// Testing opens the sealed password and records the schema.
	var tested dsTest
	h.must(http.StatusOK, http.MethodPost, src+"/test", owner, nil).json(t, &tested)
	if !tested.OK || len(tested.Schema.Tables) != 1 || tested.Schema.Tables[0].Name != "sales" {
		t.Fatalf("test = %+v", tested)
	}
	if got := dbs.opened(); len(got) != 1 || got[0] != "s3cret-pw" {
		t.Fatalf("the tester was handed %d passwords, want the one given", len(got))
	}
	if got := h.getSource(owner, id); got.State != "ready" || got.Schema == nil || got.LastTest == nil || !got.LastTest.OK {
		t.Fatalf("after a good test: %+v", got)
	}

	// Grants: the analyst sees it (without the grants), others still not.
	h.must(http.StatusOK, http.MethodPut, src+"/grants", owner, map[string]any{"grants": []map[string]any{
		{"subject": "user:anna", "permissions": []string{"datasources:query"}}}})
	if got := h.getSource(analyst, id); got.ID != id || got.Grants != nil || got.Schema == nil {
		t.Fatalf("the granted analyst reads %+v (grants are for managers)", got)
	}
	if ids := h.listSources(analyst); !slices.Equal(ids, []string{id}) {
		t.Fatalf("the granted analyst lists %v", ids)
	}
	h.must(http.StatusNotFound, http.MethodGet, src, other, nil)
	// Seen but not managed: 403, not 404.
	h.must(http.StatusForbidden, http.MethodPost, src+"/test", analyst, nil)
	h.must(http.StatusUnprocessableEntity, http.MethodPut, src+"/grants", owner, map[string]any{"grants": []map[string]any{
		{"subject": "user:anna", "permissions": []string{"datasources:manage"}}}})

	// Org B learns nothing: every route answers 404 like an unknown id.
	for _, probe := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, src, nil},
		{http.MethodPatch, src, map[string]any{"name": "hijacked"}},
		{http.MethodPost, src + "/test", nil},
		{http.MethodPut, src + "/grants", map[string]any{"grants": []map[string]any{{"subject": "user:bob", "permissions": []string{"datasources:query"}}}}},
		{http.MethodDelete, src, nil},
	} {
		got := h.do(probe.method, probe.path, ownerB, probe.body)
		unknown := h.do(probe.method, strings.Replace(probe.path, id, "0190a7c0-0000-7000-8000-000000000000", 1), ownerB, probe.body)
		if got.status != http.StatusNotFound || unknown.status != http.StatusNotFound {
			t.Errorf("org B %s %s = %d (unknown id %d), want 404", probe.method, probe.path, got.status, unknown.status)
		}
	}
	if ids := h.listSources(ownerB); len(ids) != 0 {
		t.Fatalf("org B lists %v", ids)
	}

	// PATCH: a connection without a password keeps it; it is untested again.
	var patched dsView
	h.must(http.StatusOK, http.MethodPatch, src, owner, map[string]any{"name": "Sales EU",
		"connection": map[string]any{"host": "db.down", "database": "sales", "user": "reader"}}).json(t, &patched)
	if patched.Name != "Sales EU" || patched.State != "untested" || !patched.Connection.PasswordSet || patched.Schema != nil ||
		patched.Connection.Params != nil {
		t.Fatalf("patched = %+v", patched)
	}
	h.must(http.StatusOK, http.MethodPost, src+"/test", owner, nil).json(t, &tested)
	if tested.OK || !strings.Contains(tested.Error, "no route to host") || len(tested.Schema.Tables) != 0 {
		t.Fatalf("test of an unreachable host = %+v", tested)
	}
	if got := dbs.opened(); got[len(got)-1] != "s3cret-pw" {
		t.Fatal("a connection changed without a password lost its password")
	}
	if got := h.getSource(owner, id); got.State != "failing" || got.LastTest == nil || got.LastTest.OK {
		t.Fatalf("after a failing test: %+v", got)
	}
	// Why it failed is the driver's text (addresses, banners): for those
	// who manage the source, not for those who may only query it.
	if got := h.getSource(owner, id); !strings.Contains(got.LastTest.Error, "no route to host") {
		t.Fatalf("the owner reads the failed test as %+v", got.LastTest)
	}
	if got := h.getSource(analyst, id); got.LastTest == nil || got.LastTest.OK || got.LastTest.Error != "" {
		t.Fatalf("the granted analyst reads the failed test as %+v, want failed without the driver's error", got.LastTest)
	}
	// A new password replaces it; an empty one removes it.
	h.must(http.StatusOK, http.MethodPatch, src, owner, map[string]any{
		"connection": map[string]any{"host": "db.ok", "database": "sales", "user": "reader", "password": "n3w-pw"}})
	h.must(http.StatusOK, http.MethodPost, src+"/test", owner, nil)
	if got := dbs.opened(); got[len(got)-1] != "n3w-pw" {
		t.Fatal("the new password is not the one the source connects with")
	}
	h.must(http.StatusOK, http.MethodPatch, src, owner, map[string]any{
		"connection": map[string]any{"host": "db.ok", "database": "sales", "user": "reader", "password": ""}})
	if got := h.getSource(owner, id); got.Connection.PasswordSet {
		t.Fatal("an empty password did not remove the password")
	}
	h.must(http.StatusOK, http.MethodPatch, src, owner, map[string]any{"allowed_tables": []string{"sales"}})
	if got := h.getSource(owner, id); len(got.AllowedTables) != 1 {
		t.Fatalf("allowed tables after PATCH = %+v", got.AllowedTables)
	}
	h.must(http.StatusBadRequest, http.MethodPatch, src, owner, map[string]any{"kind": "mysql"})

	// Removing the grant hides it again.
	h.must(http.StatusOK, http.MethodPut, src+"/grants", owner, map[string]any{"grants": []any{}})
	h.must(http.StatusNotFound, http.MethodGet, src, analyst, nil)
	// A role grant names every analyst.
	h.must(http.StatusOK, http.MethodPut, src+"/grants", owner, map[string]any{"grants": []map[string]any{
		{"subject": "role:analyst", "permissions": []string{"datasources:query"}}}})
	h.getSource(other, id)

	// Deleted: gone for everyone, managers included.
	h.must(http.StatusNoContent, http.MethodDelete, src, owner, nil)
	for _, tok := range []string{owner, other} {
		h.must(http.StatusNotFound, http.MethodGet, src, tok, nil)
	}
	h.must(http.StatusNotFound, http.MethodPost, src+"/test", owner, nil)
	h.must(http.StatusNotFound, http.MethodPatch, src, owner, map[string]any{"name": "again"})
	if ids := h.listSources(owner); len(ids) != 0 {
		t.Fatalf("after delete the owner lists %v", ids)
	}
}
