package chain

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/palisadehq/palisade/eventstore"
)

// Kinds of finding.
const (
	// KindAltered: an event's recomputed hash differs from the recorded one.
	KindAltered = "altered"
	// KindRemoved: a recorded event is missing from the log.
	KindRemoved = "removed"
	// KindInserted: the log holds an event the record never saw (or saw
	// once and finds again).
	KindInserted = "inserted"
	// KindReordered: recorded events appear in another order.
	KindReordered = "reordered"
	// KindBadSignature: a checkpoint's signature does not verify.
	KindBadSignature = "bad_signature"
	// KindRecordRewritten: the record does not reach a signed head (or
	// skips a seq): it was edited along with, or instead of, the log.
	KindRecordRewritten = "record_rewritten"
)

// Finding is one discrepancy. Seq is the organization's sequence of the
// event named; CheckpointSeq the first signed checkpoint that covers it
// (0 when none does yet).
type Finding struct {
	Kind          string `json:"kind"`
	EventID       string `json:"event_id,omitempty"`
	Seq           uint64 `json:"seq"`
	Type          string `json:"type,omitempty"`
	Stream        string `json:"stream,omitempty"`
	CheckpointSeq uint64 `json:"checkpoint_seq"`
	Detail        string `json:"detail"`
}

// Report is the verification of one organization's chain.
type Report struct {
	OrgID string `json:"org"`
	// VerifiedThroughSeq: the events 1 … VerifiedThroughSeq match the
	// record.
	VerifiedThroughSeq uint64 `json:"verified_through_seq"`
	// Events is how many of the organization's events were read from the
	// log, Checkpoints how many checkpoints were checked.
	Events      uint64 `json:"events"`
	Checkpoints int    `json:"checkpoints"`
	// Pending counts events after the record's position: not chained yet,
	// so neither verified nor findings.
	Pending  uint64    `json:"pending"`
	OK       bool      `json:"ok"`
	Findings []Finding `json:"findings"`
}

// walk compares one organization's log with its record, event by event.
type walk struct {
	report      Report
	entries     []Entry
	index       map[uuid.UUID]int // built on the first mismatch
	checkpoints []Checkpoint      // those whose signature verifies
	k           int               // entries matched so far
	prev        Digest
	stopped     bool
	// A recorded event was not where it should be: removed, unless it
	// turns up later in the log (reordered).
	waitFor        uuid.UUID
	candidate      *Finding
	reordered      *Finding
	pendingRemoval *Finding
	// truncated: the record was cut at a gap; the walk stops there.
	truncated bool
}

// Verify recomputes the chains of org ("" for every organization) from
// log and compares them with record and its checkpoints, whose signatures
// it checks with keys. Reports are sorted by organization.
//
// Reading the log (decoding the store's rows) costs more than checking
// it, so the log is read in position ranges by one goroutine per CPU
// while the record is still being read (see logReader); this goroutine
// takes the ranges in order and walks each organization's events.
func Verify(ctx context.Context, log Log, record RecordReader, keys PublicKeys, org string) ([]Report, error) {
	return verify(ctx, log, record, keys, org, rangeEvents)
}

