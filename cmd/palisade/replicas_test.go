package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/palisadehq/palisade/app"
	"github.com/palisadehq/palisade/eventstore/esdb/esdbtest"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/sealing"
)

// The leadership roles the test kills and watches: the relay of the log
// topic and the ingestion process (app's names for them).
const (
	roleLogRelay  = "relay.kafka.log"
	roleIngestion = "process.ingestion"
)

// failoverBound is how long a role may stay without a leader after its
// replica died. The goal is a few seconds; the bound is generous so that
// a loaded CI machine cannot flake the test, and the time measured is
// logged.
const failoverBound = 30 * time.Second

// settleBound bounds all the waits, together, for the replicas to
// converge after the load (ingestion done, read models caught up, the
// relay caught up), and each read with a consistency token.
const settleBound = 90 * time.Second

// consistentReadBound bounds one read with a consistency token: the
// replica may answer 503 (not caught up yet) until then, never a stale
// answer.
const consistentReadBound = 30 * time.Second

// phaseBound bounds each half of the load (before and after the kill);
// a fast run reaches its counts of commands much sooner.
const phaseBound = 20 * time.Second

// TestThreeReplicasSurviveSIGKILLOfTheLeader runs three `palisade serve`
// replicas on the production stack (an in-test EventStoreDB, kfake, the
// real PostgreSQL read models in a schema of the test's own), spreads a
// load of commands over all three (bots, and documents for the ingestion
// process), SIGKILLs the replica that leads the log relay and the
// ingestion process in the middle of it, keeps the load going on the
// survivors, then checks issue 13's promises:
//
//	(a) no acknowledged command is lost: each is readable on every survivor;
//	(b) a read with the consistency token of a write, on another replica,
//	    sees the write (sampled during the load);
//	(c) no event is applied twice to a read model: the audit API and the
//	    audit, narrative, bot, document and chunk tables agree with the log;
//	(d) no job runs twice: one outcome per document version, and a second
//	    attempt of a job only for one the kill interrupted;
//	(e) the relay resumes on another replica: a survivor leads each role,
//	    exactly one at a time, and every event, those after the kill
//	    included, reaches the Kafka log topic.
func TestThreeReplicasSurviveSIGKILLOfTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three server processes")
	}
	began := time.Now()
	ctx := context.Background()
	pgArgs, owner, schema := postgresArgs(t)
	esdb := esdbtest.New(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	master, err := sealing.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}

	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	issuerKeys, issuer := sharedIssuerKeys(t)
	flags := append([]string{
		"--eventstore-url", esdb.URL(), "--kafka-brokers", strings.Join(brokers, ","),
		"--issuer-keys", issuerKeys,
		"--access-log", "off",
		// Quotas are per replica and not what this test is about.
		"--org-requests-per-second", "0", "--org-concurrent-uploads", "0",
	}, pgArgs...)
	// The master key from the environment, as a deployment of several
	// replicas sets it: it wraps the organizations' data keys, which the
	// replicas share in PostgreSQL.
	env := []string{"PALISADE_MASTER_KEY=" + master.Encode()}
	rs := &replicaSet{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for i, dir := range dirs {
		rs.procs = append(rs.procs, launchServer(t, dir, serverOptions{env: env, metrics: true, name: fmt.Sprintf("replica %d", i)}, flags...))
	}
	for _, p := range rs.procs {
		p.waitReady(t)
	}
	rs.alive = make([]atomic.Bool, len(rs.procs))
	for i := range rs.alive {
		rs.alive[i].Store(true)
	}
	t.Logf("three replicas ready after %v", time.Since(began).Round(time.Millisecond))

	mint := func(c identity.Claims) string {
		tok, err := issuer.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	platform := mint(identity.Claims{RegisteredClaims: subjectClaims("ops"), Kind: identity.KindPlatform})
	// Two organizations, so that (c) also sees each org's events apart.
	var orgs []loadOrg
	bootstrapped := time.Now().Add(phaseBound)
	for i, name := range []string{"Northwind", "Contoso"} {
		status, body, err := post(rs.client, rs.procs[i].base+"/v1/orgs", platform, map[string]string{"name": name, "owner_sub": "alice"})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create org %s: %d %s %v", name, status, body, err)
		}
		var org struct{ ID string }
		if err := json.Unmarshal(body, &org); err != nil {
			t.Fatal(err)
		}
		o := loadOrg{id: org.ID, token: mint(identity.Claims{RegisteredClaims: subjectClaims("alice"), Kind: identity.KindUser, Org: org.ID})}
		// The knowledge base is created on another replica than the org,
		// and must be there, by its token, on every replica before the load.
		status, body, err = post(rs.client, rs.procs[i+1].base+"/v1/knowledge-bases", o.token, map[string]string{"name": "Handbook", "description": "policies"})
		if err != nil || status != http.StatusCreated {
			t.Fatalf("create knowledge base: %d %s %v", status, body, err)
		}
		var kb struct{ ID, Consistency string }
		if err := json.Unmarshal(body, &kb); err != nil {
			t.Fatal(err)
		}
		o.kb = kb.ID
		for r := range rs.procs {
			if status, body := rs.readUntilCaughtUp(r, "/v1/knowledge-bases/"+o.kb, o.token, kb.Consistency, bootstrapped); status != http.StatusOK {
				t.Errorf("(b) knowledge base created on replica %d, read on replica %d with its token: %d %s", i+1, r, status, body)
			}
		}
		orgs = append(orgs, o)
	}

	// The log, its content opened with the shared data keys: what (c), (d)
	// and (e) compare the replicas with.
	logStore, err := app.OpenStore(ctx, app.Config{
		DataDir: t.TempDir(), EventStoreURL: esdb.URL(), MasterKey: sealing.NewSecret(master.Encode()),
		PostgresURL: flagValue(pgArgs, "--postgres-url"), PostgresSchema: schema,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("open the log: %v", err)
	}
	t.Cleanup(func() { _ = logStore.Close() })
	topic := watchLogTopic(t, brokers)

	load := &loadRun{rs: rs, orgs: orgs}
	loadStarted := time.Now()
	load.start(24)
	load.waitCounts(100, 15, phaseBound)
	switch bots, docs := load.counts(); {
	case bots+docs == 0:
		load.stop()
		t.Fatalf("no command acknowledged after %v: no load to kill a replica in", phaseBound)
	case docs == 0:
		t.Errorf("no document acknowledged after %v: the ingestion process has no work to fail over", phaseBound)
	}

	// Leadership under load, just before the kill: one leader per role
	// among the three.
	leaders := rs.waitLeaders(t, []string{roleLogRelay, roleIngestion}, failoverBound)
	victim := leaders[roleLogRelay]
	if victim < 0 {
		t.Errorf("no replica reports palisade_leader{role=%q} 1 (leadership is not exported or not elected); killing replica 0 instead", roleLogRelay)
		victim = 0
	} else if leaders[roleIngestion] != victim {
		t.Logf("the ingestion process is led by replica %d, the relay by replica %d: killing the relay's", leaders[roleIngestion], victim)
	}
	headBefore, err := logStore.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ackedBefore := load.mark()
	rs.kill(victim)
	killedAt := time.Now()
	// Events appended from now on were appended by survivors: the first
	// event after this head proves the relay resumed elsewhere.
	headAtKill, err := logStore.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILLed replica %d (leaders: %v) after %d acknowledged commands in %v, log head %d→%d",
		victim, leaders, ackedBefore, killedAt.Sub(loadStarted).Round(time.Millisecond), headBefore, headAtKill)

	// The roles fail over while the load goes on.
	failover := make(chan map[string]failoverTime, 1)
	go func() { failover <- rs.watchFailover([]string{roleLogRelay, roleIngestion}, killedAt, failoverBound) }()
	load.waitCounts(80, 10, phaseBound)
	load.stop()
	loadStopped := time.Now()
	tookOver := <-failover
	for _, role := range []string{roleLogRelay, roleIngestion} {
		if d, ok := tookOver[role]; !ok {
			t.Errorf("(e) no surviving replica reports palisade_leader{role=%q} 1 within %v of the kill", role, failoverBound)
		} else {
			t.Logf("(e) %s led by a survivor %v after the kill", role, d)
		}
	}
	acks := load.acknowledged()
	botsAfter, docsAfter := load.countsSinceMark()
	t.Logf("%d commands acknowledged (%d before the kill; %d bots and %d documents in the %v after it), %d requests not acknowledged",
		len(acks), ackedBefore, botsAfter, docsAfter, loadStopped.Sub(killedAt).Round(time.Millisecond), load.failures.Load())
	if botsAfter+docsAfter == 0 {
		t.Errorf("(a) the survivors acknowledged no command after the kill")
	}
	load.report(t)

	survivors := rs.survivors()
	settled := time.Now().Add(settleBound)
	checkAcknowledgedReadable(t, rs, survivors, orgs, acks, settled)
	checkReadModelsMatchLog(t, ctx, rs, survivors, orgs, logStore, settled)
	logs := checkPostgresMatchesLog(t, ctx, owner, schema, orgs, logStore, settled)
	checkNoJobRanTwice(t, orgs, logs, acks, killedAt)
	checkLogTopic(t, topic, logs, headAtKill, killedAt, settled)
	rs.checkOneLeaderEach(t, victim)
	checkOfflineReplayOpensContent(t, env, append([]string{"--eventstore-url", esdb.URL()}, pgArgs...), orgs, acks)
	t.Logf("took %v, of which %v checking after the load", time.Since(began).Round(time.Millisecond), time.Since(loadStopped).Round(time.Millisecond))
}

