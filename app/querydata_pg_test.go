package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisadehq/palisade/ai/llm"
	"github.com/palisadehq/palisade/ai/llm/llmtest"
	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/datasource"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/conversations"
	"github.com/palisadehq/palisade/domain/datasources"
)

// pgDataBot adds to a dataBot the provisioned PostgreSQL sample source,
// granted to ana, and a bot granted query_data on it.
func pgDataBot(t *testing.T, configure ...func(*app.Config)) (d dataBot, pg datasource.Config, source, bot string) {
	t.Helper()
	pg = sampleSource(t, envDataSourcePG)
	d = newDataBot(t, configure...)
	source = createSource(t, d.h, d.owner, pg, []string{"sales"}, datasources.Grant{Subject: "user:ana", Permissions: queryGrant})
	return d, pg, source, d.createBot("Postgres data", source)
}

// TestQueryDataOnPostgreSQL: the built-in model's query_data call on the
// PostgreSQL sample counts its 3,000 sales; the job is the bot's on
// behalf of ana, and the count reaches the record and ana's view of it.
func TestQueryDataOnPostgreSQL(t *testing.T) {
	t.Parallel()
	d, _, source, bot := pgDataBot(t)
	h := d.h
	conv := h.startConversation(d.ana, bot)
	a, _ := h.ask(d.ana, conv, "How many sales?\n"+queryLine(source, "how many sales"))
	if len(a.Message.ToolCalls) != 1 || a.Message.ToolCalls[0].Tool != "query_data" || a.Message.ToolCalls[0].Status != "ok" {
		t.Fatalf("tool calls = %+v, want one query_data ok", a.Message.ToolCalls)
	}

	jobs, envs := recorded[analytics.AnalyticsJobSubmitted](t, h, d.org, "AnalyticsJobSubmitted")
	if len(jobs) != 1 {
		t.Fatalf("%d jobs submitted, want 1", len(jobs))
	}
	job, actor := jobs[0], envs[0].Actor
	if job.DataSourceID != source || job.BotID != bot || job.RequestedBy != "ana" || job.RequestedByKind != "user" {
		t.Fatalf("job submitted = %+v", job)
	}
	if actor.Subject != bot || actor.Kind != "bot" || !slices.Equal(actor.OnBehalfOf, []string{"ana"}) {
		t.Fatalf("job's actor = %+v, want the bot on behalf of ana", actor)
	}
	completed, _ := recorded[conversations.ToolCallCompleted](t, h, d.org, "ToolCallCompleted")
	if len(completed) != 1 || completed[0].Status != "ok" || completed[0].RowCount != 1 ||
		!slices.Equal(completed[0].DataSourceIDs, []string{source}) || !slices.Equal(completed[0].AnalyticsJobIDs, []string{job.ID}) {
		t.Fatalf("completed = %+v", completed)
	}

	got := awaitJob(t, h, d.ana, job.ID)
	if got.State != "succeeded" || got.CreatedBy != "ana" || got.RowCount != 1 || !strings.Contains(got.SQL, "COUNT(*)") {
		t.Fatalf("ana's view of the job = %+v", got)
	}
	rows := resultRows(t, h, d.ana, job.ID)
	if len(rows) != 1 || len(rows[0]) != 1 || int(toFloat(t, rows[0][0])) != salesRows {
		t.Fatalf("rows = %v, want the count %d of PostgreSQL's sales", rows, salesRows)
	}
}

