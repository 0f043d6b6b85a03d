package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
)

// checkAcknowledgedReadable is (a): every acknowledged bot and document
// is readable on every survivor, with the name or title it was sent with,
// and every document was ingested. Reads are repeated until deadline, for
// the survivors to catch up.
func checkAcknowledgedReadable(t *testing.T, rs *replicaSet, survivors []int, orgs []loadOrg, acks []ack, deadline time.Time) {
	t.Helper()
	type check struct {
		a       ack
		replica int
	}
	var pending []check
	for _, a := range acks {
		for _, r := range survivors {
			pending = append(pending, check{a, r})
		}
	}
	last := map[check]string{}
	for len(pending) > 0 && time.Now().Before(deadline) {
		var mu sync.Mutex
		var next []check
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, c := range pending {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				status, body, err := rs.get(c.replica, c.a.path(orgs), orgs[c.a.org].token)
				ok := err == nil && status == http.StatusOK
				if ok {
					// The content too: a replica without the org's data
					// key would read it as shredded (null).
					var got struct {
						Name, Title, State string
						Chunks             int
					}
					ok = json.Unmarshal(body, &got) == nil
					if c.a.kind == "document" {
						ok = ok && got.Title == c.a.name && got.State == "ready" && got.Chunks > 0
					} else {
						ok = ok && got.Name == c.a.name
					}
				}
				if !ok {
					mu.Lock()
					next = append(next, c)
					last[c] = fmt.Sprintf("%d %.200s %v", status, body, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		pending = next
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i, c := range pending {
		if i == 20 {
			t.Errorf("(a) … and %d more", len(pending)-i)
			break
		}
		t.Errorf("(a) acknowledged %s %s (replica %d, after the kill: %v) not readable and settled on replica %d: %s",
			c.a.kind, c.a.id, c.a.replica, c.a.afterKill, c.replica, last[c])
	}
	if len(pending) == 0 {
		t.Logf("(a) all %d acknowledged commands readable on survivors %v, every document ingested", len(acks), survivors)
	}
}

// readLog returns one organization's events in the log, in order.
func readLog(ctx context.Context, store eventstore.Store, org string) ([]eventstore.Envelope, error) {
	var out []eventstore.Envelope
	var after uint64
	for {
		batch, err := store.ReadAll(ctx, after, eventstore.Filter{OrgID: org}, 1000)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return out, nil
		}
		out = append(out, batch...)
		after = batch[len(batch)-1].Position
	}
}

// auditItem is an event as the audit API lists it.
type auditItem struct {
	Sequence uint64 `json:"sequence"`
	ID       string `json:"id"`
	Type     string `json:"type"`
}

func readAuditAPI(rs *replicaSet, r int, token string) ([]auditItem, error) {
	var out []auditItem
	after := ""
	for {
		path := "/v1/audit/events?limit=500"
		if after != "" {
			path += "&after=" + after
		}
		status, body, err := rs.get(r, path, token)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %.200s", path, status, body)
		}
		var page struct {
			Items     []auditItem `json:"items"`
			NextAfter string      `json:"next_after"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextAfter == "" {
			return out, nil
		}
		after = page.NextAfter
	}
}

// auditDiff compares the audit API's events with the log's: ids listed
// twice, missing, or not in the log, out of the log's order, and
// sequences that are not 1…n.
func auditDiff(items []auditItem, log []eventstore.Envelope) []string {
	var out []string
	for i := range min(len(items), len(log)) {
		if items[i].ID != log[i].ID.String() {
			out = append(out, fmt.Sprintf("sequence %d is event %s (%s), the log's event there is %s (%s)",
				items[i].Sequence, items[i].ID, items[i].Type, log[i].ID, log[i].Type))
			break // one is enough: the rest is shifted
		}
	}
	inLog := map[string]bool{}
	for _, e := range log {
		inLog[e.ID.String()] = true
	}
	seen := map[string]int{}
	for i, it := range items {
		seen[it.ID]++
		if seen[it.ID] == 2 {
			out = append(out, fmt.Sprintf("event %s (%s) listed twice: applied twice", it.ID, it.Type))
		}
		if !inLog[it.ID] {
			out = append(out, fmt.Sprintf("event %s (%s) is not in the log", it.ID, it.Type))
		}
		if it.Sequence != uint64(i+1) {
			out = append(out, fmt.Sprintf("sequence %d at place %d: the numbers are not 1…n", it.Sequence, i+1))
		}
	}
	missing := 0
	for id := range inLog {
		if seen[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		out = append(out, fmt.Sprintf("%d of the log's %d events not applied (audit lists %d)", missing, len(log), len(items)))
	}
	return out
}

// checkReadModelsMatchLog is the audit half of (c): once settled, each
// survivor's audit API lists each of the org's events exactly once, in
// the log's order, numbered 1…n.
func checkReadModelsMatchLog(t *testing.T, ctx context.Context, rs *replicaSet, survivors []int, orgs []loadOrg, store eventstore.Store, deadline time.Time) {
	t.Helper()
	for i, o := range orgs {
		for _, r := range survivors {
			var diff []string
			var log []eventstore.Envelope
			for {
				var err error
				if log, err = readLog(ctx, store, o.id); err != nil {
					t.Fatalf("read the log: %v", err)
				}
				items, err := readAuditAPI(rs, r, o.token)
				if err != nil {
					diff = []string{err.Error()}
				} else {
					diff = auditDiff(items, log)
				}
				if len(diff) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			for k, d := range diff {
				if k == 20 {
					t.Errorf("(c) … and %d more", len(diff)-k)
					break
				}
				t.Errorf("(c) org %d, audit API of replica %d: %s", i, r, d)
			}
			if len(diff) == 0 {
				t.Logf("(c) org %d: audit API of replica %d lists each of the log's %d events once", i, r, len(log))
			}
		}
	}
}

// docOutcome is what the log says of one document.
type docOutcome struct {
	version  int         // current version
	outcomes map[int]int // version → DocumentChunked + DocumentIngestionFailed events
	chunks   map[int]int // version → chunks of its DocumentChunked
}

func documentsInLog(log []eventstore.Envelope) (map[string]*docOutcome, error) {
	docs := map[string]*docOutcome{}
	for _, e := range log {
		if e.Stream.Category != "doc" {
			continue
		}
		d := docs[e.Stream.EntityID]
		if d == nil {
			d = &docOutcome{outcomes: map[int]int{}, chunks: map[int]int{}}
			docs[e.Stream.EntityID] = d
		}
		var v struct {
			Version int
			Chunks  []json.RawMessage
		}
		if err := json.Unmarshal(e.Data, &v); err != nil {
			return nil, fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
		}
		switch e.Type {
		case "DocumentAdded", "DocumentReplaced":
			d.version = v.Version
		case "DocumentChunked":
			d.outcomes[v.Version]++
			d.chunks[v.Version] = len(v.Chunks)
		case "DocumentIngestionFailed":
			d.outcomes[v.Version]++
		}
	}
	return docs, nil
}

// checkNoJobRanTwice is (d): each acknowledged document's version has
// exactly one ingestion outcome in the log, and each job was started once,
// or twice when the kill interrupted its first attempt (started before the
// kill, started again after it).
func checkNoJobRanTwice(t *testing.T, orgs []loadOrg, logs [][]eventstore.Envelope, acks []ack, killedAt time.Time) {
	t.Helper()
	resumed, jobsSeen := 0, 0
	for i := range orgs {
		docs, err := documentsInLog(logs[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acks {
			if a.org != i || a.kind != "document" {
				continue
			}
			d := docs[a.id]
			if d == nil {
				t.Errorf("(d) acknowledged document %s has no event in the log", a.id)
				continue
			}
			if n := d.outcomes[d.version]; n != 1 {
				t.Errorf("(d) document %s version %d has %d ingestion outcomes in the log, want exactly 1", a.id, d.version, n)
			}
		}
		starts := map[string][]time.Time{}
		for _, e := range logs[i] {
			if e.Stream.Category == "job" && e.Type == "JobStarted" {
				starts[e.Stream.EntityID] = append(starts[e.Stream.EntityID], e.OccurredAt)
			}
		}
		for job, at := range starts {
			jobsSeen++
			switch {
			case len(at) == 1:
			case len(at) == 2 && at[0].Before(killedAt) && !at[1].Before(killedAt):
				resumed++
			default:
				t.Errorf("(d) job %s was started %d times (at %v; the kill at %v): run twice", job, len(at), at, killedAt)
			}
		}
	}
	t.Logf("(d) %d jobs in the log, %d of them resumed after the kill interrupted them", jobsSeen, resumed)
}

// checkPostgresMatchesLog is the table half of (c), read as the owner role
// straight from the test's schema: each org's audit rows, narratives,
// bots, documents and chunks are what applying each event of the log once
// gives. It compares until they agree or deadline (the log may still be
// moving), and returns each org's log as last read.
func checkPostgresMatchesLog(t *testing.T, ctx context.Context, owner, schema string, orgs []loadOrg, store eventstore.Store, deadline time.Time) [][]eventstore.Envelope {
	t.Helper()
	conn, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatalf("(c) connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	logs := make([][]eventstore.Envelope, len(orgs))
	for i, o := range orgs {
		var diff []string
		for {
			if logs[i], err = readLog(ctx, store, o.id); err != nil {
				t.Fatalf("read the log: %v", err)
			}
			if diff, err = postgresDiff(ctx, conn, schema, o.id, logs[i]); err != nil {
				t.Fatalf("(c) %v", err)
			}
			if len(diff) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		for k, d := range diff {
			if k == 20 {
				t.Errorf("(c) … and %d more", len(diff)-k)
				break
			}
			t.Errorf("(c) org %d in PostgreSQL: %s", i, d)
		}
		if len(diff) == 0 {
			t.Logf("(c) org %d: audit rows, narratives, bots, documents and chunks in PostgreSQL agree with the log's %d events", i, len(logs[i]))
		}
	}
	return logs
}

// postgresDiff says where org's read models in PostgreSQL differ from
// applying each event of log once.
func postgresDiff(ctx context.Context, conn *pgx.Conn, schema, org string, log []eventstore.Envelope) ([]string, error) {
	var diff []string
	docs, err := documentsInLog(log)
	if err != nil {
		return nil, err
	}
	created, steps := 0, map[string]int{}
	for _, e := range log {
		if e.Type == "BotCreated" {
			created++
		}
		if e.CorrelationID != "" {
			steps[e.CorrelationID]++
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Row-level security is forced on the owner too: read as the org.
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true), set_config('palisade.org_id', $2, true)`, schema+",public", org); err != nil {
		return nil, err
	}
	var rows, ids, positions, maxSeq int
	if err := tx.QueryRow(ctx, `SELECT count(*), count(DISTINCT id), count(DISTINCT position), coalesce(max(sequence), 0) FROM audit_events`).
		Scan(&rows, &ids, &positions, &maxSeq); err != nil {
		return nil, fmt.Errorf("audit_events: %w", err)
	}
	if rows != len(log) || ids != len(log) || positions != len(log) || maxSeq != len(log) {
		diff = append(diff, fmt.Sprintf("audit_events has %d rows, %d ids, %d positions, sequences up to %d; the log has %d events",
			rows, ids, positions, maxSeq, len(log)))
	}

	narratives := map[string]int{}
	nrows, err := tx.Query(ctx, `SELECT correlation_id, steps FROM audit_narratives`)
	if err != nil {
		return nil, fmt.Errorf("audit_narratives: %w", err)
	}
	for nrows.Next() {
		var c string
		var n int
		if err := nrows.Scan(&c, &n); err != nil {
			return nil, err
		}
		narratives[c] = n
	}
	if err := nrows.Err(); err != nil {
		return nil, err
	}
	for c, n := range steps {
		if narratives[c] != n {
			diff = append(diff, fmt.Sprintf("narrative %s counts %d steps, the log has %d events of it", c, narratives[c], n))
		}
	}
	if len(narratives) != len(steps) {
		diff = append(diff, fmt.Sprintf("%d narratives, the log has %d correlations", len(narratives), len(steps)))
	}

	var bots int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM bots`).Scan(&bots); err != nil {
		return nil, fmt.Errorf("bots: %w", err)
	}
	if bots != created {
		diff = append(diff, fmt.Sprintf("%d bot rows, the log created %d", bots, created))
	}

	drows, err := tx.Query(ctx, `SELECT d.id, d.version, d.state, d.chunks,
		(SELECT count(*) FROM knowledge_chunks c WHERE c.org_id = d.org_id AND c.document_id = d.id)
		FROM documents d`)
	if err != nil {
		return nil, fmt.Errorf("documents: %w", err)
	}
	seen := 0
	for drows.Next() {
		var id, state string
		var version, chunks, chunkRows int
		if err := drows.Scan(&id, &version, &state, &chunks, &chunkRows); err != nil {
			return nil, err
		}
		seen++
		d := docs[id]
		switch {
		case d == nil:
			diff = append(diff, fmt.Sprintf("document row %s has no event in the log", id))
		case version != d.version || chunks != d.chunks[d.version] || chunkRows != chunks:
			diff = append(diff, fmt.Sprintf("document %s row: version %d, %d chunks, %d chunk rows (%s); the log: version %d, %d chunks",
				id, version, chunks, chunkRows, state, d.version, d.chunks[d.version]))
		}
	}
	if err := drows.Err(); err != nil {
		return nil, err
	}
	if seen != len(docs) {
		diff = append(diff, fmt.Sprintf("%d document rows, the log has %d documents", seen, len(docs)))
	}
	return diff, nil
}

// logTopic records the events on the Kafka log topic: when each first
// arrived and how often.
type logTopic struct {
	mu    sync.Mutex
	first map[string]time.Time
	count map[string]int
}

// watchLogTopic consumes the log topic from its start until the test ends.
func watchLogTopic(t *testing.T, brokers []string) *logTopic {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafka.LogTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	lt := &logTopic{first: map[string]time.Time{}, count: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fetches := client.PollFetches(ctx)
			now := time.Now()
			lt.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == "_watermill_message_uuid" {
						id := string(h.Value)
						if lt.count[id] == 0 {
							lt.first[id] = now
						}
						lt.count[id]++
					}
				}
			})
			lt.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		client.Close()
	})
	return lt
}

// checkLogTopic is the Kafka half of (e): every event of the log reaches
// the log topic, those appended after the kill too, which only a relay on
// a survivor can have published. It logs when the first of them arrived.
func checkLogTopic(t *testing.T, topic *logTopic, logs [][]eventstore.Envelope, headAtKill uint64, killedAt, deadline time.Time) {
	t.Helper()
	var all []eventstore.Envelope
	for _, l := range logs {
		all = append(all, l...)
	}
	var missing []eventstore.Envelope
	for {
		missing = missing[:0]
		topic.mu.Lock()
		for _, e := range all {
			if topic.count[e.ID.String()] == 0 {
				missing = append(missing, e)
			}
		}
		topic.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	topic.mu.Lock()
	defer topic.mu.Unlock()
	after, dup := 0, 0
	var resumed time.Time
	for _, e := range all {
		id := e.ID.String()
		dup += max(0, topic.count[id]-1)
		if e.Position > headAtKill {
			after++
			if at, ok := topic.first[id]; ok && (resumed.IsZero() || at.Before(resumed)) {
				resumed = at
			}
		}
	}
	if after == 0 {
		t.Errorf("(e) no event was appended after the kill: the relay's failover was not exercised")
	}
	for k, e := range missing {
		if k == 20 {
			t.Errorf("(e) … and %d more", len(missing)-k)
			break
		}
		t.Errorf("(e) event %s (%s at %d, after the kill: %v) never reached the log topic %s", e.ID, e.Type, e.Position, e.Position > headAtKill, kafka.LogTopic)
	}
	if !resumed.IsZero() {
		took := resumed.Sub(killedAt)
		t.Logf("(e) the first event appended after the kill reached %s %v after the kill", kafka.LogTopic, took.Round(time.Millisecond))
		if took > failoverBound {
			t.Errorf("(e) the relay published nothing appended after the kill for %v, more than %v", took.Round(time.Millisecond), failoverBound)
		}
	}
	t.Logf("(e) %d events on %s (%d after the kill), %d records delivered more than once (the relay is at least once)", len(all)-len(missing), kafka.LogTopic, after, dup)
}
