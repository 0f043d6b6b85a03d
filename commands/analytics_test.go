package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/consumer"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/analytics"
	"github.com/palisadehq/palisade/domain/datasources"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/domain/jobs"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections/memory"
	"github.com/palisadehq/palisade/sealing"
	"github.com/palisadehq/palisade/sealing/keyring"
)

// fakeActors resolves actors from a table the test edits: a subject
// missing from it is no longer a member.
type fakeActors struct {
	mu    sync.Mutex
	roles map[string][]access.Role
}

func (f *fakeActors) set(sub string, roles ...access.Role) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(roles) == 0 {
		delete(f.roles, sub)
		return
	}
	f.roles[sub] = roles
}

func (f *fakeActors) Current(_ context.Context, orgID string, actor eventstore.Actor) (access.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	roles, ok := f.roles[actor.Subject]
	if !ok {
		return access.Principal{}, errors.New("not a member")
	}
	return access.NewUser(orgID, actor.Subject, roles, nil), nil
}

// fakeExecutor answers every query with rows, after block (if set)
// returns; it records what it was given.
type fakeExecutor struct {
	mu       sync.Mutex
	block    func(ctx context.Context) error
	rows     [][]any
	targets  []commands.QueryTarget
	queries  []string
	started  chan string
	finished int
}

func (f *fakeExecutor) Query(ctx context.Context, target commands.QueryTarget, sql string, limits commands.QueryLimits) (commands.QueryResult, error) {
	f.mu.Lock()
	f.targets, f.queries = append(f.targets, target), append(f.queries, sql)
	block, started := f.block, f.started
	f.mu.Unlock()
	if started != nil {
		started <- sql
	}
	if block != nil {
		if err := block(ctx); err != nil {
			return commands.QueryResult{}, err
		}
	}
	f.mu.Lock()
	f.finished++
	f.mu.Unlock()
	return commands.QueryResult{
		Columns: []analytics.Column{{Name: "region", Type: "text"}, {Name: "n", Type: "int8"}},
		Rows:    f.rows, RowCount: len(f.rows), Bytes: 40, SHA256: "abc", Duration: time.Millisecond,
	}, nil
}

type fakeTranslator struct{}

func (fakeTranslator) Translate(_ context.Context, kind datasources.Kind, tables []datasources.Table, question string) (string, string, error) {
	if question == "nonsense" {
		return "", "", errors.New("question not understood")
	}
	if len(tables) != 1 || tables[0].Name != "sales" || len(tables[0].Columns) != 2 {
		return "", "", fmt.Errorf("unexpected schema %+v", tables)
	}
	return `SELECT region, COUNT(*) AS n FROM sales GROUP BY region`, "builtin", nil
}

type analyticsBundle struct {
	ctx    context.Context
	store  eventstore.Store
	cmds   commands.Commands
	actors *fakeActors
	exec   *fakeExecutor
	runner *commands.AnalyticsRunner
	keys   *keyring.Keyring
	org    string
	owner  access.Principal
}

func setupAnalytics(t *testing.T, timeout time.Duration) *analyticsBundle {
	t.Helper()
	ctx := context.Background()
	store := openStore(t)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	p := commands.NewPipeline(store, events.NewRegistry(), logger)
	cmds := commands.New(p, nil, commands.Embedding{Model: "m", Dimensions: 3})
	org, err := cmds.Tenancy.CreateOrg(ctx, access.NewPlatform("ops"), "Acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	b := &analyticsBundle{
		ctx: ctx, store: store, cmds: cmds, actors: &fakeActors{roles: map[string][]access.Role{}},
		exec: &fakeExecutor{rows: [][]any{{"north", int64(3)}, {"south", int64(4)}}},
		keys: keyring.NewMemory(master), org: org.ID,
		owner: access.NewUser(org.ID, "alice", []access.Role{access.RoleOwner}, nil),
	}
	b.actors.set("alice", access.RoleOwner)
	b.runner = cmds.Analytics.NewRunner(b.actors, commands.AnalyticsDeps{
		Executor: b.exec, Translator: fakeTranslator{}, Keys: b.keys, Workers: 2, Timeout: timeout, Logger: logger,
	})
	runCtx, cancel := context.WithCancel(ctx)
	b.runner.Start(runCtx)
	t.Cleanup(func() { cancel(); b.runner.Stop() })
	return b
}