// runawayModel is an OpenAI-compatible test model whose translator writes
// a runaway cross join for every question, with the last table aliased
// alias so that a test finds its own statement in pg_stat_activity, and
// whose chat model calls the tool of the question's "@tool query_data"
// line.
func runawayModel(t *testing.T, alias string) func(*app.Config) {
	t.Helper()
	sql := "SELECT COUNT(*) FROM sales a CROSS JOIN sales b CROSS JOIN sales c CROSS JOIN sales " + alias
	srv := llmtest.NewServer(t, func(r llmtest.Recorded) llmtest.Reply {
		msgs := r.Chat.Messages
		if len(msgs) > 0 && strings.HasPrefix(msgs[0].Text(), "You translate questions") {
			return llmtest.Reply{Content: sql}
		}
		last := msgs[len(msgs)-1]
		if last.Role == "tool" {
			return llmtest.Reply{Content: "tool said: " + last.Text()}
		}
		_, args, _ := strings.Cut(last.Text(), "@tool query_data ")
		return llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "c1", Name: "query_data", Arguments: json.RawMessage(args)}}}
	})
	return func(cfg *app.Config) {
		cfg.LLM = app.LLMConfig{URL: srv.URL + "/v1", Model: "test-model", APIKey: "sk-test"}
		cfg.Analytics.Timeout = 30 * time.Second
	}
}

// assertJobCancelledByBot checks that the org's one analytics job, asked
// by bot for ana, ended cancelled at the bot's request (not at the
// analytics timeout) and that its statement is gone from PostgreSQL.
func assertJobCancelledByBot(t *testing.T, d dataBot, pg datasource.Config, pattern, bot string) {
	t.Helper()
	jobs, _ := recorded[analytics.AnalyticsJobSubmitted](t, d.h, d.org, "AnalyticsJobSubmitted")
	if len(jobs) != 1 {
		t.Fatalf("%d jobs submitted, want 1", len(jobs))
	}
	if job := awaitJob(t, d.h, d.ana, jobs[0].ID); job.State != "cancelled" {
		t.Fatalf("the job after the turn ended = %+v, want cancelled", job)
	}
	waitStatement(t, pg, pattern, false)
	_, envs := recorded[analytics.AnalyticsJobCancelRequested](t, d.h, d.org, "AnalyticsJobCancelRequested")
	if len(envs) != 1 || envs[0].Actor.Subject != bot || !slices.Equal(envs[0].Actor.OnBehalfOf, []string{"ana"}) {
		t.Fatalf("cancel requests = %+v, want one by the bot on behalf of ana", envs)
	}
}

