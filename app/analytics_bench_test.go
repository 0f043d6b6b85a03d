package app_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/domain/datasources"
)

// aggregate1000 groups the 3,000 sample sales into 1,000 groups: a
// 1,000-row result of three columns.
const aggregate1000 = `SELECT id % 1000 AS k, COUNT(*) AS n, SUM(amount) AS total FROM sales GROUP BY id % 1000`

// BenchmarkAnalyticsJob measures one analytics job from submission to its
// result being readable: POST /v1/analytics/jobs, then polling
// GET /v1/analytics/jobs/{id}/result (every 2 ms) until it answers 200,
// for a 1,000-row aggregate on the sample PostgreSQL and MariaDB sources,
// with 1 and 16 jobs in flight (16 workers). It reports p50 and p99 of
// that latency (ms) and jobs/s.
//
//	go test ./app -run '^$' -bench BenchmarkAnalyticsJob -benchtime 200x
func BenchmarkAnalyticsJob(b *testing.B) {
	h := openHarness(b, b.TempDir(), func(cfg *app.Config) { cfg.Analytics.Workers = 16 })
	_, owner := h.createOrg("Bench", "owner")
	ids := map[string]string{}
	for name, env := range map[string]string{"postgres": envDataSourcePG, "mariadb": envDataSourceMySQL} {
		ids[name] = createSource(b, h, owner, sampleSource(b, env), []string{"sales"},
			datasources.Grant{Subject: "user:owner", Permissions: queryGrant})
	}
	for _, name := range []string{"postgres", "mariadb"} {
		for _, inFlight := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/concurrent=%d", name, inFlight), func(b *testing.B) {
				body := map[string]string{"data_source_id": ids[name], "sql": aggregate1000}
				// One job first, so that pools and connections exist.
				runJob(b, h, owner, body)
				var (
					mu        sync.Mutex
					latencies []time.Duration
				)
				jobs := make(chan struct{})
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range inFlight {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range jobs {
							d := runJob(b, h, owner, body)
							mu.Lock()
							latencies = append(latencies, d)
							mu.Unlock()
						}
					}()
				}
				for range b.N {
					jobs <- struct{}{}
				}
				close(jobs)
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				slices.Sort(latencies)
				pct := func(p float64) float64 {
					return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
				}
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
			})
		}
	}
}

// runJob submits one job and waits until its result is readable; it
// returns how long that took.
func runJob(b *testing.B, h *harness, token string, body map[string]string) time.Duration {
	start := time.Now()
	var accepted struct{ ID string }
	r := h.do(http.MethodPost, "/v1/analytics/jobs", token, body, "Prefer", "respond-async")
	if r.status != http.StatusAccepted {
		b.Errorf("submit = %d %s", r.status, r.body)
		return 0
	}
	r.json(b, &accepted)
	for {
		r := h.do(http.MethodGet, "/v1/analytics/jobs/"+accepted.ID+"/result", token, nil)
		switch r.status {
		case http.StatusOK:
			var res struct {
				RowCount int `json:"row_count"`
			}
			r.json(b, &res)
			if res.RowCount != 1000 {
				b.Errorf("result of %d rows, want 1000", res.RowCount)
			}
			return time.Since(start)
		case http.StatusConflict, http.StatusNotFound: // not succeeded yet, or not in the read model yet
			var j analyticsJob
			if g := h.do(http.MethodGet, "/v1/analytics/jobs/"+accepted.ID, token, nil); g.status == http.StatusOK {
				g.json(b, &j)
				if j.State == "failed" || j.State == "cancelled" {
					b.Errorf("job %s: %+v", accepted.ID, j)
					return time.Since(start)
				}
			}
			time.Sleep(2 * time.Millisecond)
		default:
			b.Errorf("result = %d %s", r.status, r.body)
			return time.Since(start)
		}
	}
}
