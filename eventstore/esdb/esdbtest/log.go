package esdbtest

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// record is one event in the log, as KurrentDB keeps it: a prepare that
// commits itself, so its commit and prepare positions are both its log
// position.
type record struct {
	id       uuid.UUID
	stream   string
	revision uint64
	position uint64
	typ      string
	json     bool
	created  int64 // .NET ticks (100 ns) since the Unix epoch
	data     []byte
	meta     []byte
}

// proposed is an event an append asks to write.
type proposed struct {
	id   uuid.UUID
	typ  string
	json bool
	data []byte
	meta []byte
}

// expectation is an append's expected stream revision, as KurrentDB reads
// it: a revision, or one of the special values.
type expectation struct {
	kind     expectKind
	revision int64 // for expectRevision; -1 stands for "no stream"
}

type expectKind int

const (
	expectAny expectKind = iota
	expectRevision
	expectStreamExists
)

// appendOutcome is what an append did.
type appendOutcome struct {
	// wrongVersion: the stream is not where the append expected it;
	// current is its last revision, -1 if it has none.
	wrongVersion bool
	current      int64
	// invalidTransaction: the append repeats the ids of events already
	// in the stream but not all of them (KurrentDB's "corrupted
	// idempotency"), so it is neither new nor a retry.
	invalidTransaction bool
	// last is the last event the append wrote, or, for a retry KurrentDB
	// recognised by its event ids, the last event the original wrote.
	last *record
	// idempotent: nothing was written, the append was a retry.
	idempotent bool
}

// eventLog is the whole database: every record in log order, an index per
// stream, and the index by event id that KurrentDB uses to recognise a
// retried append (a bounded cache there, unbounded here).
type eventLog struct {
	mu      sync.Mutex
	records []*record
	streams map[string][]*record
	byID    map[uuid.UUID]*record
	next    uint64        // log position of the next record
	changed chan struct{} // closed and replaced after every write
}

// firstPosition is where the first record goes: KurrentDB's log starts
// with records of its own (an epoch record) before any event.
const firstPosition = 512

func newEventLog() *eventLog {
	return &eventLog{
		streams: map[string][]*record{},
		byID:    map[uuid.UUID]*record{},
		next:    firstPosition,
		changed: make(chan struct{}),
	}
}

// recordSize approximates the bytes a record takes in a KurrentDB chunk:
// positions are byte offsets in the log, so they grow by the size of each
// record and are far from consecutive.
func recordSize(stream, typ string, data, meta []byte) uint64 {
	const header = 97 // flags, version, ids, timestamps, lengths
	return uint64(header + len(stream) + len(typ) + len(data) + len(meta) + 8)
}

// append writes events to stream if expected allows, following KurrentDB's
// commit check (IndexWriter.CheckCommit): an append whose event ids match
// the events already at the expected place is a retry, answered with
// success and without writing.
func (l *eventLog) append(stream string, expected expectation, events []proposed, now time.Time) appendOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.streams[stream]
	current := int64(len(recs)) - 1
	wrong := appendOutcome{wrongVersion: true, current: current}

	switch expected.kind {
	case expectAny, expectStreamExists:
		if expected.kind == expectStreamExists && current < 0 {
			return wrong
		}
		if current >= 0 && len(events) > 0 {
			var last *record
			for i, e := range events {
				r, ok := l.byID[e.id]
				if !ok || r.stream != stream {
					if i == 0 {
						break // a new append
					}
					return appendOutcome{invalidTransaction: true, current: current}
				}
				last = r
			}
			if last != nil {
				return appendOutcome{current: current, last: last, idempotent: true}
			}
		}
	case expectRevision:
		want := expected.revision
		switch {
		case current < 0 && want != -1:
			return wrong
		case current < 0:
		case want < current:
			if len(events) == 0 {
				return wrong
			}
			n := want
			for i, e := range events {
				n++
				if n <= current && recs[n].id == e.id {
					continue
				}
				if i == 0 {
					return wrong
				}
				return appendOutcome{invalidTransaction: true, current: current}
			}
			return appendOutcome{current: current, last: recs[n], idempotent: true}
		case want > current:
			return wrong
		}
	}

	if len(events) == 0 {
		return appendOutcome{current: current}
	}
	ticks := now.UnixNano() / 100
	var last *record
	for _, e := range events {
		r := &record{
			id:       e.id,
			stream:   stream,
			revision: uint64(len(recs)),
			position: l.next,
			typ:      e.typ,
			json:     e.json,
			created:  ticks,
			data:     e.data,
			meta:     e.meta,
		}
		l.next += recordSize(stream, e.typ, e.data, e.meta)
		recs = append(recs, r)
		l.records = append(l.records, r)
		l.byID[e.id] = r
		last = r
	}
	l.streams[stream] = recs
	close(l.changed)
	l.changed = make(chan struct{})
	return appendOutcome{current: int64(last.revision), last: last}
}

// checkPosition refuses a $all position that falls inside a record or
// whose commit and prepare parts differ: KurrentDB reads the log at the
// byte offset it is given, and an offset that is not where a record starts
// (below the end of the log) is not a place it can read from. It returns
// the index of the first record at or after the position.
func (l *eventLog) checkPosition(commit, prepare uint64) (int, error) {
	if commit != prepare {
		return 0, fmt.Errorf("position %d/%d: commit and prepare differ, but every record here commits itself", commit, prepare)
	}
	i := l.search(commit)
	if commit == 0 || commit >= l.next || (i < len(l.records) && l.records[i].position == commit) {
		return i, nil
	}
	return 0, fmt.Errorf("position %d is inside a record", commit)
}

// search returns the index of the first record at or after position.
func (l *eventLog) search(position uint64) int {
	lo, hi := 0, len(l.records)
	for lo < hi {
		mid := (lo + hi) / 2
		if l.records[mid].position < position {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// after returns up to max records after index from (from itself
// included), and the channel that is closed at the next write, taken
// together so that a caller who finds nothing cannot miss a later write.
func (l *eventLog) after(from, max int) ([]*record, int, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := min(len(l.records), from+max)
	if from >= end {
		return nil, from, l.changed
	}
	return l.records[from:end:end], end, l.changed
}

// filter is a server-side $all filter: on the stream name or on the event
// type, by prefixes or by a regular expression.
type filter struct {
	onType   bool
	prefixes []string
	regex    *regexp.Regexp
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	subject := r.stream
	if f.onType {
		subject = r.typ
	}
	if f.regex != nil {
		return f.regex.MatchString(subject)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}