// lastMessageStatus polls the conversation until its last message is no
// longer running, and returns its status.
func lastMessageStatus(t *testing.T, h *harness, token, conv string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got conversationBody
		h.must(http.StatusOK, http.MethodGet, "/v1/conversations/"+conv, token, nil).json(t, &got)
		last := got.Messages[len(got.Messages)-1]
		if last.Status != "running" || time.Now().After(deadline) {
			return last.Status
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQueryDataTurnTimeoutCancelsTheJob: a turn that times out while its
// query_data job runs on PostgreSQL fails, and the job is cancelled
// (its statement gone from the server) long before the analytics
// timeout would end it.
func TestQueryDataTurnTimeoutCancelsTheJob(t *testing.T) {
	t.Parallel()
	const alias, pattern = "qd_turn", "%CROSS JOIN sales qd_turn%"
	model := runawayModel(t, alias)
	d, pg, source, bot := pgDataBot(t, model, func(cfg *app.Config) { cfg.TurnTimeout = 3 * time.Second })
	h := d.h
	conv := h.startConversation(d.ana, bot)

	// The turn runs in the background (without the harness, which may
	// not fail the test from another goroutine) while the test watches
	// PostgreSQL.
	status := askInBackground(t, h, d.ana, conv, "Count it\n"+queryLine(source, "count everything"))
	waitStatement(t, pg, pattern, true)
	select {
	case code := <-status:
		if code != http.StatusBadGateway {
			t.Fatalf("the timed-out turn answered %d, want 502", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the turn did not end at its timeout")
	}
	if s := lastMessageStatus(t, h, d.ana, conv); s != "failed" {
		t.Fatalf("the timed-out turn is %q, want failed", s)
	}
	assertJobCancelledByBot(t, d, pg, pattern, bot)
}

// TestQueryDataDisconnectCancelsTheJob: a client leaving a streamed turn
// while its query_data job runs on PostgreSQL cancels the turn and the
// job.
func TestQueryDataDisconnectCancelsTheJob(t *testing.T) {
	t.Parallel()
	const alias, pattern = "qd_gone", "%CROSS JOIN sales qd_gone%"
	d, pg, source, bot := pgDataBot(t, runawayModel(t, alias))
	h := d.h
	conv := h.startConversation(d.ana, bot)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := h.postStream(ctx, d.ana, conv, "Count it\n"+queryLine(source, "count everything"))
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the tool call: %v", err)
		}
		if strings.HasPrefix(line, "event: tool.call") {
			break
		}
	}
	waitStatement(t, pg, pattern, true)
	cancel()
	resp.Body.Close()

	if s := lastMessageStatus(t, h, d.ana, conv); s != "cancelled" {
		t.Fatalf("after the client left, the turn is %q, want cancelled", s)
	}
	assertJobCancelledByBot(t, d, pg, pattern, bot)
}

// TestQueryDataJobNeedsTheBotsGrantWhenItRuns: a job a bot submitted
// through query_data is authorized again when it runs, on the bot's
// grants as they are then: a data source withdrawn from the bot while the
// job waited for a worker fails the job at authorize, before anything
// runs on the source.
func TestQueryDataJobNeedsTheBotsGrantWhenItRuns(t *testing.T) {
	t.Parallel()
	const busy = "SELECT COUNT(*) FROM sales a CROSS JOIN sales b CROSS JOIN sales c CROSS JOIN sales qd_busy"
	d, pg, source, bot := pgDataBot(t, runawayModel(t, "qd_regrant"), func(cfg *app.Config) {
		cfg.Analytics.Workers, cfg.TurnTimeout = 1, 20*time.Second
	})
	h := d.h
	// The only worker is busy with the owner's runaway job.
	long := submit(t, h, d.owner, map[string]string{"data_source_id": source, "sql": busy})
	awaitJob(t, h, d.owner, long, "running")
	waitStatement(t, pg, "%CROSS JOIN sales qd_busy%", true)

	// Ana's turn runs in the background (the harness may not fail the
	// test from another goroutine); its query_data job waits for the
	// worker.
	conv := h.startConversation(d.ana, bot)
	status := askInBackground(t, h, d.ana, conv, "Count it\n"+queryLine(source, "count everything"))
	var botJob string
	for deadline := time.Now().Add(20 * time.Second); botJob == ""; {
		jobs, _ := recorded[analytics.AnalyticsJobSubmitted](t, h, d.org, "AnalyticsJobSubmitted")
		for _, j := range jobs {
			if j.BotID == bot {
				botJob = j.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the bot's job was not submitted")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The bot loses the source; then the worker frees up.
	h.must(http.StatusOK, http.MethodPatch, "/v1/bots/"+bot, d.owner, map[string]any{
		"grants": map[string]any{"tools": []string{"query_data"}, "permissions": []string{"datasources:query", "analytics:run"}, "data_sources": []string{}},
	})
	if r := h.do(http.MethodPost, "/v1/analytics/jobs/"+long+"/cancel", d.owner, nil); r.status != http.StatusAccepted && r.status != http.StatusOK {
		t.Fatalf("cancel = %d %s", r.status, r.body)
	}
	job := awaitJob(t, h, d.owner, botJob)
	if job.State != "failed" || job.Stage != "authorize" || !strings.Contains(job.Error, "no longer granted the data source") {
		t.Errorf("the bot's job after the source was withdrawn = %+v, want failed at authorize", job)
	}
	select {
	case code := <-status:
		if code != http.StatusOK {
			t.Errorf("the turn answered %d, want 200 with the refusal as the tool's result", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the turn did not end")
	}
}

// askInBackground asks a question in conversation conv as token, in a
// goroutine of its own (the harness may not fail a test from another
// goroutine), and sends the answer's status on the returned channel (0
// when the request failed).
func askInBackground(t *testing.T, h *harness, token, conv, content string) <-chan int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"content": content})
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/conversations/"+conv+"/messages", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	status := make(chan int, 1)
	go func() {
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}
