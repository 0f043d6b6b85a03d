package identity

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/palisadehq/palisade/strictjson"
)

// Verifier defaults and bounds.
const (
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 8 << 10
	maxLeeway            = 5 * time.Minute
	maxKIDLen            = 256
	// maxNumericDate bounds exp, nbf and iat (about the year 5138), so that
	// absurd values never reach float-to-time conversion.
	maxNumericDate = 1e11
)

// asymmetricAlgorithms are the algorithms an issuer may be pinned to. HMAC
// is absent on purpose: Palisade only verifies with public keys, so a key
// can never double as an HMAC secret, and "none" is never acceptable.
var asymmetricAlgorithms = []string{
	"EdDSA",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
}

// TrustedIssuer is an issuer whose tokens the Verifier accepts.
type TrustedIssuer struct {
	// Issuer is the exact iss.
	Issuer string
	// Keyfunc returns the verification key for a token; from
	// Issuer.Keyfunc or a JWK Set (TrustJWKSURL, TrustJWKSJSON).
	Keyfunc jwt.Keyfunc
	// Algorithms pins the accepted alg values, e.g. {"EdDSA"} or
	// {"RS256", "ES256"}. Only asymmetric algorithms are allowed.
	Algorithms []string
	// AllowPlatform lets the issuer mint platform tokens; only the built-in
	// issuer should.
	AllowPlatform bool
	// BuiltIn marks the deployment's own issuer (Issuer.Trusted sets it).
	// Only it may assert kind "service": service accounts are created and
	// their tokens minted here. Every other issuer is external: its users
	// act only in organizations that bound it, as members of that issuer.
	BuiltIn bool
}

// VerifierConfig configures NewVerifier.
type VerifierConfig struct {
	// Audience is the aud every token must carry. Required.
	Audience string
	// Leeway absorbs clock skew for exp, nbf and iat; 0 means
	// DefaultLeeway, and more than five minutes is refused.
	Leeway time.Duration
	// MaxTokenBytes bounds the raw token; longer tokens are refused before
	// any parsing. 0 means DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Issuers are the trusted issuers; at least one, names unique.
	Issuers []TrustedIssuer
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the cache of verified tokens (0 means
	// DefaultCacheSize, negative disables it). A token seen before is not
	// verified again until the earlier of its expiry and CacheTTL.
	CacheSize int
}

// DefaultCacheSize and CacheTTL bound the verified-token cache. The cache
// only skips repeating the signature check of an identical token string;
// whether its subject may still act is decided on every request elsewhere.
const (
	DefaultCacheSize = 10_000
	CacheTTL         = 5 * time.Minute
)

// Verifier verifies bearer tokens. It is safe for concurrent use.
type Verifier struct {
	maxBytes int
	issuers  map[string]*trustedParser
	now      func() time.Time
	cache    *verifiedCache
}

type trustedParser struct {
	algorithms    []string
	allowPlatform bool
	builtIn       bool
	parser        *jwt.Parser
	keyfunc       jwt.Keyfunc
}

// NewVerifier checks cfg and builds one pinned golang-jwt parser per issuer.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Audience == "" {
		return nil, errors.New("identity: verifier audience is required")
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0 || cfg.Leeway > maxLeeway:
		return nil, fmt.Errorf("identity: leeway %v is outside (0, %v]", cfg.Leeway, maxLeeway)
	}
	switch {
	case cfg.MaxTokenBytes == 0:
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	case cfg.MaxTokenBytes < 0:
		return nil, errors.New("identity: MaxTokenBytes must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("identity: at least one trusted issuer is required")
	}
	v := &Verifier{maxBytes: cfg.MaxTokenBytes, issuers: make(map[string]*trustedParser, len(cfg.Issuers)), now: cfg.Now}
	switch {
	case cfg.CacheSize == 0:
		v.cache = newVerifiedCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		v.cache = newVerifiedCache(cfg.CacheSize)
	}
	for _, ti := range cfg.Issuers {
		if ti.Issuer == "" {
			return nil, errors.New("identity: trusted issuer without a name")
		}
		if _, dup := v.issuers[ti.Issuer]; dup {
			return nil, fmt.Errorf("identity: issuer %q is trusted twice", ti.Issuer)
		}
		if ti.Keyfunc == nil {
			return nil, fmt.Errorf("identity: issuer %q has no key function", ti.Issuer)
		}
		if err := checkAlgorithms(ti.Algorithms); err != nil {
			return nil, fmt.Errorf("identity: issuer %q: %w", ti.Issuer, err)
		}
		algs := slices.Clone(ti.Algorithms)
		v.issuers[ti.Issuer] = &trustedParser{
			algorithms:    algs,
			allowPlatform: ti.AllowPlatform,
			builtIn:       ti.BuiltIn,
			keyfunc:       ti.Keyfunc,
			parser: jwt.NewParser(
				jwt.WithValidMethods(algs),
				jwt.WithIssuer(ti.Issuer),
				jwt.WithAudience(cfg.Audience),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
				jwt.WithLeeway(cfg.Leeway),
				jwt.WithTimeFunc(cfg.Now),
				jwt.WithStrictDecoding(),
			),
		}
	}
	return v, nil
}