// verify is Verify with ranges of about perRange events (tests make them
// small).
func verify(ctx context.Context, log Log, record RecordReader, keys PublicKeys, org string, perRange uint64) ([]Report, error) {
	ctx, cancel := context.WithCancel(ctx)
	var reader *logReader
	defer func() {
		cancel()
		if reader != nil {
			reader.wait() // no read outlives Verify
		}
	}()
	// The record is read first: every event it holds is then in the log.
	snap, err := record.ReadSnapshot(ctx, org, func(position, events uint64) {
		reader = startLogReader(ctx, log, org, position, events, perRange, runtime.GOMAXPROCS(0))
	})
	if err != nil {
		return nil, err
	}
	walks := map[string]*walk{}
	get := func(o string) *walk {
		w, ok := walks[o]
		if !ok {
			w = newWalk(o, snap.Entries[o], snap.Checkpoints[o], keys)
			walks[o] = w
		}
		return w
	}
	if org != "" {
		get(org)
	}
	for o := range snap.Entries {
		get(o)
	}
	for o := range snap.Checkpoints {
		get(o)
	}
	hasher := NewHasher()
	var last *walk // events come in runs of one organization
	for {
		envs, err := reader.next()
		if err != nil {
			return nil, err
		}
		if envs == nil {
			break
		}
		for i := range envs {
			env := &envs[i]
			if last == nil || last.report.OrgID != env.OrgID {
				last = get(env.OrgID)
			}
			if err := last.next(hasher, env, snap.Position); err != nil {
				return nil, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reports := make([]Report, 0, len(walks))
	for _, w := range walks {
		r := w.finish()
		for i, f := range r.Findings {
			if f.Type == "" && f.EventID != "" { // named from the record
				if r.Findings[i].Type, r.Findings[i].Stream, err = record.Describe(ctx, r.OrgID, f.Seq); err != nil {
					return nil, err
				}
			}
		}
		reports = append(reports, r)
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].OrgID < reports[j].OrgID })
	return reports, nil
}

// SeekableLog is a Log that ReadAll reads from any number, not only from
// the position of one of its events: the embedded store, whose positions
// are 1, 2, 3 … (EventStoreDB refuses a position inside a record). Verify
// reads a SeekableLog in ranges on every CPU, any other Log in one pass.
type SeekableLog interface {
	Log
	// ReadsFromAnyPosition marks the capability; it does nothing.
	ReadsFromAnyPosition()
}

// logReader reads the log for Verify in position ranges, several at once,
// and hands the events over in log order. The ranges split (0, position]
// (the record's position) so that each holds about rangeEvents events if
// the record's events are spread evenly over the positions; the last
// range is everything after position. How the ranges fall decides only
// how evenly the work is shared: together they cover the whole log.
type logReader struct {
	ranges  []chan logBatch // one per range, in order; closed when read
	cur     int
	slots   chan struct{} // bounds the ranges read ahead of the walk
	stopped context.Context
	done    sync.WaitGroup
}

type logBatch struct {
	envs []eventstore.Envelope
	err  error
}

const (
	// rangeEvents is the size aimed at for one range: large enough that
	// a range is read in few queries, small enough to spread over CPUs.
	rangeEvents = 16384
	// readBatchVerify is the most one ReadAll returns.
	readBatchVerify = 4096
	maxRanges       = 1 << 16
)

func startLogReader(ctx context.Context, log Log, org string, position, events, perRange uint64, workers int) *logReader {
	width, n := uint64(math.MaxUint64), uint64(1)
	if _, ok := log.(SeekableLog); ok && position > 0 && events > 0 {
		n = min(max(events/perRange, 1), maxRanges)
		width = max(position/n, 1)
		n = position/width + 1 // the last: after n-1 widths, to the end
	} else {
		workers = 1
	}
	workers = int(max(min(uint64(workers), n), 1))
	r := &logReader{ranges: make([]chan logBatch, n), slots: make(chan struct{}, workers+1), stopped: ctx}
	for i := range r.ranges {
		r.ranges[i] = make(chan logBatch, rangeEvents/readBatchVerify+1)
	}
	var claimed atomic.Uint64
	for range workers {
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			for {
				// A slot first, then a range: the walk is never more than
				// workers+1 ranges behind the readers.
				select {
				case r.slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := claimed.Add(1) - 1
				if i >= n {
					return
				}
				lo, hi := i*width, uint64(math.MaxUint64)
				if i < n-1 {
					hi = lo + width
				}
				readRange(ctx, log, org, lo, hi, r.ranges[i])
			}
		}()
	}
	return r
}

// readRange sends the events of org ("" for all) with positions in
// (after, upTo] to out, in order, and closes out.
func readRange(ctx context.Context, log Log, org string, after, upTo uint64, out chan<- logBatch) {
	defer close(out)
	for after < upTo {
		// Positions are distinct integers: (after, upTo] holds at most
		// upTo-after events, so a dense log is never read past upTo.
		limit := int(min(uint64(readBatchVerify), upTo-after))
		envs, err := log.ReadAll(ctx, after, eventstore.Filter{OrgID: org}, limit)
		if err != nil {
			err = fmt.Errorf("chain: read log after %d: %w", after, err)
		}
		end := len(envs)
		for end > 0 && envs[end-1].Position > upTo {
			end--
		}
		select {
		case out <- logBatch{envs[:end], err}:
		case <-ctx.Done():
			return
		}
		if err != nil || len(envs) < limit || end < len(envs) {
			return
		}
		after = envs[len(envs)-1].Position
	}
}

func (r *logReader) wait() { r.done.Wait() }

// next returns the next events of the log, or nil at its end.
func (r *logReader) next() ([]eventstore.Envelope, error) {
	for r.cur < len(r.ranges) {
		select {
		case b, ok := <-r.ranges[r.cur]:
			if !ok {
				r.cur++
				<-r.slots
				continue
			}
			if b.err != nil || len(b.envs) > 0 {
				return b.envs, b.err
			}
		case <-r.stopped.Done():
			return nil, r.stopped.Err()
		}
	}
	return nil, nil
}

// newWalk checks the record against its checkpoints before any event is
// read: signatures first, then that the record is numbered without gaps
// and holds each signed head at its seq.
func newWalk(org string, entries []Entry, checkpoints []Checkpoint, keys PublicKeys) *walk {
	w := &walk{report: Report{OrgID: org, Checkpoints: len(checkpoints)}, entries: entries}
	var badSig, rewritten *Finding
	for _, c := range checkpoints {
		if err := c.VerifySignature(keys); err != nil {
			if badSig == nil {
				badSig = &Finding{Kind: KindBadSignature, Seq: c.Seq, CheckpointSeq: c.Seq,
					Detail: fmt.Sprintf("checkpoint at seq %d: %v", c.Seq, err)}
			}
			continue
		}
		w.checkpoints = append(w.checkpoints, c)
	}
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			rewritten = &Finding{Kind: KindRecordRewritten, EventID: e.EventID.String(), Seq: e.Seq, Type: e.Type, Stream: e.Stream,
				CheckpointSeq: w.covering(e.Seq), Detail: fmt.Sprintf("the record jumps from seq %d to %d", i, e.Seq)}
			// The log is compared with the record only up to its gap:
			// beyond it, the record's numbering means nothing.
			w.entries, w.truncated = entries[:i], true
			break
		}
	}
	for _, c := range w.checkpoints {
		if rewritten != nil && rewritten.Seq <= c.Seq {
			break
		}
		switch {
		case c.Seq > uint64(len(entries)):
			rewritten = &Finding{Kind: KindRecordRewritten, Seq: c.Seq, CheckpointSeq: c.Seq,
				Detail: fmt.Sprintf("a checkpoint is signed at seq %d but the record ends at seq %d", c.Seq, len(entries))}
		case entries[c.Seq-1].Hash != c.Head:
			e := entries[c.Seq-1]
			rewritten = &Finding{Kind: KindRecordRewritten, EventID: e.EventID.String(), Seq: e.Seq, Type: e.Type, Stream: e.Stream,
				CheckpointSeq: c.Seq, Detail: fmt.Sprintf("the recorded hash at seq %d is not the signed head %s", c.Seq, c.Head)}
		}
		if rewritten != nil {
			break
		}
	}
	for _, f := range []*Finding{badSig, rewritten} {
		if f != nil {
			w.report.Findings = append(w.report.Findings, *f)
		}
	}
	return w
}

