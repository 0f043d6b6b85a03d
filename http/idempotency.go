package httpapi

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/events"
)

// idempotent makes commands carrying an Idempotency-Key safe to retry: the
// first response is kept and replayed for the same key, a different
// request under the same key is refused (422), and a duplicate arriving
// while the first is still running is refused (409), on this replica by
// the cache, on another by the shared claims. Keys are per principal. Creates additionally derive their resource id from the key,
// so a retry that reaches a restarted server cannot create twice.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(headerIdempotencyKey)
		if key == "" || r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 255 || !printableASCII(key) {
			writeProblem(w, r, http.StatusBadRequest, "bad-request", "Idempotency-Key must be 1 to 255 printable ASCII characters")
			return
		}
		if acceptsEventStream(r) {
			// A stream is not a response that can be recorded and replayed.
			writeProblem(w, r, http.StatusBadRequest, "bad-request",
				"Idempotency-Key cannot be used with a streamed answer; ask without Accept: text/event-stream for a replayable one")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, r, err, "request")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p := principalFrom(r.Context())
		// The key belongs to the principal as it is now, permissions
		// included: a narrower token (or a demoted member) never gets the
		// replay of what a wider one was allowed to do.
		cacheKey := p.OrgID + "\x00" + string(p.Kind) + "\x00" + p.Subject + "\x00" +
			strconv.FormatUint(uint64(p.Permissions), 16) + "\x00" + key
		// The query is part of the request: PUT /v1/members/x?issuer=a
		// and ?issuer=b name two members.
		fingerprint := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\x00" + string(body)))

		entry, fresh := s.idempotency.begin(cacheKey, fingerprint, time.Now())
		var shared *sharedClaim
		if fresh {
			// Not seen by this process. Another replica may be running
			// it now (the shared claim says so), or may have answered it
			// (the response recorded in the log, also before a restart).
			// The claim comes first: a replica records its response
			// before it releases its claim, so a claim taken here finds
			// every response recorded under the key.
			var verdict claimVerdict
			shared, verdict, err = s.claimShared(r, p.OrgID, cacheKey, fingerprint)
			switch {
			case err != nil:
				s.idempotency.forget(cacheKey)
				writeError(w, r, err, "request")
				return
			case verdict == claimInUse:
				s.idempotency.forget(cacheKey)
				writeProblem(w, r, http.StatusConflict, "idempotency-key-in-use", "a request with this Idempotency-Key is still being processed")
				return
			case verdict == claimReused:
				s.idempotency.forget(cacheKey)
				writeProblem(w, r, http.StatusUnprocessableEntity, "idempotency-key-reused", "this Idempotency-Key was used for a different request")
				return
			}
			recorded, found, err := s.recordedResponse(r, p, key)
			if err != nil {
				shared.release(r)
				s.idempotency.forget(cacheKey)
				writeError(w, r, err, "request")
				return
			}
			if found {
				shared.release(r)
				same, err := s.deps.App.Commands.Idempotency.SameBody(r.Context(), p, recorded, hexSHA256(body))
				if err != nil {
					s.idempotency.forget(cacheKey)
					writeError(w, r, err, "request")
					return
				}
				if recorded.Method != r.Method || recorded.Path != r.URL.Path || recorded.Query != r.URL.RawQuery || !same {
					s.idempotency.forget(cacheKey)
					writeProblem(w, r, http.StatusUnprocessableEntity, "idempotency-key-reused", "this Idempotency-Key was used for a different request")
					return
				}
				header := recordedHeader(recorded)
				s.idempotency.finish(cacheKey, recorded.Status, header, []byte(recorded.Body))
				entry.replay(w)
				return
			}
		}
		switch {
		case !fresh && entry.fingerprint != fingerprint:
			writeProblem(w, r, http.StatusUnprocessableEntity, "idempotency-key-reused", "this Idempotency-Key was used for a different request")
			return
		case !fresh && !entry.isDone():
			writeProblem(w, r, http.StatusConflict, "idempotency-key-in-use", "a request with this Idempotency-Key is still being processed")
			return
		case !fresh:
			entry.replay(w)
			return
		}
		// The shared claim is renewed until the response is recorded (or,
		// for a failure worth retrying, forgotten), then released, even
		// if the handler panics: the deferred calls run last in, first out.
		defer shared.release(r)
		defer shared.keep(r)()
		request := sha256.Sum256([]byte(cacheKey + "\x00" + string(fingerprint[:])))
		ctx := withIdempotencyKey(r.Context(), key, hex.EncodeToString(request[:]))
		rec := &capture{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests {
			s.idempotency.forget(cacheKey)
			return
		}
		if rec.status >= 200 && rec.status < 300 {
			s.recordResponse(r.WithContext(ctx), p, key, body, rec)
		}
		s.idempotency.finish(cacheKey, rec.status, rec.Header().Clone(), rec.body.Bytes())
	})
}