// sharedIssuerKeys writes a key set file of the built-in issuer that
// every replica is given (--issuer-keys), so that a token, and a
// consistency token, of one replica is good on every other; it returns the
// file and an issuer of the same keys, for the test to mint tokens with.
func sharedIssuerKeys(t *testing.T) (string, *identity.Issuer) {
	t.Helper()
	key, err := identity.GenerateIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "issuer-keys.json")
	if err := identity.WriteIssuerKeys(path, []identity.IssuerKey{key}, true); err != nil {
		t.Fatal(err)
	}
	issuer, err := identity.OpenIssuerKeys(path, "", app.DefaultIssuer, app.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	return path, issuer
}

// flagValue returns the value that follows name in args, or "".
func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// replicaSet is the replicas of one test and a client for them.
type replicaSet struct {
	procs  []*serverProcess
	alive  []atomic.Bool
	client *http.Client
	next   atomic.Uint64
}

// pick returns the next replica in round-robin order, dead ones included:
// a load balancer takes a while to notice a replica died.
func (rs *replicaSet) pick() int { return int(rs.next.Add(1) % uint64(len(rs.procs))) }

func (rs *replicaSet) kill(i int) {
	rs.alive[i].Store(false)
	rs.procs[i].kill()
}

func (rs *replicaSet) survivors() []int {
	var out []int
	for i := range rs.procs {
		if rs.alive[i].Load() {
			out = append(out, i)
		}
	}
	return out
}