// covering returns the seq of the first signed checkpoint at or after seq
// (0 if none).
func (w *walk) covering(seq uint64) uint64 {
	i, _ := slices.BinarySearchFunc(w.checkpoints, seq, func(c Checkpoint, s uint64) int {
		switch {
		case c.Seq < s:
			return -1
		case c.Seq > s:
			return 1
		}
		return 0
	})
	if i < len(w.checkpoints) {
		return w.checkpoints[i].Seq
	}
	return 0
}

func (w *walk) finding(kind string, env *eventstore.Envelope, seq uint64, detail string) *Finding {
	return &Finding{Kind: kind, EventID: env.ID.String(), Seq: seq, Type: env.Type, Stream: env.Stream.String(),
		CheckpointSeq: w.covering(seq), Detail: detail}
}

func (w *walk) entryFinding(kind string, e Entry, detail string) *Finding {
	return &Finding{Kind: kind, EventID: e.EventID.String(), Seq: e.Seq, Type: e.Type, Stream: e.Stream,
		CheckpointSeq: w.covering(e.Seq), Detail: detail}
}

// next compares the organization's next event of the log.
func (w *walk) next(h *Hasher, env *eventstore.Envelope, recorded uint64) error {
	if w.candidate != nil {
		if env.ID == w.waitFor {
			w.reordered = w.candidate
			w.candidate = nil
		}
		return nil
	}
	if w.stopped {
		return nil
	}
	if w.k == len(w.entries) {
		switch {
		case w.truncated:
			w.stopped = true
			return nil
		case env.Position > recorded:
			// Every recorded event was matched: what follows the record's
			// position was not chained yet.
			w.report.Pending++
			return nil
		}
	}
	logSeq := uint64(w.k + 1)
	if w.k < len(w.entries) && w.entries[w.k].EventID == env.ID {
		w.report.Events++
		e := w.entries[w.k]
		d, err := h.Hash(w.prev, logSeq, *env)
		if err != nil {
			return err
		}
		if d != e.Hash {
			w.stop(w.finding(KindAltered, env, logSeq, fmt.Sprintf("the event's hash is %s, the record has %s", d, e.Hash)))
			return nil
		}
		w.prev = d
		w.k++
		w.report.VerifiedThroughSeq = logSeq
		return nil
	}
	if w.index == nil {
		w.index = make(map[uuid.UUID]int, len(w.entries))
		for i, e := range w.entries {
			w.index[e.EventID] = i
		}
	}
	w.report.Events++
	i, known := w.index[env.ID]
	switch {
	case !known && env.Position > recorded && w.k < len(w.entries):
		// Past the record's position with recorded events still unseen:
		// they were removed, and this event is merely not chained yet.
		w.report.Pending++
		missing := w.entries[w.k]
		w.stop(w.entryFinding(KindRemoved, missing, fmt.Sprintf("the event recorded at seq %d is missing from the log", missing.Seq)))
		return nil
	case !known:
		w.stop(w.finding(KindInserted, env, logSeq, fmt.Sprintf("the event is at seq %d of the log but was never recorded", logSeq)))
	case i < w.k:
		w.stop(w.finding(KindInserted, env, logSeq, fmt.Sprintf("the event, recorded at seq %d, appears again at seq %d", i+1, logSeq)))
	default:
		// The event recorded at logSeq is not here. If it appears later,
		// the log was reordered; if it never does, it was removed.
		missing := w.entries[w.k]
		w.waitFor = missing.EventID
		w.reordered = nil
		w.candidate = w.finding(KindReordered, env, uint64(i+1), fmt.Sprintf(
			"the event recorded at seq %d is at seq %d of the log, before %s (recorded at seq %d)", i+1, logSeq, missing.EventID, missing.Seq))
		w.stop(w.entryFinding(KindRemoved, missing, fmt.Sprintf("the event recorded at seq %d is missing from the log", missing.Seq)))
	}
	return nil
}