// IdempotencyClaims shares between replicas which Idempotency-Keys have a
// request in flight, so that the same key sent to two replicas at once
// runs once: the other gets 409, or 422 if it is a different request. A
// finished request needs no claim: its response is in the log
// ([IdempotencyRecords]). The server consults the claims only for a key
// its own cache has not seen; nil keeps the in-flight state in the
// process (one replica).
//
// A claim is held under a lease, renewed while its request runs, so that
// a replica that dies mid-request blocks the key only until the lease
// ends; the retry then finds the recorded response, if any, or runs
// again, which is safe for creates since their ids derive from the key.
type IdempotencyClaims interface {
	// Claim takes key in orgID for holder until lease ends, or extends
	// holder's own claim on it. When another holder's unexpired claim has
	// the key, it returns false and the fingerprint of that claim's
	// request. key and fingerprint are hashes; neither the raw key nor the
	// body reaches the store.
	Claim(ctx context.Context, orgID string, key, fingerprint [32]byte, holder string, lease time.Duration) (claimed bool, held [32]byte, err error)
	// Release gives up holder's claim on key; a claim another holder took
	// over after the lease ended is left alone.
	Release(ctx context.Context, orgID string, key [32]byte, holder string) error
}

// defaultClaimLease is how long a shared claim outlives its last renewal:
// what a replica that died mid-request costs a retry of its key.
const defaultClaimLease = 30 * time.Second

// claimVerdict is what the shared claims answered for a key.
type claimVerdict int

const (
	claimTaken  claimVerdict = iota // this request holds the key (or no claims are shared)
	claimInUse                      // the same request runs elsewhere: 409
	claimReused                     // another request holds the key: 422
)

// sharedClaim is this request's claim on its key among replicas; nil when
// the claims are not shared.
type sharedClaim struct {
	claims      IdempotencyClaims
	orgID       string
	key         [32]byte
	fingerprint [32]byte
	holder      string
	lease       time.Duration
}

// claimShared claims the key among replicas, when they share claims.
func (s *Server) claimShared(r *http.Request, orgID, cacheKey string, fingerprint [32]byte) (*sharedClaim, claimVerdict, error) {
	claims := s.deps.IdempotencyClaims
	if claims == nil {
		return nil, claimTaken, nil
	}
	if orgID == "" {
		orgID = access.PlatformScope
	}
	var holder [16]byte
	if _, err := rand.Read(holder[:]); err != nil {
		return nil, 0, fmt.Errorf("idempotency claim: %w", err)
	}
	c := &sharedClaim{
		claims: claims, orgID: orgID, key: sha256.Sum256([]byte(cacheKey)), fingerprint: fingerprint,
		holder: hex.EncodeToString(holder[:]), lease: s.deps.IdempotencyLease,
	}
	if c.lease <= 0 {
		c.lease = defaultClaimLease
	}
	claimed, held, err := claims.Claim(r.Context(), c.orgID, c.key, c.fingerprint, c.holder, c.lease)
	switch {
	case err != nil:
		return nil, 0, fmt.Errorf("idempotency claim: %w", err)
	case claimed:
		return c, claimTaken, nil
	case held == fingerprint:
		return nil, claimInUse, nil
	default:
		return nil, claimReused, nil
	}
}

