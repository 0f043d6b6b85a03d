package quota

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/tenancy"
)

// DefaultGlobalWait is how long a PDF parse waits for one of the
// deployment's parser slots before it is refused (429).
const DefaultGlobalWait = 2 * time.Second

// Config is a Book's configuration.
type Config struct {
	// Defaults apply to every organization without an override.
	Defaults Limits
	// PDFParsers bounds PDF parser children across all organizations
	// (0: unlimited).
	PDFParsers int
	// GlobalWait is how long a parse waits for a free parser (default
	// DefaultGlobalWait).
	GlobalWait time.Duration
}

// Book keeps every organization's limits and usage. It is safe for
// concurrent use; its critical sections are map lookups and counter
// updates, per call, never work or waiting.
type Book struct {
	cfg     Config
	parsers chan struct{} // nil: unlimited

	mu   sync.Mutex
	orgs map[string]*orgUsage
}

// orgUsage is one organization's overrides, stored resources, requests
// and work in progress.
type orgUsage struct {
	limits    Limits
	overrides tenancy.QuotaOverrides
	stored    map[string]int
	working   map[string]int
	requests  *rate.Limiter
	// modelTokens is the budget of model tokens; nil is unlimited.
	modelTokens *rate.Limiter
	// documents maps a live document's id to nothing, so that a
	// redelivered or replaced document is counted once.
	documents map[string]struct{}
}

// NewBook returns a book of cfg's defaults.
func NewBook(cfg Config) *Book {
	if cfg.GlobalWait <= 0 {
		cfg.GlobalWait = DefaultGlobalWait
	}
	b := &Book{cfg: cfg, orgs: map[string]*orgUsage{}}
	if cfg.PDFParsers > 0 {
		b.parsers = make(chan struct{}, cfg.PDFParsers)
	}
	return b
}

// org returns org's usage, created with the defaults. b.mu held.
func (b *Book) org(org string) *orgUsage {
	u := b.orgs[org]
	if u == nil {
		u = &orgUsage{stored: map[string]int{}, working: map[string]int{}, documents: map[string]struct{}{}}
		u.setLimits(b.cfg.Defaults)
		b.orgs[org] = u
	}
	return u
}

// forget drops everything the book keeps of org.
func (b *Book) forget(org string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.orgs, org)
}

func (u *orgUsage) setLimits(l Limits) {
	u.limits = l
	u.modelTokens = nil
	if l.ModelTokensPerHour > 0 {
		u.modelTokens = rate.NewLimiter(rate.Limit(float64(l.ModelTokensPerHour)/3600), l.ModelTokensPerHour)
	}
	if l.RequestsPerSecond <= 0 {
		u.requests = nil
		return
	}
	burst := l.RequestBurst
	if burst <= 0 {
		burst = max(1, int(l.RequestsPerSecond))
	}
	u.requests = rate.NewLimiter(rate.Limit(l.RequestsPerSecond), burst)
}

// Limits returns org's effective limits.
func (b *Book) Limits(org string) Limits {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.org(org).limits
}

// SetOverrides replaces org's overrides (its projection calls it).
func (b *Book) SetOverrides(org string, o tenancy.QuotaOverrides) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.org(org)
	u.overrides = o
	u.setLimits(b.cfg.Defaults.With(o))
}

// AllowRequest takes one request from org's bucket at now. When the bucket
// is empty it reports how long until a request would pass.
func (b *Book) AllowRequest(org string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	lim := b.org(org).requests
	b.mu.Unlock()
	if lim == nil {
		return true, 0
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// RequestsSpent reports, without taking anything, whether org's request
// budget is spent now, and how long until one request would pass. It
// creates nothing for an organization the book does not know, so that
// asking about any claimed organization costs no memory.
func (b *Book) RequestsSpent(org string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	u := b.orgs[org]
	b.mu.Unlock()
	if u == nil || u.requests == nil {
		return false, 0
	}
	if tokens := u.requests.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) / float64(u.requests.Limit()) * float64(time.Second))
	}
	return false, 0
}

