package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain/datasources"
)

var queryGrant = []string{"datasources:query"}

// runaway is a query the guard accepts that runs far longer than any
// test's timeout: three cross joins of the 3,000-row sales table.
const runaway = `SELECT COUNT(*) FROM sales a CROSS JOIN sales b CROSS JOIN sales c CROSS JOIN sales d`

// TestAnalyticsJobsOnRealDatabases runs questions and SQL against real
// PostgreSQL, MariaDB and SQLite sources through the API: the rows are
// the database's, hostile SQL ends at the guard with its reason, and a
// runaway query ends at the timeout without harming the next job.
func TestAnalyticsJobsOnRealDatabases(t *testing.T) {
	t.Parallel()
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) { cfg.Analytics.Timeout = time.Second })
	org, owner := h.createOrg("Acme", "owner")
	analyst := h.addMember(org, owner, "ana", "analyst")
	sources := map[string]datasource.Config{
		"postgres": sampleSource(t, envDataSourcePG),
		"mysql":    sampleSource(t, envDataSourceMySQL),
		"sqlite":   sqliteSales(t, h, org, salesRows),
	}
	ids := map[string]string{}
	for kind, cfg := range sources {
		ids[kind] = createSource(t, h, owner, cfg, []string{"sales"}, datasources.Grant{Subject: "role:analyst", Permissions: queryGrant})
	}
	for kind := range sources {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			src := ids[kind]
			// SQL: the count per region adds up to the table.
			id := submit(t, h, analyst, map[string]string{"data_source_id": src,
				"sql": "SELECT region, COUNT(*) AS n FROM sales GROUP BY region ORDER BY region"})
			job := awaitJob(t, h, analyst, id)
			if job.State != "succeeded" || job.Translator != "sql" || job.RowCount == 0 || len(job.Columns) != 2 ||
				job.SHA256 == "" || job.Timings.FinishedAt == nil || job.CreatedBy != "ana" {
				t.Fatalf("sql job = %+v", job)
			}
			total := 0
			for _, row := range resultRows(t, h, analyst, id) {
				total += int(toFloat(t, row[1]))
			}
			if total != salesRows {
				t.Fatalf("the counts per region add up to %d, want %d", total, salesRows)
			}
			// A question, translated by the built-in translator.
			id = submit(t, h, analyst, map[string]string{"data_source_id": src, "question": "how many sales by region"})
			job = awaitJob(t, h, analyst, id)
			if job.State != "succeeded" || job.Translator != "builtin" || !strings.Contains(job.SQL, "GROUP BY") {
				t.Fatalf("question job = %+v", job)
			}
			total = 0
			for _, row := range resultRows(t, h, analyst, id) {
				total += int(toFloat(t, row[len(row)-1]))
			}
			if total != salesRows {
				t.Fatalf("the question's counts add up to %d, want %d", total, salesRows)
			}
			csv := h.must(http.StatusOK, http.MethodGet, "/v1/analytics/jobs/"+id+"/result", analyst, nil, "Accept", "text/csv")
			if lines := strings.Split(strings.TrimSpace(string(csv.body)), "\n"); len(lines) != job.RowCount+1 ||
				!strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") {
				t.Fatalf("csv = %q", csv.body)
			}

			// Hostile SQL fails at the guard, with its reason recorded
			// and shown.
			for _, sql := range []string{
				"DELETE FROM sales",
				"SELECT pg_sleep(10)",
				"SELECT set_config('statement_timeout', '0', false)",
				"SELECT employee, salary FROM salaries",
				"SELECT 1; DROP TABLE sales",
			} {
				id := submit(t, h, analyst, map[string]string{"data_source_id": src, "sql": sql})
				job := awaitJob(t, h, analyst, id)
				if job.State != "failed" || job.Stage != "guard" || job.Error == "" || job.SQL != sql {
					t.Fatalf("%q: job = %+v", sql, job)
				}
				h.must(http.StatusConflict, http.MethodGet, "/v1/analytics/jobs/"+id+"/result", analyst, nil)
			}

			// A runaway the guard accepts ends at the timeout; the pool
			// and the source's connections stay healthy.
			id = submit(t, h, analyst, map[string]string{"data_source_id": src, "sql": runaway})
			job = awaitJob(t, h, analyst, id)
			if job.State != "failed" || job.Stage != "execute" || !strings.Contains(job.Error, "ran longer than 1s") {
				t.Fatalf("runaway job = %+v", job)
			}
			id = submit(t, h, analyst, map[string]string{"data_source_id": src, "sql": "SELECT COUNT(*) AS n FROM sales"})
			if job = awaitJob(t, h, analyst, id); job.State != "succeeded" || toFloat(t, resultRows(t, h, analyst, id)[0][0]) != salesRows {
				t.Fatalf("the job after the runaway = %+v", job)
			}
		})
	}
}

