package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadOrg is one organization of the load: its id, its owner's token and
// the knowledge base documents go to.
type loadOrg struct {
	id, token, kb string
}

// ack is one acknowledged (2xx) command.
type ack struct {
	kind        string // "bot" or "document"
	org         int    // index in the load's orgs
	id          string
	name        string // the bot's name or the document's title, as sent
	replica     int    // the replica that acknowledged it
	consistency string
	afterKill   bool
}

func (a ack) path(orgs []loadOrg) string {
	if a.kind == "document" {
		return "/v1/knowledge-bases/" + orgs[a.org].kb + "/documents/" + a.id
	}
	return "/v1/bots/" + a.id
}

// loadRun is concurrent clients creating bots and documents on the
// replicas in turn, recording every acknowledged command, and reading a
// sample back with its consistency token on another replica.
type loadRun struct {
	rs   *replicaSet
	orgs []loadOrg

	done     chan struct{}
	wg       sync.WaitGroup
	failures atomic.Int64 // requests without a 2xx answer

	readers      sync.WaitGroup
	readSlots    chan struct{}
	readsSkipped atomic.Int64

	mu           sync.Mutex
	acks         []ack
	marked       bool
	reads        int // reads with a consistency token on another replica
	readsWaited  int // of which waited over 200 ms for the replica to reach the token
	staleReads   []string
	unreadWrites []string
	malformed    []string // acknowledgements without an id or a token
}

// maxReads bounds the reads with a consistency token running at once.
const maxReads = 8

func (l *loadRun) start(workers int) {
	l.done = make(chan struct{})
	l.readSlots = make(chan struct{}, maxReads)
	for w := range workers {
		l.wg.Add(1)
		go l.work(w)
	}
}

func (l *loadRun) stop() {
	close(l.done)
	l.wg.Wait()
	l.readers.Wait()
}

// document is a text with a few sections, so that ingestion cuts it into
// several chunks.
func document(w, i int) string {
	var b strings.Builder
	for s := range 4 {
		fmt.Fprintf(&b, "# Section %d of note %d-%d\n\n", s, w, i)
		for range 6 {
			fmt.Fprintf(&b, "Replica note %d-%d section %d: travel expenses are reimbursed within %d days of the request. ", w, i, s, 10+s)
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

func (l *loadRun) work(w int) {
	defer l.wg.Done()
	org := w % len(l.orgs)
	o := l.orgs[org]
	for i := 0; ; i++ {
		select {
		case <-l.done:
			return
		default:
		}
		r := l.rs.pick()
		a := ack{org: org, replica: r}
		var path string
		var body any
		if i%4 == 3 {
			a.kind, a.name, path = "document", fmt.Sprintf("Note %d-%d", w, i), "/v1/knowledge-bases/"+o.kb+"/documents"
			body = map[string]string{"title": a.name, "content_type": "text/markdown", "content": document(w, i)}
		} else {
			a.kind, a.name, path = "bot", fmt.Sprintf("bot %d-%d", w, i), "/v1/bots"
			body = map[string]string{"name": a.name, "instructions": "Answer about travel."}
		}
		status, resp, err := post(l.rs.client, l.rs.procs[r].base+path, o.token, body)
		if err != nil || status/100 != 2 {
			l.failures.Add(1)
			if l.rs.alive[r].Load() {
				// A live replica failing a command is worth seeing.
				fmt.Fprintf(os.Stderr, "load: replica %d: POST %s: %d %.200s %v\n", r, path, status, resp, err)
			} else {
				time.Sleep(10 * time.Millisecond) // the dead replica refuses at once
			}
			continue
		}
		var created struct{ ID, Consistency string }
		if json.Unmarshal(resp, &created) != nil || created.ID == "" || created.Consistency == "" {
			l.mu.Lock()
			l.malformed = append(l.malformed, fmt.Sprintf("replica %d acknowledged POST %s with %d but no id or consistency token: %.200s", r, path, status, resp))
			l.mu.Unlock()
			continue
		}
		a.id, a.consistency = created.ID, created.Consistency
		l.mu.Lock()
		a.afterKill = l.marked
		l.acks = append(l.acks, a)
		l.mu.Unlock()
		if i%3 == 0 {
			l.sampleRead(a)
		}
	}
}

// sampleRead reads a back in the background, unless maxReads reads are
// running already: the reads must not slow the load down, which would
// hide the failover behind the clients' own waiting.
func (l *loadRun) sampleRead(a ack) {
	select {
	case l.readSlots <- struct{}{}:
	default:
		l.readsSkipped.Add(1)
		return
	}
	l.readers.Add(1)
	go func() {
		defer func() { <-l.readSlots; l.readers.Done() }()
		l.readBack(a)
	}()
}

// readBack reads an acknowledged command with its consistency token on a
// live replica other than the one that wrote it: (b).
func (l *loadRun) readBack(a ack) {
	for k := 1; k < len(l.rs.procs); k++ {
		r := (a.replica + k) % len(l.rs.procs)
		if !l.rs.alive[r].Load() {
			continue
		}
		start := time.Now()
		status, body := l.rs.readUntilCaughtUp(r, a.path(l.orgs), l.orgs[a.org].token, a.consistency, start.Add(consistentReadBound))
		if status == 0 && !l.rs.alive[r].Load() {
			continue // killed meanwhile: read on another
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.reads++
		if time.Since(start) > 200*time.Millisecond {
			l.readsWaited++
		}
		switch {
		case status == http.StatusOK:
		case status == http.StatusNotFound:
			l.staleReads = append(l.staleReads, fmt.Sprintf("%s %s written on replica %d, read on replica %d with its token: 404 %.200s", a.kind, a.id, a.replica, r, body))
		default:
			l.unreadWrites = append(l.unreadWrites, fmt.Sprintf("%s %s written on replica %d, read on replica %d with its token: %d %.200s", a.kind, a.id, a.replica, r, status, body))
		}
		return
	}
}

// report fails the test for the load's broken promises: acknowledgements
// without a consistency token, and (b).
func (l *loadRun) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.malformed {
		t.Errorf("(b) %s", s)
	}
	t.Logf("(b) %d reads with a write's consistency token on another replica, %d of them waited for it (%d samples skipped: %d reads running)",
		l.reads, l.readsWaited, l.readsSkipped.Load(), maxReads)
	if l.reads == 0 {
		t.Errorf("(b) no read was made with a consistency token")
	}
	for _, s := range l.staleReads {
		t.Errorf("(b) a read did not see its write: %s", s)
	}
	for _, s := range l.unreadWrites {
		t.Errorf("(b) a read with a consistency token failed: %s", s)
	}
}

// counts returns the bots and documents acknowledged so far.
func (l *loadRun) counts() (bots, docs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acks {
		if a.kind == "bot" {
			bots++
		} else {
			docs++
		}
	}
	return bots, docs
}

// mark notes the moment of the kill: commands acknowledged from now on
// count as after it. It returns the number acknowledged before.
func (l *loadRun) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marked = true
	return len(l.acks)
}

// countsSinceMark is counts after the mark, or before it when there is
// none yet.
func (l *loadRun) countsSinceMark() (bots, docs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acks {
		switch {
		case a.afterKill != l.marked:
		case a.kind == "bot":
			bots++
		default:
			docs++
		}
	}
	return bots, docs
}

func (l *loadRun) acknowledged() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acks)
}

// waitCounts waits until bots and docs were acknowledged since the mark
// (since the start before it), or bound passed.
func (l *loadRun) waitCounts(bots, docs int, bound time.Duration) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		b, d := l.countsSinceMark()
		if b >= bots && d >= docs {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
