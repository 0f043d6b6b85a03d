package identity

import (
	"errors"
	"strings"
)

// ErrInvalidToken matches every verification failure: errors.Is(err,
// ErrInvalidToken) is true for each error Verify returns, and the HTTP layer
// answers it with 401.
var ErrInvalidToken = errors.New("invalid token")

// Reasons a token is refused: short, stable codes for logs and metrics. They
// are never shown to the caller in more detail than "invalid token".
const (
	ReasonMalformed     = "malformed"      // not three base64url segments of JSON
	ReasonTooLarge      = "too_large"      // longer than MaxTokenBytes
	ReasonBadHeader     = "bad_header"     // a header we refuse: crit, jku, x5u, jwk, x5c
	ReasonAlgorithm     = "algorithm"      // alg not pinned for the issuer (none, HS256, …)
	ReasonUnknownKey    = "unknown_key"    // kid missing, malformed or not in the trusted key set
	ReasonBadSignature  = "bad_signature"  // signature does not verify with the selected key
	ReasonWrongIssuer   = "wrong_issuer"   // iss missing or not a trusted issuer
	ReasonWrongAudience = "wrong_audience" // aud missing or not ours
	ReasonExpired       = "expired"        // exp is past, beyond the leeway
	ReasonNotYetValid   = "not_yet_valid"  // nbf or iat is in the future, beyond the leeway
	ReasonBadClaims     = "bad_claims"     // a claim is missing, mistyped or out of range
)

// TokenError says why a token was refused. Reason is one of the Reason*
// codes; Err carries detail for logs. Error never contains the token and
// clips whatever detail it prints, because parts of it (a kid, an issuer)
// come from the caller.
type TokenError struct {
	Reason string
	Err    error
}

// maxDetail bounds the detail Error prints.
const maxDetail = 160

func (e *TokenError) Error() string {
	if e.Err == nil {
		return "invalid token: " + e.Reason
	}
	return "invalid token: " + e.Reason + ": " + clip(e.Err.Error(), maxDetail)
}

// Is makes errors.Is(err, ErrInvalidToken) hold for every TokenError.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// Unwrap returns the detail, so callers can still match the golang-jwt
// sentinel errors (jwt.ErrTokenExpired, …).
func (e *TokenError) Unwrap() error { return e.Err }

func refuse(reason string, err error) *TokenError { return &TokenError{Reason: reason, Err: err} }

// clip makes caller-controlled text safe to log: printable ASCII only
// (anything else becomes '?'), at most n bytes.
func clip(s string, n int) string {
	truncated := false
	if len(s) > n {
		s, truncated = s[:n], true
	}
	var b strings.Builder
	b.Grow(len(s) + 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	if truncated {
		b.WriteString("...")
	}
	return b.String()
}

// quote clips a caller-supplied value for use inside an error message.
func quote(s string) string { return `"` + clip(s, 32) + `"` }