func toFloat(t testing.TB, v any) float64 {
	t.Helper()
	switch v := v.(type) {
	case float64:
		return v
	case string: // exact numbers are decimal strings
		var f float64
		if _, err := fmt.Sscan(v, &f); err != nil {
			t.Fatalf("%q is not a number", v)
		}
		return f
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

// TestAnalyticsCancelAndRevoke shows a cancel stopping a running query on
// PostgreSQL itself, and a job whose asker lost the source's grant while it
// waited for a worker failing at authorize.
func TestAnalyticsCancelAndRevoke(t *testing.T) {
	t.Parallel()
	h := openHarness(t, t.TempDir(), func(cfg *app.Config) {
		cfg.Analytics.Workers, cfg.Analytics.Timeout = 1, 30*time.Second
	})
	org, owner := h.createOrg("Acme", "owner")
	analyst := h.addMember(org, owner, "ana", "analyst")
	pg := sampleSource(t, envDataSourcePG)
	src := createSource(t, h, owner, pg, []string{"sales"}, datasources.Grant{Subject: "user:ana", Permissions: queryGrant})

	long := submit(t, h, owner, map[string]string{"data_source_id": src, "sql": runaway})
	awaitJob(t, h, owner, long, "running")
	waitQuery(t, pg, true)
	// The only worker is busy: ana's job waits, and meanwhile loses its grant.
	queued := submit(t, h, analyst, map[string]string{"data_source_id": src, "sql": "SELECT COUNT(*) FROM sales"})
	setSourceGrants(t, h, owner, src)

	// Ana may not cancel the owner's job; the owner may.
	h.must(http.StatusNotFound, http.MethodPost, "/v1/analytics/jobs/"+long+"/cancel", analyst, nil)
	r := h.do(http.MethodPost, "/v1/analytics/jobs/"+long+"/cancel", owner, nil)
	if r.status != http.StatusAccepted && r.status != http.StatusOK {
		t.Fatalf("cancel = %d %s", r.status, r.body)
	}
	if job := awaitJob(t, h, owner, long); job.State != "cancelled" {
		t.Fatalf("cancelled job = %+v", job)
	}
	waitQuery(t, pg, false)
	// Ana's job ran after the grant was gone. The owner reads it (a
	// manager of the source, with analytics:read); ana does not any more.
	job := awaitJob(t, h, owner, queued)
	if job.State != "failed" || job.Stage != "authorize" || !strings.Contains(job.Error, "no grant") {
		t.Fatalf("job after the revocation = %+v", job)
	}
}

// waitQuery waits until the runaway query is (or is no longer) running on
// PostgreSQL, as its superuser sees pg_stat_activity.
func waitQuery(t testing.TB, cfg datasource.Config, running bool) {
	t.Helper()
	waitStatement(t, cfg, "%CROSS JOIN sales d%", running)
}

// waitStatement waits until a statement of cfg's user whose text is LIKE
// pattern is (or is no longer) active on PostgreSQL.
func waitStatement(t testing.TB, cfg datasource.Config, pattern string, running bool) {
	t.Helper()
	admin := os.Getenv("PALISADE_TEST_DATASOURCE_PG_ADMIN_URL")
	if admin == "" {
		admin = fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable", cfg.Host, cfg.Port)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect as the superuser to watch pg_stat_activity: %v", err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE usename = $1 AND state = 'active' AND query LIKE $2`, cfg.User, pattern).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) == running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("statements like %q active on PostgreSQL: %d, want running %v", pattern, n, running)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnalyticsJobSurvivesARestart stops the server under a running job
// and reopens it: the job ends (here at the new, short timeout), never
// left running.
func TestAnalyticsJobSurvivesARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := openHarness(t, dir, func(cfg *app.Config) { cfg.Analytics.Timeout = 30 * time.Second })
	org, owner := h.createOrg("Acme", "owner")
	pg := sampleSource(t, envDataSourcePG)
	src := createSource(t, h, owner, pg, []string{"sales"})
	id := submit(t, h, owner, map[string]string{"data_source_id": src, "sql": runaway})
	awaitJob(t, h, owner, id, "running")
	h.close()

	h = openHarness(t, dir, func(cfg *app.Config) { cfg.Analytics.Timeout = 500 * time.Millisecond })
	owner = h.userToken(org, "owner")
	job := awaitJob(t, h, owner, id)
	if job.State != "failed" || job.Stage != "execute" || job.Error == "" {
		t.Fatalf("job after the restart = %+v", job)
	}
	waitQuery(t, pg, false)
}

// TestSQLiteFilesArePerOrganization: an organization's SQLite sources
// name files in its own directory of the SQLite root only, so org B,
// giving the path of org A's file, reaches nothing, whether by the same
// path or by climbing out of its directory.
func TestSQLiteFilesArePerOrganization(t *testing.T) {
	t.Parallel()
	h := openHarness(t, t.TempDir())
	orgA, ownerA := h.createOrg("A", "owner-a")
	_, ownerB := h.createOrg("B", "owner-b")
	cfg := sqliteSales(t, h, orgA, 5)
	createSource(t, h, ownerA, cfg, []string{"sales"}) // A's own test succeeds
	for _, path := range []string{cfg.Path, orgA + "/" + cfg.Path} {
		src := h.createSource(ownerB, map[string]any{"name": "theirs " + path, "kind": "sqlite",
			"connection": map[string]any{"path": path}, "allowed_tables": []string{"sales"}})
		var res dsTest
		h.must(http.StatusOK, http.MethodPost, "/v1/data-sources/"+src.ID+"/test", ownerB, nil).json(t, &res)
		if res.OK || len(res.Schema.Tables) != 0 {
			t.Errorf("org B's source on %q reached org A's file: %+v", path, res)
		}
	}
	r := h.do(http.MethodPost, "/v1/data-sources", ownerB, map[string]any{"name": "climb", "kind": "sqlite",
		"connection": map[string]any{"path": "../" + orgA + "/" + cfg.Path}, "allowed_tables": []string{"sales"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("a path climbing out of B's directory = %d %s, want 422", r.status, r.body)
	}
}

// TestAnalyticsIsolation tries every analytics route on org A's job from
// org B and from members of A who may not see it.
func TestAnalyticsIsolation(t *testing.T) {
	t.Parallel()
	h := openHarness(t, t.TempDir())
	orgA, ownerA := h.createOrg("A", "owner-a")
	_, ownerB := h.createOrg("B", "owner-b")
	ana := h.addMember(orgA, ownerA, "ana", "analyst")
	otto := h.addMember(orgA, ownerA, "otto", "analyst") // no grant on the source
	vera := h.addMember(orgA, ownerA, "vera", "viewer")  // analytics:read, cannot query
	src := createSource(t, h, ownerA, sqliteSales(t, h, orgA, 20), []string{"sales"},
		datasources.Grant{Subject: "user:ana", Permissions: queryGrant})
	id := submit(t, h, ana, map[string]string{"data_source_id": src, "sql": "SELECT region, amount FROM sales"})
	if job := awaitJob(t, h, ana, id); job.State != "succeeded" || job.RowCount != 20 {
		t.Fatalf("ana's job = %+v", job)
	}
	body := map[string]string{"data_source_id": src, "sql": "SELECT 1"}
	for name, token := range map[string]string{"org B's owner": ownerB, "an analyst without a grant": otto, "a viewer": vera} {
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/v1/analytics/jobs/" + id},
			{http.MethodGet, "/v1/analytics/jobs/" + id + "/result"},
			{http.MethodPost, "/v1/analytics/jobs/" + id + "/cancel"},
		} {
			r := h.do(c.method, c.path, token, nil)
			if r.status != http.StatusNotFound || strings.Contains(string(r.body), "r1") {
				t.Errorf("%s: %s %s = %d %s, want 404", name, c.method, c.path, r.status, r.body)
			}
		}
		var list struct {
			Items []analyticsJob `json:"items"`
		}
		h.must(http.StatusOK, http.MethodGet, "/v1/analytics/jobs", token, nil).json(t, &list)
		if len(list.Items) != 0 {
			t.Errorf("%s lists %+v", name, list.Items)
		}
	}
	// Submitting on the source: 404 for B and for the ungranted member,
	// 403 for a role that may not run analytics at all.
	h.must(http.StatusNotFound, http.MethodPost, "/v1/analytics/jobs", ownerB, body)
	h.must(http.StatusNotFound, http.MethodPost, "/v1/analytics/jobs", otto, body)
	h.must(http.StatusForbidden, http.MethodPost, "/v1/analytics/jobs", vera, body)
	// The owner manages the source and holds analytics:read: it reads.
	h.must(http.StatusOK, http.MethodGet, "/v1/analytics/jobs/"+id+"/result", ownerA, nil)
	var list struct {
		Items []analyticsJob `json:"items"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/analytics/jobs", ownerA, nil).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != id {
		t.Fatalf("the owner lists %+v", list.Items)
	}
}
