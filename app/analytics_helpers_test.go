package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
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

// sqliteSales writes a SQLite file under the harness's SQLite root with a
// sales table of n rows (region r0…r4, amount i) and a salaries table no
// source allows, and returns its path relative to the root.
func sqliteSales(t testing.TB, h *harness, n int) datasource.Config {
	t.Helper()
	root := filepath.Join(h.dataDir, "sqlite")
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

// createSource records a data source of org as the data-sources commands
// would: its password sealed with the org's data key (from the keyring the
// app keeps in the data directory), tested (its schema snapshot taken by
// the real executor) and granted.
//
// TODO(s16-datasources): create sources through POST /v1/data-sources once
// that branch is merged.
func createSource(t testing.TB, h *harness, org, id string, cfg datasource.Config, tables []string, grants ...datasources.Grant) {
	t.Helper()
	ctx := context.Background()
	conn := datasources.Connection{Host: cfg.Host, Port: cfg.Port, Database: cfg.Database, User: cfg.User, Params: cfg.Params, Path: cfg.Path}
	if !cfg.Password.IsZero() {
		master, err := sealing.LoadOrCreateMasterKey(h.dataDir)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := keyring.Open(filepath.Join(h.dataDir, keyring.Dir), master)
		if err != nil {
			t.Fatal(err)
		}
		key, err := keys.DataKey(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := sealing.Seal(key, org, []byte(cfg.Password.Reveal()), datasources.PasswordPurpose(id))
		if err != nil {
			t.Fatal(err)
		}
		text, err := sealed.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		conn.SealedPassword = string(text)
	}
	exec := datasource.New(datasource.Options{SQLiteRoot: filepath.Join(h.dataDir, "sqlite")})
	defer exec.Close()
	schema, err := exec.Test(ctx, cfg)
	if err != nil {
		t.Fatalf("test source %s: %v", id, err)
	}
	snapshot := datasources.Schema{}
	for _, tb := range schema.Tables {
		st := datasources.Table{Name: tb.Name}
		for _, c := range tb.Columns {
			st.Columns = append(st.Columns, datasources.Column{Name: c.Name, Type: c.Type})
		}
		snapshot.Tables = append(snapshot.Tables, st)
	}
	allowed := make([]datasources.AllowedTable, len(tables))
	for i, name := range tables {
		allowed[i] = datasources.AllowedTable{Name: name}
	}
	appendSourceEvents(t, h, org, id,
		&datasources.DataSourceCreated{ID: id, Name: id, Kind: datasources.Kind(cfg.Kind), Connection: conn, AllowedTables: allowed},
		&datasources.DataSourceTested{OK: true, Schema: snapshot, ConnectionVersion: 1},
		&datasources.DataSourceGrantsSet{Grants: grants})
}

// appendSourceEvents appends to a source's stream, as its owner, and waits
// until the read models have them.
func appendSourceEvents(t testing.TB, h *harness, org, id string, evs ...domain.Event) {
	t.Helper()
	ctx := context.Background()
	batch := make([]eventstore.NewEvent, len(evs))
	for i, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		batch[i] = eventstore.NewEvent{ID: eventstore.NewEventID(), Type: e.EventType(), Data: data, Metadata: eventstore.Metadata{
			OrgID: org, Actor: eventstore.Actor{Subject: "owner", Kind: "user"}, SchemaVersion: 1, OccurredAt: time.Now().UTC()}}
	}
	res, err := h.app.Store.Append(ctx, eventstore.MustStreamName(datasources.Category, org, id), eventstore.Any(), batch)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.app.Engine.WaitFor(wait, res.LastPosition); err != nil {
		t.Fatal(err)
	}
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