// source appends a tested postgres source with a sealed password and
// grants, as the data-sources commands would.
func (b *analyticsBundle) source(t *testing.T, id string, grants ...datasources.Grant) {
	t.Helper()
	b.sourceAllowing(t, id, []datasources.AllowedTable{{Name: "sales"}}, grants...)
}

// sourceAllowing is source with the given allow-list.
func (b *analyticsBundle) sourceAllowing(t *testing.T, id string, allowed []datasources.AllowedTable, grants ...datasources.Grant) {
	t.Helper()
	key, err := b.keys.DataKey(b.ctx, b.org)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealing.Seal(key, b.org, []byte("s3cret-pw"), datasources.PasswordPurpose(id))
	if err != nil {
		t.Fatal(err)
	}
	text, _ := sealed.MarshalText()
	b.appendSource(t, id,
		&datasources.DataSourceCreated{ID: id, Name: id, Kind: datasources.Postgres,
			Connection:    datasources.Connection{Host: "127.0.0.1", Port: 5432, Database: "d", User: "u", SealedPassword: string(text)},
			AllowedTables: allowed},
		&datasources.DataSourceGrantsSet{Grants: grants},
		&datasources.DataSourceTested{OK: true, ConnectionVersion: 1, Schema: datasources.Schema{Tables: []datasources.Table{
			{Name: "sales", Columns: []datasources.Column{{Name: "region", Type: "text"}, {Name: "amount", Type: "numeric"}}},
			{Name: "salaries", Columns: []datasources.Column{{Name: "salary", Type: "numeric"}}},
		}}})
}

func (b *analyticsBundle) appendSource(t *testing.T, id string, evs ...domain.Event) {
	t.Helper()
	var batch []eventstore.NewEvent
	for _, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, eventstore.NewEvent{ID: eventstore.NewEventID(), Type: e.EventType(), Data: data,
			Metadata: eventstore.Metadata{OrgID: b.org, Actor: eventstore.Actor{Subject: "alice", Kind: "user"}, SchemaVersion: 1, OccurredAt: time.Now()}})
	}
	stream := eventstore.MustStreamName(datasources.Category, b.org, id)
	if _, err := b.store.Append(b.ctx, stream, eventstore.Any(), batch); err != nil {
		t.Fatal(err)
	}
}

func (b *analyticsBundle) user(t *testing.T, sub string, roles ...access.Role) access.Principal {
	t.Helper()
	if _, err := b.cmds.Tenancy.AddMember(b.ctx, b.owner, tenancy.BuiltIn(sub), roles); err != nil {
		t.Fatal(err)
	}
	b.actors.set(sub, roles...)
	return access.NewUser(b.org, sub, roles, nil)
}

// started waits for the executor to be called for job id.
func (b *analyticsBundle) started(t *testing.T, id string) {
	t.Helper()
	select {
	case <-b.exec.started:
	case <-time.After(10 * time.Second):
		envs, _ := b.store.ReadStream(b.ctx, eventstore.MustStreamName(analytics.Category, b.org, id), 0, 100)
		for _, e := range envs {
			t.Logf("%s %s", e.Type, e.Data)
		}
		t.Fatalf("job %s never reached the executor", id)
	}
}

// submit submits and hands the job to the pool, as the process would.
func (b *analyticsBundle) submit(t *testing.T, who access.Principal, req commands.AnalyticsRequest) string {
	t.Helper()
	accepted, err := b.cmds.Analytics.Submit(b.ctx, who, req)
	if err != nil {
		t.Fatalf("submit %+v: %v", req, err)
	}
	envs, err := b.store.ReadStream(b.ctx, eventstore.MustStreamName(analytics.Category, b.org, accepted.ID), 0, 1)
	if err != nil || len(envs) != 1 {
		t.Fatalf("read submission: %v", err)
	}
	b.runner.Enqueue(envs[0])
	return accepted.ID
}

