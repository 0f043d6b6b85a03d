package app_test

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/palisadehq/palisade/datasource"
)

// TestDataSourcesOnRealServers creates sources for the sample databases
// make test provisions (scripts/provision-datasources: PostgreSQL and
// MariaDB, a least-privilege reader), tests them through HTTP with the real
// connector, and tests them again as a user that cannot log in, whose failure
// names neither password. It fails when the servers are not provisioned.
func TestDataSourcesOnRealServers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_, owner := h.createOrg("Alpha", "alice")
	for _, env := range []string{"PALISADE_TEST_DATASOURCE_PG_URL", "PALISADE_TEST_DATASOURCE_MYSQL_DSN"} {
		raw := os.Getenv(env)
		if raw == "" {
			t.Fatalf("%s is not set: run make test or scripts/provision-datasources", env)
		}
		cfg, err := datasource.ParseURL(raw)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		src := h.createSource(owner, map[string]any{
			"name": string(cfg.Kind) + " sales", "kind": string(cfg.Kind), "allowed_tables": []string{"sales"},
			"connection": map[string]any{"host": cfg.Host, "port": cfg.Port, "database": cfg.Database, "user": cfg.User,
				"password": cfg.Password.Reveal()},
		})
		var res dsTest
		h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+src.ID+"/test", owner, nil).json(t, &res)
		var tables []string
		for _, tb := range res.Schema.Tables {
			tables = append(tables, tb.Name)
		}
		if !res.OK || !slices.Contains(tables, "sales") {
			t.Fatalf("%s: test = ok %v, error %q, tables %v", cfg.Kind, res.OK, res.Error, tables)
		}
		if got := h.getSource(owner, src.ID); got.State != "ready" {
			t.Fatalf("%s: state %q after a good test", cfg.Kind, got.State)
		}
		// A user that does not exist, with a password: local PostgreSQL may
		// trust loopback connections whatever the password says.
		wrong := "Wrong-PW-" + isoRand(t)
		h.must(http.StatusOK, http.MethodPatch, "/v1/data-sources/"+src.ID, owner, map[string]any{
			"connection": map[string]any{"host": cfg.Host, "port": cfg.Port, "database": cfg.Database, "user": "no_such_reader", "password": wrong}})
		r := h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+src.ID+"/test", owner, nil)
		r.json(t, &res)
		if res.OK || res.Error == "" {
			t.Fatalf("%s: a wrong password tested %+v", cfg.Kind, res)
		}
		for _, pw := range []string{wrong, cfg.Password.Reveal()} {
			if strings.Contains(string(r.body), pw) {
				t.Fatalf("%s: the failed test's answer holds a password: %s", cfg.Kind, r.body)
			}
		}
		if got := h.getSource(owner, src.ID); got.State != "failing" {
			t.Fatalf("%s: state %q after a failed test", cfg.Kind, got.State)
		}
	}
}