func checkAlgorithms(algs []string) error {
	if len(algs) == 0 {
		return errors.New("no algorithms pinned")
	}
	for _, a := range algs {
		if !slices.Contains(asymmetricAlgorithms, a) {
			return fmt.Errorf("algorithm %q is not allowed; use one of %v", a, asymmetricAlgorithms)
		}
	}
	return nil
}

// Verify checks raw and returns its claims. Every failure is a *TokenError
// (errors.Is(err, ErrInvalidToken)); the claims are zero then.
//
// The unverified token is only looked at to refuse it early and to choose
// the issuer's parser by its iss; the chosen parser then verifies the
// signature and every registered claim, and Verify checks Palisade's claims.
func (v *Verifier) Verify(raw string) (Claims, error) {
	if len(raw) > v.maxBytes {
		return Claims{}, refuse(ReasonTooLarge, fmt.Errorf("%d bytes, limit %d", len(raw), v.maxBytes))
	}
	c, ok, generation := v.cache.get(raw, v.now())
	if ok {
		return c, nil
	}
	p, terr := peek(raw)
	if terr != nil {
		return Claims{}, terr
	}
	t, ok := v.issuers[p.iss]
	if !ok {
		return Claims{}, refuse(ReasonWrongIssuer, fmt.Errorf("issuer %s is not trusted", quote(p.iss)))
	}
	if !slices.Contains(t.algorithms, p.alg) {
		return Claims{}, refuse(ReasonAlgorithm, fmt.Errorf("alg %s is not pinned for this issuer", quote(p.alg)))
	}
	if _, err := t.parser.ParseWithClaims(raw, &c, t.keyfunc); err != nil {
		return Claims{}, refuse(reasonOf(err), err)
	}
	if err := c.validate(t.allowPlatform, t.builtIn); err != nil {
		return Claims{}, refuse(ReasonBadClaims, err)
	}
	c.BuiltIn = t.builtIn
	v.cache.put(raw, c, v.now(), generation)
	return c, nil
}

// ForgetVerified empties the cache of verified tokens, so that each is
// verified again against the keys trusted now: called when a key set
// changes (the built-in issuer's after Swap), a token of a key no longer
// trusted is refused on its next use instead of until its cache entry
// ages out. A verification under way when it is called does not put its
// token back.
func (v *Verifier) ForgetVerified() { v.cache.forget() }

// TrustsExternal reports whether iss is a trusted issuer other than the
// built-in one: an issuer an organization may bind.
func (v *Verifier) TrustsExternal(iss string) bool {
	t, ok := v.issuers[iss]
	return ok && !t.builtIn
}

// verifiedCache remembers tokens that passed verification. A nil cache
// remembers nothing.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]verifiedEntry
	// generation counts forget calls: a token verified under an older
	// generation, perhaps with a key since removed, is not cached.
	generation uint64
}

type verifiedEntry struct {
	claims Claims
	until  time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[string]verifiedEntry)}
}