// ended waits for the job's end and returns its events after submission.
func (b *analyticsBundle) ended(t *testing.T, id string) []eventstore.Envelope {
	t.Helper()
	stream := eventstore.MustStreamName(analytics.Category, b.org, id)
	jobStream := eventstore.MustStreamName(jobs.Category, b.org, commands.JobID(stream, "query"))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		envs, err := b.store.ReadStream(b.ctx, stream, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		generic, _ := b.store.ReadStream(b.ctx, jobStream, 0, 100)
		last := envs[len(envs)-1].Type
		if (last == "AnalyticsJobSucceeded" || last == "AnalyticsJobFailed" || last == "AnalyticsJobCancelled") &&
			len(generic) > 0 && strings.HasPrefix(generic[len(generic)-1].Type, "Job") &&
			generic[len(generic)-1].Type != "JobStarted" && generic[len(generic)-1].Type != "JobSubmitted" {
			return envs[1:]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s did not end", id)
	return nil
}

func types(envs []eventstore.Envelope) string {
	var out []string
	for _, e := range envs {
		out = append(out, e.Type)
	}
	return strings.Join(out, ",")
}

func decodeAs[E any](t *testing.T, env eventstore.Envelope) E {
	t.Helper()
	var e E
	if err := json.Unmarshal(env.Data, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAnalyticsSubmitAuthorizes(t *testing.T) {
	t.Parallel()
	b := setupAnalytics(t, time.Second)
	b.source(t, "src-1", datasources.Grant{Subject: "user:ana", Permissions: []string{"datasources:query"}})
	b.source(t, "src-2")
	b.appendSource(t, "src-3", &datasources.DataSourceDeleted{})

	ana := b.user(t, "ana", access.RoleAnalyst)
	other := b.user(t, "otto", access.RoleAnalyst)
	viewer := b.user(t, "vic", access.RoleViewer)
	tests := []struct {
		name   string
		who    access.Principal
		source string
		want   error
	}{
		{"granted analyst", ana, "src-1", nil},
		{"owner manages every source", b.owner, "src-2", nil},
		{"analyst without a grant", other, "src-1", domain.ErrNotFound},
		{"no grants: only managers", ana, "src-2", domain.ErrNotFound},
		{"missing source", ana, "nope", domain.ErrNotFound},
		{"deleted source", b.owner, "src-3", domain.ErrNotFound},
		{"invalid id", ana, "../x", domain.ErrNotFound},
		{"role without analytics:run", viewer, "src-1", domain.ErrForbidden},
		{"other org", access.NewUser("org-other", "ana", []access.Role{access.RoleOwner}, nil), "src-1", domain.ErrNotFound},
	}
	for _, tt := range tests {
		_, err := b.cmds.Analytics.Submit(b.ctx, tt.who, commands.AnalyticsRequest{DataSourceID: tt.source, SQL: "SELECT 1"})
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := b.cmds.Analytics.Submit(b.ctx, ana, commands.AnalyticsRequest{DataSourceID: "src-1", SQL: "SELECT 1", Question: "q"}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("both question and sql: %v, want ErrInvalid", err)
	}
}

func TestAnalyticsJobOutcomes(t *testing.T) {
	t.Parallel()
	b := setupAnalytics(t, time.Second)
	b.source(t, "src-1", datasources.Grant{Subject: "role:analyst", Permissions: []string{"datasources:query"}})
	ana := b.user(t, "ana", access.RoleAnalyst)

	t.Run("question succeeds", func(t *testing.T) {
		evs := b.ended(t, b.submit(t, ana, commands.AnalyticsRequest{DataSourceID: "src-1", Question: "how many sales by region"}))
		if got := types(evs); got != "AnalyticsJobStarted,AnalyticsQueryPlanned,AnalyticsResultPage,AnalyticsJobSucceeded" {
			t.Fatalf("events = %s", got)
		}
		plan := decodeAs[analytics.AnalyticsQueryPlanned](t, evs[1])
		if plan.Translator != "builtin" || len(plan.Tables) != 1 || plan.Tables[0] != "sales" {
			t.Fatalf("plan = %+v", plan)
		}
		page := decodeAs[analytics.AnalyticsResultPage](t, evs[2])
		if string(page.Rows) != `[["north",3],["south",4]]` {
			t.Fatalf("page = %s", page.Rows)
		}
		done := decodeAs[analytics.AnalyticsJobSucceeded](t, evs[3])
		if done.RowCount != 2 || done.Pages != 1 || done.SHA256 != "abc" || len(done.Columns) != 2 {
			t.Fatalf("summary = %+v", done)
		}
		if evs[3].Actor.Kind != "process" || evs[3].Actor.OnBehalfOf[0] != "ana" {
			t.Fatalf("recorded as %+v", evs[3].Actor)
		}
		// The executor got the password opened, and never the sealed form.
		b.exec.mu.Lock()
		target := b.exec.targets[len(b.exec.targets)-1]
		b.exec.mu.Unlock()
		if target.Password.Reveal() != "s3cret-pw" || target.Connection.SealedPassword != "" || target.Tables[0] != "sales" {
			t.Fatalf("target = %+v", target)
		}
	})
	t.Run("hostile sql fails at the guard", func(t *testing.T) {
		for _, sql := range []string{"DELETE FROM sales", "SELECT salary FROM salaries", "SELECT pg_sleep(10)", "SELECT set_config('x','y',false)"} {
			evs := b.ended(t, b.submit(t, ana, commands.AnalyticsRequest{DataSourceID: "src-1", SQL: sql}))
			if got := types(evs); got != "AnalyticsJobStarted,AnalyticsJobFailed" {
				t.Fatalf("%s: events = %s", sql, got)
			}
			failed := decodeAs[analytics.AnalyticsJobFailed](t, evs[1])
			if failed.Stage != analytics.StageGuard || failed.Reason == "" || failed.SQL != sql {
				t.Fatalf("%s: failure = %+v", sql, failed)
			}
		}
	})
	t.Run("untranslatable question", func(t *testing.T) {
		evs := b.ended(t, b.submit(t, ana, commands.AnalyticsRequest{DataSourceID: "src-1", Question: "nonsense"}))
		failed := decodeAs[analytics.AnalyticsJobFailed](t, evs[len(evs)-1])
		if failed.Stage != analytics.StageTranslate || !strings.Contains(failed.Reason, "not understood") {
			t.Fatalf("failure = %+v", failed)
		}
	})
	t.Run("grant lost before execution", func(t *testing.T) {
		b.runner.Stop() // nothing runs until the grant is gone
		accepted, err := b.cmds.Analytics.Submit(b.ctx, ana, commands.AnalyticsRequest{DataSourceID: "src-1", SQL: "SELECT region FROM sales"})
		if err != nil {
			t.Fatal(err)
		}
		b.appendSource(t, "src-1", &datasources.DataSourceGrantsSet{})
		b.runner.Start(b.ctx)
		env, _ := b.store.ReadStream(b.ctx, eventstore.MustStreamName(analytics.Category, b.org, accepted.ID), 0, 1)
		b.runner.Enqueue(env[0])
		evs := b.ended(t, accepted.ID)
		failed := decodeAs[analytics.AnalyticsJobFailed](t, evs[len(evs)-1])
		if types(evs) != "AnalyticsJobFailed" || failed.Stage != analytics.StageAuthorize || !strings.Contains(failed.Reason, "no grant") {
			t.Fatalf("events %s, failure = %+v", types(evs), failed)
		}
	})
}

func TestAnalyticsGuardEnforcesAllowedColumns(t *testing.T) {
	t.Parallel()
	b := setupAnalytics(t, time.Second)
	b.sourceAllowing(t, "src-cols", []datasources.AllowedTable{{Name: "sales", Columns: []string{"region"}}})
	for sql, reason := range map[string]string{
		"SELECT amount FROM sales":                 `column "amount" is not exposed by table sales`,
		"SELECT region FROM sales ORDER BY amount": `column "amount" is not exposed by table sales`,
		"SELECT * FROM sales":                      "name the columns: this source exposes only some columns of sales",
	} {
		evs := b.ended(t, b.submit(t, b.owner, commands.AnalyticsRequest{DataSourceID: "src-cols", SQL: sql}))
		failed := decodeAs[analytics.AnalyticsJobFailed](t, evs[len(evs)-1])
		if failed.Stage != analytics.StageGuard || !strings.Contains(failed.Reason, reason) {
			t.Errorf("%s: failure = %+v", sql, failed)
		}
	}
	for _, req := range []commands.AnalyticsRequest{
		{DataSourceID: "src-cols", SQL: "SELECT region, count(*) AS n FROM sales GROUP BY region ORDER BY n"},
	} {
		evs := b.ended(t, b.submit(t, b.owner, req))
		if got := evs[len(evs)-1].Type; got != "AnalyticsJobSucceeded" {
			t.Errorf("%+v: ended with %s: %s", req, got, evs[len(evs)-1].Data)
		}
	}
}

func TestAnalyticsTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	b := setupAnalytics(t, 50*time.Millisecond)
	b.source(t, "src-1")
	b.exec.started = make(chan string, 10)
	b.exec.block = func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped: %w", context.Canceled)
		case <-time.After(100 * time.Millisecond):
			return fmt.Errorf("db: %w", commands.ErrQueryTimeout)
		}
	}
	id := b.submit(t, b.owner, commands.AnalyticsRequest{DataSourceID: "src-1", SQL: "SELECT a.region FROM sales a, sales b"})
	b.started(t, id)
	evs := b.ended(t, id)
	failed := decodeAs[analytics.AnalyticsJobFailed](t, evs[len(evs)-1])
	if failed.Stage != analytics.StageExecute || !strings.Contains(failed.Reason, "ran longer than 50ms") {
		t.Fatalf("failure = %+v", failed)
	}

	b.exec.mu.Lock()
	b.exec.block = func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("stopped: %w", context.Canceled)
	}
	b.exec.mu.Unlock()
	id = b.submit(t, b.owner, commands.AnalyticsRequest{DataSourceID: "src-1", SQL: "SELECT region FROM sales"})
	b.started(t, id)
	// Only the asker or a manager may cancel.
	if _, err := b.cmds.Analytics.Cancel(b.ctx, b.user(t, "ana", access.RoleAnalyst), id); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("cancel by another analyst: %v, want not found", err)
	}
	if _, err := b.cmds.Analytics.Cancel(b.ctx, b.owner, id); err != nil {
		t.Fatal(err)
	}
	evs = b.ended(t, id)
	if got := types(evs); got != "AnalyticsJobStarted,AnalyticsQueryPlanned,AnalyticsJobCancelRequested,AnalyticsJobCancelled" {
		t.Fatalf("events = %s", got)
	}
	if _, err := b.cmds.Analytics.Cancel(b.ctx, b.owner, id); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("cancel of an ended job: %v, want conflict", err)
	}
}

