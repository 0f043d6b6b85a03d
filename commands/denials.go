package commands

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
	"github.com/palisadehq/palisade/eventstore"
)

// DefaultDenialWindow is how long the denials of one principal for one
// permission are coalesced after the first is recorded in full.
const DefaultDenialWindow = time.Minute

// maxPendingDenials bounds the coalescer's memory. When that many
// (principal, permission) pairs are pending, their summaries are written
// at once and counting starts afresh: nothing is dropped.
const maxPendingDenials = 10_000

// denialKey is what denials are coalesced by: one principal of one
// organization, acting for the same chain of invokers, refused one
// permission. A bot refused for two users is two keys, so that each
// user's first refusal is on the record in full.
type denialKey struct {
	org, subject, kind, onBehalfOf, permission string
}

// denialTally is what a window has seen of one key since its first denial,
// which was recorded in full.
type denialTally struct {
	who       access.Principal
	decision  access.Decision
	origin    Origin
	count     uint64
	first     time.Time
	last      time.Time
	resources []string
	reason    string
	opened    time.Time
}

// maxSummaryResources bounds the distinct resources a summary names.
const maxSummaryResources = 10

// denialCoalescer keeps denials from flooding the log. The first denial of
// a key in a window is recorded in full; the ones
// that follow within the window are only counted, and when the window ends
// one AccessDenialsCoalesced event records how many there were, what they
// were for and when the first and last happened. Summaries are written by
// a timer and by flush (at shutdown), so no count is lost: the full events
// plus the summaries' counts are exactly the denials that happened, and a
// key costs at most two events per window whatever the rate.
type denialCoalescer struct {
	window time.Duration
	now    func() time.Time
	// write appends a summary; failures are logged by it.
	write func(ctx context.Context, t *denialTally, e *events.AccessDenialsCoalesced)

	mu      sync.Mutex
	pending map[denialKey]*denialTally
	timer   *time.Timer
	closed  bool
}

func newDenialCoalescer(window time.Duration, now func() time.Time,
	write func(context.Context, *denialTally, *events.AccessDenialsCoalesced)) *denialCoalescer {
	if window <= 0 {
		window = DefaultDenialWindow
	}
	return &denialCoalescer{window: window, now: now, write: write, pending: map[denialKey]*denialTally{}}
}

// admit reports whether this denial is recorded in full (the first of its
// key in a window, or any denial once the coalescer is closed); otherwise
// it is counted toward the key's summary.
func (c *denialCoalescer) admit(ctx context.Context, who access.Principal, org string, d access.Decision, resource string) bool {
	key := denialKey{org: org, subject: who.Subject, kind: string(who.Kind),
		onBehalfOf: strings.Join(who.OnBehalfOf, "\x00"), permission: d.Permission.String()}
	now := c.now()
	var overflow []*denialTally
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true
	}
	t, ok := c.pending[key]
	if !ok {
		if len(c.pending) >= maxPendingDenials {
			overflow = c.takeAll(func(*denialTally) bool { return true })
		}
		c.pending[key] = &denialTally{opened: now}
		c.arm()
		c.mu.Unlock()
		c.writeAll(overflow)
		return true
	}
	if t.count == 0 {
		t.who, t.decision, t.first = who, d, now
	}
	t.count++
	t.last, t.reason, t.origin = now, d.Reason(), OriginFrom(ctx)
	if len(t.resources) < maxSummaryResources && resource != "" && !containsString(t.resources, resource) {
		t.resources = append(t.resources, resource)
	}
	c.mu.Unlock()
	return false
}

// arm starts the timer of the next sweep unless one is pending. c.mu held.
func (c *denialCoalescer) arm() {
	if c.timer == nil {
		c.timer = time.AfterFunc(c.window, c.sweep)
	}
}

// sweep writes the summaries of the windows that ended and forgets their
// keys, so that a principal's next denial is recorded in full again.
func (c *denialCoalescer) sweep() {
	now := c.now()
	c.mu.Lock()
	c.timer = nil
	if c.closed {
		c.mu.Unlock()
		return
	}
	due := c.takeAll(func(t *denialTally) bool { return now.Sub(t.opened) >= c.window })
	if len(c.pending) > 0 {
		c.arm()
	}
	c.mu.Unlock()
	c.writeAll(due)
}

// flush writes every pending summary now and records every later denial
// in full: it is called when the pipeline closes.
func (c *denialCoalescer) flush() {
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	all := c.takeAll(func(*denialTally) bool { return true })
	c.mu.Unlock()
	c.writeAll(all)
}

// takeAll removes the tallies that match and returns those with a count.
// c.mu held.
func (c *denialCoalescer) takeAll(match func(*denialTally) bool) []*denialTally {
	var out []*denialTally
	for k, t := range c.pending {
		if !match(t) {
			continue
		}
		delete(c.pending, k)
		if t.count > 0 {
			out = append(out, t)
		}
	}
	return out
}

func (c *denialCoalescer) writeAll(tallies []*denialTally) {
	for _, t := range tallies {
		ctx, cancel := context.WithTimeout(WithOrigin(context.Background(), t.origin), 10*time.Second)
		c.write(ctx, t, &events.AccessDenialsCoalesced{
			Action: t.decision.Permission.String(), Permission: t.decision.Permission.String(), Reason: t.reason,
			Count: t.count, FirstAt: t.first, LastAt: t.last, Resources: t.resources,
			WindowSeconds: int64(c.window / time.Second),
		})
		cancel()
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// recordCoalesced appends a summary to the security stream the denials
// it counts would have gone to.
func (p *Pipeline) recordCoalesced(ctx context.Context, t *denialTally, e *events.AccessDenialsCoalesced) {
	org := t.who.OrgID
	if org == "" {
		org = access.PlatformScope
	}
	stream := eventstore.MustStreamName(events.SecurityCategory, org, "denials")
	if _, _, err := p.append(ctx, t.who, t.decision, stream, eventstore.Any(), []domain.Event{e}); err != nil {
		p.logger.Error("record coalesced denials", "org_id", org, "subject", t.who.Subject, "count", t.count, "err", err)
	}
}

// Close writes the summaries of denials still being coalesced, so that
// none is lost at shutdown. Denials after Close are recorded one by one.
func (p *Pipeline) Close() error {
	p.denials.flush()
	return nil
}
