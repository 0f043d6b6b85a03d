package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// Remote JWK Set fetching.
const (
	jwksRefreshInterval = time.Hour
	jwksHTTPTimeout     = 10 * time.Second
	// jwksUnknownKIDEvery rate-limits the refresh an unknown kid triggers,
	// so that a stream of made-up kids cannot make us hammer the provider
	// (at most two fetches a minute). Anyone may spend it, unauthenticated:
	// a key the provider publishes is usable at the latest this long
	// after, because any refresh after that fetches it. At five minutes, a
	// made-up kid sent every five minutes kept a freshly rotated key out
	// for as long (a review's finding).
	jwksUnknownKIDEvery = 30 * time.Second
	// jwksWaitMax bounds how long one verification may wait for that
	// refresh (the limiter's wait plus the request).
	jwksWaitMax = 10 * time.Second
	// maxJWKSBytes bounds a JWK Set response.
	maxJWKSBytes = 1 << 20
)

// signingUses are the JWK "use" values accepted for verification keys: sig,
// or absent. An "enc" key is never used to verify a signature.
var signingUses = []jwkset.USE{jwkset.UseSig, ""}

// TrustJWKSURL trusts an external (OIDC) issuer whose keys are published as
// a JWK Set at jwksURL. The set is fetched once now (an error if that
// fails, so a misconfiguration shows at start), refreshed every hour and,
// at most every 30 seconds, when a token names an unknown kid. ctx ends
// the background refresh.
//
// jwksURL must be https, or http on a loopback address (tests, sidecars).
// Redirects are followed only under the same rule (and never from https
// to http), and responses are limited to 1 MiB.
func TrustJWKSURL(ctx context.Context, issuer, jwksURL string, algorithms []string) (TrustedIssuer, error) {
	if issuer == "" {
		return TrustedIssuer{}, errors.New("identity: trusted issuer without a name")
	}
	if err := checkAlgorithms(algorithms); err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: issuer %q: %w", issuer, err)
	}
	u, err := url.Parse(jwksURL)
	if err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: JWKS URL: %w", err)
	}
	if err := checkJWKSURL(u); err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: JWKS URL %q: %w", jwksURL, err)
	}
	// The refresh goroutine starts before the first fetch; if anything
	// below fails, end it rather than leave it polling until ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	trusted := false
	defer func() {
		if !trusted {
			cancel()
		}
	}()
	client := &http.Client{
		Transport:     limitedTransport{base: http.DefaultTransport, max: maxJWKSBytes},
		CheckRedirect: checkJWKSRedirect,
	}
	remote, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
		Client:          client,
		Ctx:             ctx,
		HTTPTimeout:     jwksHTTPTimeout,
		RefreshInterval: jwksRefreshInterval,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			slog.Default().WarnContext(ctx, "identity: refreshing JWK Set failed", "issuer", issuer, "url", jwksURL, "error", err)
		},
	})
	if err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: JWK Set of %q: %w", issuer, err)
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{jwksURL: remote},
		RateLimitWaitMax:  jwksWaitMax,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
	})
	if err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: JWK Set of %q: %w", issuer, err)
	}
	ti, err := trustStorage(ctx, issuer, storage, algorithms)
	trusted = err == nil
	return ti, err
}

// TrustJWKSJSON trusts an issuer by a static JWK Set document, for an
// issuer whose public keys are configured rather than fetched.
func TrustJWKSJSON(issuer string, jwks []byte, algorithms []string) (TrustedIssuer, error) {
	if issuer == "" {
		return TrustedIssuer{}, errors.New("identity: trusted issuer without a name")
	}
	if err := checkAlgorithms(algorithms); err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: issuer %q: %w", issuer, err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(jwks, &set); err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: JWK Set of %q: %w", issuer, err)
	}
	if len(set.Keys) == 0 {
		return TrustedIssuer{}, fmt.Errorf("identity: JWK Set of %q has no keys", issuer)
	}
	storage, err := set.ToStorage()
	if err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: JWK Set of %q: %w", issuer, err)
	}
	return trustStorage(context.Background(), issuer, storage, algorithms)
}

func trustStorage(ctx context.Context, issuer string, storage jwkset.Storage, algorithms []string) (TrustedIssuer, error) {
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: storage, UseWhitelist: signingUses})
	if err != nil {
		return TrustedIssuer{}, fmt.Errorf("identity: key function for %q: %w", issuer, err)
	}
	return TrustedIssuer{
		Issuer:     issuer,
		Keyfunc:    kf.Keyfunc,
		Algorithms: append([]string(nil), algorithms...),
	}, nil
}

// checkJWKSRedirect follows at most five redirects, each to a URL
// checkJWKSURL allows, and never from https to http: a key set asked for
// over TLS is not taken from a plain connection, even on loopback.
func checkJWKSRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("a redirect may not leave https")
	}
	return checkJWKSURL(req.URL)
}

// checkJWKSURL allows https anywhere and http only on loopback, so that
// the keys we trust cannot be swapped on the wire.
func checkJWKSURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("no host")
		}
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("http is allowed only on loopback; use https")
	default:
		return errors.New("scheme must be https")
	}
}

// limitedTransport caps response bodies, so a misbehaving key endpoint
// cannot make us read without end.
type limitedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, t.max), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