// stop records the walk's first finding from the log; a removal may yet
// turn out to be a reordering (see next and finish).
func (w *walk) stop(f *Finding) {
	w.stopped = true
	if f.Kind == KindRemoved {
		w.pendingRemoval = f
		return
	}
	w.report.Findings = append([]Finding{*f}, w.report.Findings...)
}

// finish settles the walk once the whole log was read.
func (w *walk) finish() Report {
	switch {
	case w.reordered != nil:
		w.report.Findings = append([]Finding{*w.reordered}, w.report.Findings...)
	case w.pendingRemoval != nil:
		w.report.Findings = append([]Finding{*w.pendingRemoval}, w.report.Findings...)
	case !w.stopped && w.k < len(w.entries):
		e := w.entries[w.k]
		w.report.Findings = append([]Finding{*w.entryFinding(KindRemoved, e,
			fmt.Sprintf("the log ends at seq %d; the event recorded at seq %d is missing", w.k, e.Seq))}, w.report.Findings...)
	}
	sort.SliceStable(w.report.Findings, func(i, j int) bool { return w.report.Findings[i].Seq < w.report.Findings[j].Seq })
	if w.report.Findings == nil {
		w.report.Findings = []Finding{}
	}
	w.report.OK = len(w.report.Findings) == 0
	return w.report
}