// keep renews the claim every third of its lease until the returned stop
// is called, so that a request running longer than the lease keeps its
// key.
func (c *sharedClaim) keep(r *http.Request) (stop func()) {
	if c == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(max(c.lease/3, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			claimed, _, err := c.claims.Claim(ctx, c.orgID, c.key, c.fingerprint, c.holder, c.lease)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				loggerFrom(r.Context()).Warn("renew idempotency claim", "err", err)
			case !claimed:
				// The lease ended before a renewal reached the store and
				// another request took the key: nothing to hold any more.
				loggerFrom(r.Context()).Warn("idempotency claim lost to another request before this one ended")
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// release gives the claim up; a failure is logged, and the lease ends it.
func (c *sharedClaim) release(r *http.Request) {
	if c == nil {
		return
	}
	if err := c.claims.Release(context.WithoutCancel(r.Context()), c.orgID, c.key, c.holder); err != nil {
		loggerFrom(r.Context()).Warn("release idempotency claim", "err", err)
	}
}

// IdempotencyRecords keeps the responses of commands that carried an
// Idempotency-Key in the log, one per principal and key, so that they
// outlive the process.
type IdempotencyRecords interface {
	RecordedResponse(ctx context.Context, who access.Principal, key string) (*events.IdempotentResponseRecorded, bool, error)
	RecordResponse(ctx context.Context, who access.Principal, key string, rec *events.IdempotentResponseRecorded) (*events.IdempotentResponseRecorded, bool, error)
	// SameBody reports whether rec answered a request whose body has the
	// SHA-256 bodySHA256 (hex): the recorded hash is keyed in the log.
	SameBody(ctx context.Context, who access.Principal, rec *events.IdempotentResponseRecorded, bodySHA256 string) (bool, error)
}

// recordedResponse reads the response recorded for p's key; without a
// durable record (unit tests) nothing is ever found.
func (s *Server) recordedResponse(r *http.Request, p access.Principal, key string) (*events.IdempotentResponseRecorded, bool, error) {
	records := s.deps.App.Commands.Idempotency
	if records == nil {
		return nil, false, nil
	}
	rec, found, err := records.RecordedResponse(r.Context(), p, key)
	if err != nil {
		return nil, false, fmt.Errorf("idempotency record: %w", err)
	}
	return rec, found, nil
}

// recordResponse records a successful response in the log. A failure is
// logged, not answered: the command happened, and its resource id derived
// from the key still keeps a retry from creating twice.
func (s *Server) recordResponse(r *http.Request, p access.Principal, key string, reqBody []byte, rec *capture) {
	records := s.deps.App.Commands.Idempotency
	if records == nil {
		return
	}
	respBody, omitted := withoutSecret(rec.body.Bytes())
	event := &events.IdempotentResponseRecorded{
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.RawQuery,
		BodySHA256:    hexSHA256(reqBody),
		Status:        rec.status,
		ContentType:   rec.Header().Get("Content-Type"),
		Location:      rec.Header().Get("Location"),
		Body:          string(respBody),
		SecretOmitted: omitted,
	}
	if _, _, err := records.RecordResponse(r.Context(), p, key, event); err != nil {
		loggerFrom(r.Context()).Error("record idempotent response", "err", err)
	}
}

// recordedHeader is the header a recorded response is replayed with.
func recordedHeader(rec *events.IdempotentResponseRecorded) http.Header {
	h := http.Header{}
	if rec.ContentType != "" {
		h.Set("Content-Type", rec.ContentType)
	}
	if rec.Location != "" {
		h.Set("Location", rec.Location)
	}
	h.Set("Cache-Control", "no-store")
	return h
}

// secretFields are the top-level response fields that are one-time
// secrets (a service account's token), never written to the log.
var secretFields = []string{"token"}

// withoutSecret returns body without its secret fields, and whether it
// had any. A body that is not a JSON object is returned as is.
func withoutSecret(body []byte) ([]byte, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return body, false
	}
	omitted := false
	for _, name := range secretFields {
		if _, ok := fields[name]; ok {
			delete(fields, name)
			omitted = true
		}
	}
	if !omitted {
		return body, false
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return body, false
	}
	return append(out, '\n'), true
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(b []byte) (int, error) {
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

type idempotencyEntry struct {
	key         string
	fingerprint [32]byte
	created     time.Time
	done        chan struct{}
	status      int
	header      http.Header
	body        []byte
}

func (e *idempotencyEntry) isDone() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

func (e *idempotencyEntry) replay(w http.ResponseWriter) {
	for k, v := range e.header {
		if k == headerCorrelationID {
			continue
		}
		w.Header()[k] = v
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}

// idempotencyCache keeps responses by key, bounded in number, in the
// bytes of their bodies and in age, oldest out first. It is a cache of
// the log's records (IdempotencyRecords), which a miss reads: every
// organization shares it, so what one sends can push out another's
// entries, never its replays.
type idempotencyCache struct {
	mu       sync.Mutex
	entries  map[string]*list.Element
	order    *list.List // oldest first
	max      int
	maxBytes int
	bytes    int // of the bodies kept
	ttl      time.Duration
}

func newIdempotencyCache(max, maxBytes int, ttl time.Duration) *idempotencyCache {
	return &idempotencyCache{entries: map[string]*list.Element{}, order: list.New(), max: max, maxBytes: maxBytes, ttl: ttl}
}

// begin returns the existing entry for key, or records a new running one.
func (c *idempotencyCache) begin(key string, fingerprint [32]byte, now time.Time) (*idempotencyEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.order.Len() > 0 {
		oldest := c.order.Front().Value.(*idempotencyEntry)
		if c.order.Len() < c.max && c.bytes <= c.maxBytes && now.Sub(oldest.created) < c.ttl {
			break
		}
		c.remove(c.order.Front())
	}
	if el, ok := c.entries[key]; ok {
		return el.Value.(*idempotencyEntry), false
	}
	e := &idempotencyEntry{key: key, fingerprint: fingerprint, created: now, done: make(chan struct{})}
	c.entries[key] = c.order.PushBack(e)
	return e, true
}

func (c *idempotencyCache) finish(key string, status int, header http.Header, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*idempotencyEntry)
		e.status, e.header, e.body = status, header, body
		c.bytes += len(body)
		close(e.done)
	}
}

// remove drops el's entry; the caller holds c.mu.
func (c *idempotencyCache) remove(el *list.Element) {
	e := el.Value.(*idempotencyEntry)
	c.order.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= len(e.body)
}

func (c *idempotencyCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
}

// denialLimiter bounds how many authentication denials become events,
// per security stream: each organization (and the platform) has its own
// budget and its own count of suppressed denials, so a flood aimed at one
// cannot silence or pollute another's record.
type denialLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*denialBucket
}

type denialBucket struct {
	limiter    *rate.Limiter
	suppressed uint64
}

// maxDenialBuckets bounds memory; when full, the buckets start afresh.
const maxDenialBuckets = 10_000

func newDenialLimiter(perSecond float64, burst int) *denialLimiter {
	if perSecond <= 0 {
		perSecond = 50
	}
	if burst <= 0 {
		burst = 100
	}
	return &denialLimiter{buckets: map[string]*denialBucket{}, rate: rate.Limit(perSecond), burst: burst}
}

// allow reports whether this denial for stream owner org is recorded, and
// how many of org's were suppressed since its last recorded one.
func (l *denialLimiter) allow(org string, now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[org]
	if b == nil {
		if len(l.buckets) >= maxDenialBuckets {
			clear(l.buckets)
		}
		b = &denialBucket{limiter: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[org] = b
	}
	if !b.limiter.AllowN(now, 1) {
		b.suppressed++
		return false, 0
	}
	n := b.suppressed
	b.suppressed = 0
	return true, n
}