// get sends a GET to replica i.
func (rs *replicaSet) get(i int, path, token string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, rs.procs[i].base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := rs.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// readUntilCaughtUp reads path on replica i with a consistency token,
// asking again while the replica answers 503 (its read models have not
// reached the token yet: a "not yet", not a stale answer) until deadline.
// It returns the last status (0 when the replica could not be reached).
func (rs *replicaSet) readUntilCaughtUp(i int, path, token, consistency string, deadline time.Time) (int, []byte) {
	if consistency != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "consistency=" + url.QueryEscape(consistency)
	}
	for {
		status, body, err := rs.get(i, path, token)
		if err != nil {
			status, body = 0, []byte(err.Error())
		}
		if (status != http.StatusServiceUnavailable && status != 0) || time.Now().After(deadline) || !rs.alive[i].Load() {
			return status, body
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderGauges scrapes replica i's /metrics (its own address) and returns
// palisade_leader's value per role.
func (rs *replicaSet) leaderGauges(i int) (map[string]float64, error) {
	resp, err := rs.client.Get(rs.procs[i].metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseLeaderGauges(resp.Body)
}

// parseLeaderGauges reads the palisade_leader samples of a Prometheus text
// exposition: palisade_leader{role="…"} 1.
func parseLeaderGauges(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "palisade_leader{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("metrics: cannot read %q", line)
		}
		role := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(l, `role="`); ok {
				role = strings.TrimSuffix(v, `"`)
			}
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil || role == "" {
			return nil, fmt.Errorf("metrics: cannot read %q", line)
		}
		out[role] = v
	}
	return out, sc.Err()
}

// leadersOf returns, per role, the live replicas reporting themselves its
// leader, and every role any replica reports.
func (rs *replicaSet) leadersOf() (map[string][]int, error) {
	out := map[string][]int{}
	for _, i := range rs.survivors() {
		gauges, err := rs.leaderGauges(i)
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		for role, v := range gauges {
			if v == 1 {
				out[role] = append(out[role], i)
			} else if _, ok := out[role]; !ok {
				out[role] = nil
			}
		}
	}
	return out, nil
}

// waitLeaders waits until each role has exactly one leader among the live
// replicas and returns it (-1 for a role without one at the deadline). Two
// leaders of a role at once is an error.
func (rs *replicaSet) waitLeaders(t *testing.T, roles []string, bound time.Duration) map[string]int {
	t.Helper()
	out := map[string]int{}
	var last map[string][]int
	deadline := time.Now().Add(bound)
	for {
		leaders, err := rs.leadersOf()
		if err != nil {
			t.Fatalf("scrape leadership: %v", err)
		}
		last = leaders
		done := true
		for _, role := range roles {
			if len(leaders[role]) != 1 {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, role := range roles {
		switch l := last[role]; len(l) {
		case 1:
			out[role] = l[0]
		case 0:
			out[role] = -1
		default:
			t.Errorf("replicas %v all report palisade_leader{role=%q} 1: a role must run on exactly one replica", l, role)
			out[role] = l[0]
		}
	}
	return out
}

// failoverTime is when a survivor was first seen leading a role, after
// the kill: by the end of the scrape that saw it. A scrape of a busy
// replica takes a while (scrape says how long that one took), so this is
// an upper bound; the first event on the log topic after the kill
// measures the relay's failover more closely.
type failoverTime struct{ seen, scrape time.Duration }

func (f failoverTime) String() string {
	return fmt.Sprintf("by %v (a scrape of the survivors took %v)", f.seen.Round(time.Millisecond), f.scrape.Round(time.Millisecond))
}

// watchFailover scrapes the survivors until each role has a leader among
// them, and returns when each was seen (roles without one by bound are
// missing).
func (rs *replicaSet) watchFailover(roles []string, since time.Time, bound time.Duration) map[string]failoverTime {
	out := map[string]failoverTime{}
	for time.Since(since) < bound && len(out) < len(roles) {
		from := time.Since(since)
		leaders, err := rs.leadersOf()
		if err == nil {
			for _, role := range roles {
				if _, ok := out[role]; !ok && len(leaders[role]) > 0 {
					out[role] = failoverTime{time.Since(since), time.Since(since) - from}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

// checkOneLeaderEach: after the failover, every role any survivor exports
// is led by exactly one survivor.
func (rs *replicaSet) checkOneLeaderEach(t *testing.T, dead int) {
	t.Helper()
	var last map[string][]int
	deadline := time.Now().Add(failoverBound)
	for {
		leaders, err := rs.leadersOf()
		if err != nil {
			t.Errorf("(e) scrape leadership: %v", err)
			return
		}
		last = leaders
		ok := len(leaders) > 0
		for _, l := range leaders {
			ok = ok && len(l) == 1
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(last) == 0 {
		t.Errorf("(e) no survivor exports palisade_leader")
	}
	roles := make([]string, 0, len(last))
	for role := range last {
		roles = append(roles, role)
	}
	slices.Sort(roles)
	for _, role := range roles {
		if l := last[role]; len(l) != 1 {
			t.Errorf("(e) role %s is led by survivors %v after replica %d died, want exactly one", role, l, dead)
		}
	}
	t.Logf("(e) leaders after the failover: %v", last)
}

// checkOfflineReplayOpensContent: `palisade audit replay --content`, run as
// an operator would on the replicated stack (the log's URL, the read
// models' PostgreSQL, the shared master key in the environment), opens
// the content the replicas sealed: an acknowledged document's title, a
// sealed field, is in its output.
func checkOfflineReplayOpensContent(t *testing.T, env, stack []string, orgs []loadOrg, acks []ack) {
	t.Helper()
	var title string
	org := -1
	for _, a := range acks {
		if a.kind == "document" {
			title, org = a.name, a.org
			break
		}
	}
	if org < 0 {
		t.Error("offline replay: no acknowledged document to look for")
		return
	}
	args := []string{"audit", "replay", "--data-dir", t.TempDir(), "--org", orgs[org].id, "--content", "--log-level", "error"}
	argv, err := json.Marshal(append(args, flagsOnly(stack)...))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), childEnv+"="+string(argv))
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("offline replay on the replicated stack: %v", err)
		return
	}
	if !strings.Contains(string(out), title) {
		t.Errorf("offline replay on the replicated stack does not show the document title %q: its content is not opened with the shared keys", title)
	}
}

// flagsOnly keeps the flags audit replay takes from the serve flags of
// the stack (--eventstore-url, --postgres-url, --postgres-schema).
func flagsOnly(stack []string) []string {
	var out []string
	for i := 0; i+1 < len(stack); i++ {
		switch stack[i] {
		case "--eventstore-url", "--postgres-url", "--postgres-schema":
			out = append(out, stack[i], stack[i+1])
			i++
		}
	}
	return out
}