// get returns raw's claims when cached, and the cache's generation, to
// hand to put after verifying raw.
func (c *verifiedCache) get(raw string, now time.Time) (Claims, bool, uint64) {
	if c == nil {
		return Claims{}, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[raw]
	if !ok {
		return Claims{}, false, c.generation
	}
	if !now.Before(e.until) {
		delete(c.entries, raw)
		return Claims{}, false, c.generation
	}
	return e.claims, true, c.generation
}

// put caches claims of raw, verified while the cache was at generation.
func (c *verifiedCache) put(raw string, claims Claims, now time.Time, generation uint64) {
	if c == nil || claims.ExpiresAt == nil {
		return
	}
	until := now.Add(CacheTTL)
	if exp := claims.ExpiresAt.Time; exp.Before(until) {
		until = exp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	if len(c.entries) >= c.max {
		// Drop about half; map iteration order makes the choice arbitrary.
		n := 0
		for k := range c.entries {
			delete(c.entries, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.entries[raw] = verifiedEntry{claims: claims, until: until}
}

// forget drops every entry and moves to the next generation.
func (c *verifiedCache) forget() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = make(map[string]verifiedEntry)
	c.generation++
}

// reasonOf maps a golang-jwt or key-function error to a reason.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrUnknownKey), errors.Is(err, jwkset.ErrKeyNotFound), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonWrongAudience
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	default:
		return ReasonBadClaims
	}
}

// peeked is what Verify reads from the unverified token. It is used to
// refuse and to choose a parser, never to accept.
type peeked struct {
	alg, iss string
}

// Header parameters Palisade refuses. crit names extensions we do not
// understand (RFC 7515 §4.1.11 requires refusing then); the others point at
// keys outside the trusted key set and are never fetched or used.
var refusedHeaders = []string{"crit", "jku", "x5u", "jwk", "x5c"}

// Claims whose names Verify checks for case variants: encoding/json matches
// struct fields case-insensitively, so {"kind":"user","KIND":"platform"}
// would decode as platform. Such a payload is refused.
var knownClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "org", "kind", "scope"}

// peek checks the shape of an unverified token: three base64url segments,
// a header with an alg and a well-formed kid and none of the refused
// parameters, and a payload with an iss, an aud, and exp, nbf and iat that
// are numbers in range.
func peek(raw string) (peeked, *TokenError) {
	// Only the base64url alphabet and two dots: Go's base64 decoder skips
	// CR and LF, which would let one token have many spellings.
	dots := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			dots++
		default:
			return peeked{}, refuse(ReasonMalformed, errors.New("a character outside base64url"))
		}
	}
	if dots != 2 {
		return peeked{}, refuse(ReasonMalformed, errors.New("not three segments"))
	}
	headSeg, rest, _ := strings.Cut(raw, ".")
	bodySeg, _, _ := strings.Cut(rest, ".")

	var header map[string]json.RawMessage
	var repeated *strictjson.KeyError
	if err := decodeSegment(headSeg, &header); errors.As(err, &repeated) {
		return peeked{}, refuse(ReasonBadHeader, fmt.Errorf("header: %w", err))
	} else if err != nil {
		return peeked{}, refuse(ReasonMalformed, fmt.Errorf("header: %w", err))
	}
	for _, name := range refusedHeaders {
		if _, ok := header[name]; ok {
			return peeked{}, refuse(ReasonBadHeader, fmt.Errorf("header %q is refused", name))
		}
	}
	var p peeked
	if err := json.Unmarshal(header["alg"], &p.alg); err != nil || p.alg == "" {
		return peeked{}, refuse(ReasonAlgorithm, errors.New("alg is missing or not a string"))
	}
	var kid string
	if err := json.Unmarshal(header["kid"], &kid); err != nil || !validKID(kid) {
		return peeked{}, refuse(ReasonUnknownKey, errors.New("kid is missing or malformed"))
	}

	var body map[string]json.RawMessage
	if err := decodeSegment(bodySeg, &body); errors.As(err, &repeated) {
		return peeked{}, refuse(ReasonBadClaims, fmt.Errorf("payload: %w", err))
	} else if err != nil {
		return peeked{}, refuse(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	for name := range body {
		for _, known := range knownClaims {
			if name != known && strings.EqualFold(name, known) {
				return peeked{}, refuse(ReasonBadClaims, fmt.Errorf("claim %s is a case variant of %q", quote(name), known))
			}
		}
	}
	if err := json.Unmarshal(body["iss"], &p.iss); err != nil || p.iss == "" {
		return peeked{}, refuse(ReasonWrongIssuer, errors.New("iss is missing or not a string"))
	}
	var aud jwt.ClaimStrings
	if err := json.Unmarshal(body["aud"], &aud); err != nil || !slices.ContainsFunc(aud, func(a string) bool { return a != "" }) {
		return peeked{}, refuse(ReasonWrongAudience, errors.New("aud is missing or empty"))
	}
	if err := checkNumericDate(body, "exp", true); err != nil {
		return peeked{}, refuse(ReasonBadClaims, err)
	}
	if err := checkNumericDate(body, "iat", true); err != nil {
		return peeked{}, refuse(ReasonBadClaims, err)
	}
	if err := checkNumericDate(body, "nbf", false); err != nil {
		return peeked{}, refuse(ReasonBadClaims, err)
	}
	// Claims cannot tell an empty or null scope from none, and none narrows
	// nothing: a scope meant to narrow to nothing must not widen to all.
	if s, ok := body["scope"]; ok {
		if v := strings.TrimSpace(string(s)); v == `""` || v == "null" {
			return peeked{}, refuse(ReasonBadClaims, errors.New("scope is present but empty"))
		}
	}
	return p, nil
}

func decodeSegment(seg string, v any) error {
	data, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	// Two equal claims (or claims equal but for case) read differently in
	// different JSON parsers; such a segment is refused (*strictjson.KeyError).
	return strictjson.CheckKeys(data)
}

// validKID accepts 1–256 bytes of printable ASCII. A kid is only ever a
// lookup key in the trusted set, never a path or a query; the bound keeps
// hostile values small in lookups and logs.
func validKID(kid string) bool {
	if kid == "" || len(kid) > maxKIDLen {
		return false
	}
	for i := 0; i < len(kid); i++ {
		if kid[i] < 0x21 || kid[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkNumericDate requires the claim, when present (or required), to be a
// JSON number in (0, maxNumericDate]. golang-jwt would also accept a string
// holding a number ("exp":"1700000000"), which RFC 7519 does not allow.
func checkNumericDate(body map[string]json.RawMessage, name string, required bool) error {
	raw, ok := body[name]
	if !ok {
		if required {
			return fmt.Errorf("%s is required", name)
		}
		return nil
	}
	// raw is valid JSON (the payload decoded), so of all JSON values only a
	// number parses as a float: a string, even "1700000000", does not.
	f, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number", name)
	}
	if f <= 0 || f > maxNumericDate {
		return fmt.Errorf("%s is out of range", name)
	}
	return nil
}
