package app_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain/datasources"
)

// The analytics suites query the sample data sources that
// scripts/provision-datasources makes (make test exports their URLs), and
// SQLite files they write themselves. They fail, never skip, without them.
const (
	envDataSourcePG    = "PALISADE_TEST_DATASOURCE_PG_URL"
	envDataSourceMySQL = "PALISADE_TEST_DATASOURCE_MYSQL_DSN"
	// salesRows is how many rows the provisioned sales table holds.
	salesRows = 3000
)

// sampleSource returns the connection of a provisioned sample source.
func sampleSource(t testing.TB, env string) datasource.Config {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		t.Fatalf("%s is not set: run scripts/provision-datasources (make test does) and export what it prints", env)
	}
	cfg, err := datasource.ParseURL(raw)
	if err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return cfg
}

// sqliteSales writes a SQLite file in org's directory of the harness's
// SQLite root with a sales table of n rows (region r0…r4, amount i) and a
// salaries table no source allows, and returns its path relative to that
// directory.
func sqliteSales(t testing.TB, h *harness, org string, n int) datasource.Config {
	t.Helper()
	root := filepath.Join(h.dataDir, "sqlite", org)
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("sales-%d.db", time.Now().UnixNano())
	db, err := sql.Open("sqlite", filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount INTEGER NOT NULL)`,
		`CREATE TABLE salaries (employee TEXT, salary INTEGER)`,
		`INSERT INTO salaries VALUES ('CANARY-sqlite-salaries', 1000000)`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO sales (region, amount) VALUES (?, ?)`, fmt.Sprintf("r%d", i%5), i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return datasource.Config{Kind: datasource.SQLite, Path: name}
}

// createSource creates a data source through the API as owner (a token of
// an owner of the org), tests it (so its schema snapshot is known to the
// translator) and grants it, and returns its id.
func createSource(t testing.TB, h *harness, owner string, cfg datasource.Config, tables []string, grants ...datasources.Grant) string {
	t.Helper()
	conn := map[string]any{}
	if cfg.Kind == datasource.SQLite {
		conn["path"] = cfg.Path
	} else {
		conn["host"], conn["port"], conn["database"], conn["user"] = cfg.Host, cfg.Port, cfg.Database, cfg.User
		if !cfg.Password.IsZero() {
			conn["password"] = cfg.Password.Reveal()
		}
		if len(cfg.Params) > 0 {
			conn["params"] = cfg.Params
		}
	}
	var created struct {
		ID string `json:"id"`
	}
	h.must(http.StatusCreated, http.MethodPost, "/v1/data-sources", owner, map[string]any{
		"name": fmt.Sprintf("%s source %d", cfg.Kind, time.Now().UnixNano()), "kind": string(cfg.Kind),
		"connection": conn, "allowed_tables": tables,
	}).json(t, &created)
	var tested struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+created.ID+"/test", owner, nil).json(t, &tested)
	if !tested.OK {
		t.Fatalf("test of the %s source: %s", cfg.Kind, tested.Error)
	}
	if len(grants) > 0 {
		setSourceGrants(t, h, owner, created.ID, grants...)
	}
	return created.ID
}

// setSourceGrants replaces a source's grants through the API.
func setSourceGrants(t testing.TB, h *harness, owner, id string, grants ...datasources.Grant) {
	t.Helper()
	list := make([]map[string]any, 0, len(grants))
	for _, g := range grants {
		list = append(list, map[string]any{"subject": g.Subject, "permissions": g.Permissions})
	}
	h.must(http.StatusOK, http.MethodPut, "/v1/data-sources/"+id+"/grants", owner, map[string]any{"grants": list})
}

// analyticsJob is a job as the API answers it.
type analyticsJob struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	DataSourceID string `json:"data_source_id"`
	Question     string `json:"question"`
	SQL          string `json:"sql"`
	Translator   string `json:"translator"`
	Error        string `json:"error"`
	Stage        string `json:"stage"`
	RowCount     int    `json:"row_count"`
	Columns      []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	SHA256    string `json:"sha256"`
	CreatedBy string `json:"created_by"`
	Timings   struct {
		SubmittedAt time.Time  `json:"submitted_at"`
		StartedAt   *time.Time `json:"started_at"`
		FinishedAt  *time.Time `json:"finished_at"`
		DurationMS  int64      `json:"duration_ms"`
	} `json:"timings"`
}

// submit posts a job and returns its id.
func submit(t testing.TB, h *harness, token string, body map[string]string) string {
	t.Helper()
	var accepted struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	h.must(http.StatusAccepted, http.MethodPost, "/v1/analytics/jobs", token, body).json(t, &accepted)
	if accepted.ID == "" || accepted.State != "submitted" {
		t.Fatalf("accepted = %+v", accepted)
	}
	return accepted.ID
}

// awaitJob polls a job until it is in one of states (by default, ended).
func awaitJob(t testing.TB, h *harness, token, id string, states ...string) analyticsJob {
	t.Helper()
	if len(states) == 0 {
		states = []string{"succeeded", "failed", "cancelled"}
	}
	deadline := time.Now().Add(60 * time.Second)
	var j analyticsJob
	for time.Now().Before(deadline) {
		h.must(http.StatusOK, http.MethodGet, "/v1/analytics/jobs/"+id, token, nil).json(t, &j)
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %s is %s, want one of %v: %+v", id, j.State, states, j)
	return j
}

// resultRows returns a succeeded job's rows.
func resultRows(t testing.TB, h *harness, token, id string) [][]any {
	t.Helper()
	var res struct {
		Rows [][]any `json:"rows"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/analytics/jobs/"+id+"/result", token, nil).json(t, &res)
	return res.Rows
}