// TestAnalyticsResumesAfterAStop leaves a job running (the runner stops
// under its query) and shows that the sweep at the next start ends it.
func TestAnalyticsResumesAfterAStop(t *testing.T) {
	t.Parallel()
	b := setupAnalytics(t, time.Second)
	b.source(t, "src-1")
	b.exec.started = make(chan string, 10)
	b.exec.block = func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("stopped: %w", context.Canceled)
	}
	id := b.submit(t, b.owner, commands.AnalyticsRequest{DataSourceID: "src-1", SQL: "SELECT region FROM sales"})
	b.started(t, id)
	b.runner.Stop()
	envs, _ := b.store.ReadStream(b.ctx, eventstore.MustStreamName(analytics.Category, b.org, id), 0, 100)
	if got := types(envs[1:]); got != "AnalyticsJobStarted,AnalyticsQueryPlanned" {
		t.Fatalf("after the stop: %s, want the job left running", got)
	}

	// A restarted server: new handlers over the same log, the open jobs
	// rebuilt, the pool started, the sweep.
	b.exec.mu.Lock()
	b.exec.block, b.exec.started = nil, nil
	b.exec.mu.Unlock()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cmds := commands.New(commands.NewPipeline(b.store, events.NewRegistry(), logger), nil, commands.Embedding{Model: "m", Dimensions: 3})
	runner := cmds.Analytics.NewRunner(b.actors, commands.AnalyticsDeps{Executor: b.exec, Translator: fakeTranslator{}, Keys: b.keys})
	open := runner.OpenJobs()
	rebuild(t, b, open)
	runner.Start(b.ctx)
	defer runner.Stop()
	if n, err := runner.Resume(b.ctx); err != nil || n != 1 {
		t.Fatalf("resume: %d jobs, %v", n, err)
	}
	evs := b.ended(t, id)
	if got := types(evs); got != "AnalyticsJobStarted,AnalyticsQueryPlanned,AnalyticsJobStarted,AnalyticsQueryPlanned,AnalyticsResultPage,AnalyticsJobSucceeded" {
		t.Fatalf("events = %s", got)
	}
	if started := decodeAs[analytics.AnalyticsJobStarted](t, evs[2]); started.Attempt != 2 {
		t.Fatalf("second start = %+v", started)
	}
}

func rebuild(t *testing.T, b *analyticsBundle, groups ...*consumer.Group) {
	t.Helper()
	engine := consumer.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), memory.NewCheckpoints(), groups...)
	if _, err := engine.Rebuild(b.ctx, b.store); err != nil {
		t.Fatal(err)
	}
}

// testWriter logs through t.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