// AllowModelTokens refuses a bot turn of org while its budget of model
// tokens is spent, saying how long until it is positive again.
func (b *Book) AllowModelTokens(org string, now time.Time) error {
	b.mu.Lock()
	lim := b.org(org).modelTokens
	b.mu.Unlock()
	if lim == nil {
		return nil
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return nil
	}
	wait := time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
	return &RetryError{Limit: "the organization's budget of model tokens is spent", After: wait}
}

// ChargeModelTokens takes n tokens a turn used from org's budget, which may
// leave it negative (a turn is not cut short; the next one waits).
func (b *Book) ChargeModelTokens(org string, n int, now time.Time) {
	b.mu.Lock()
	lim := b.org(org).modelTokens
	b.mu.Unlock()
	if lim == nil || n <= 0 {
		return
	}
	lim.ReserveN(now, min(n, lim.Burst()))
}

// Acquire takes one slot of org's concurrent work of kind, and for PDF
// parses one of the deployment's parsers too (waiting up to GlobalWait,
// or until ctx ends). An organization at its own cap is refused at once,
// so that it never queues in front of others. Call release when the work
// ends.
func (b *Book) Acquire(ctx context.Context, org, kind string) (release func(), err error) {
	releaseOrg, err := b.acquireOrg(org, kind)
	if err != nil {
		return nil, err
	}
	if kind != WorkPDFParses || b.parsers == nil {
		return releaseOrg, nil
	}
	wait := time.NewTimer(b.cfg.GlobalWait)
	defer wait.Stop()
	select {
	case b.parsers <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-b.parsers; releaseOrg() }) }, nil
	case <-wait.C:
		releaseOrg()
		return nil, &RetryError{Limit: "every PDF parser of the deployment is busy", After: time.Second}
	case <-ctx.Done():
		releaseOrg()
		return nil, ctx.Err()
	}
}

func (b *Book) acquireOrg(org, kind string) (func(), error) {
	if org == "" {
		return func() {}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.org(org)
	limit := u.limits.ConcurrentUploads
	switch kind {
	case WorkPDFParses:
		limit = u.limits.ConcurrentPDFParses
	case WorkTurns:
		limit = u.limits.ConcurrentTurns
	}
	if limit > 0 && u.working[kind] >= limit {
		return nil, &RetryError{Limit: fmt.Sprintf("the organization has %d %s in progress, its quota", limit, kind), After: time.Second}
	}
	u.working[kind]++
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			u.working[kind]--
			b.mu.Unlock()
		})
	}, nil
}

// InProgress returns how many slots of org's concurrent work of kind are
// taken now. It only reads: it never takes a slot, so asking cannot refuse
// anyone (monitoring, and tests that must know an upload holds its slot).
func (b *Book) InProgress(org, kind string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if u := b.orgs[org]; u != nil {
		return u.working[kind]
	}
	return 0
}

// AdmitResource refuses one more stored resource of kind ("bots",
// "knowledge_bases", "documents") when org holds its quota of them.
func (b *Book) AdmitResource(_ context.Context, org, kind string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.org(org)
	var limit int
	switch kind {
	case KindBots:
		limit = u.limits.MaxBots
	case KindKnowledgeBases:
		limit = u.limits.MaxKnowledgeBases
	case KindDocuments:
		limit = u.limits.MaxDocuments
	default:
		return fmt.Errorf("quota: unknown resource kind %q", kind)
	}
	if n := u.stored[kind]; limit > 0 && n >= limit {
		return fmt.Errorf("%w: the organization holds %d %s, its quota", domain.ErrQuotaExceeded, n, kind)
	}
	return nil
}

// Stored returns how many resources of kind org holds.
func (b *Book) Stored(org, kind string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.org(org).stored[kind]
}

// Kinds of stored resources (the same names as commands' Resource*).
const (
	KindBots           = "bots"
	KindKnowledgeBases = "knowledge_bases"
	KindDocuments      = "documents"
)

func (b *Book) count(org, kind string, delta int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.org(org)
	u.stored[kind] = max(0, u.stored[kind]+delta)
}

func (b *Book) document(org, id string, live bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.org(org)
	_, had := u.documents[id]
	switch {
	case live && !had:
		u.documents[id] = struct{}{}
	case !live && had:
		delete(u.documents, id)
	}
	u.stored[KindDocuments] = len(u.documents)
}
