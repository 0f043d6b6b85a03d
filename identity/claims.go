package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
)

// Kinds of token subject. They are the token-level subset of access.Kind:
// bots and workflows never hold tokens, they act by delegation.
const (
	KindUser     = string(access.KindUser)
	KindService  = string(access.KindService)
	KindPlatform = string(access.KindPlatform)
)

// Limits on claim values. Tokens are small by design; anything longer is a
// mistake or an attack.
const (
	maxOrgLen       = 128
	maxIDLen        = 256
	maxScopeNames   = 64
	maxScopeNameLen = 128
)

// Claims are Palisade's typed token claims (never jwt.MapClaims).
type Claims struct {
	jwt.RegisteredClaims        // sub, iss, aud, exp, iat, nbf, jti
	Org                  string `json:"org,omitempty"`
	// Kind is "user", "service" or "platform".
	Kind string `json:"kind"`
	// Scope is a space-separated list of permission names. It can only
	// narrow what the principal's roles or grants allow; an absent scope
	// narrows nothing. Its names are checked for syntax here and parsed
	// into permissions by the caller.
	Scope string `json:"scope,omitempty"`
	// BuiltIn is set by Verify, never read from the token: the token was
	// signed by the deployment's built-in issuer. Otherwise it came from an
	// external issuer, whose users are members of that issuer only.
	BuiltIn bool `json:"-"`
}

// ScopeNames returns the names in Scope, or nil when the token carries no
// scope (nothing is narrowed).
func (c Claims) ScopeNames() []string {
	if c.Scope == "" {
		return nil
	}
	return strings.Fields(c.Scope)
}

var errClaims = errors.New("claims")

// validate checks the Palisade claims that golang-jwt does not know:
// subject, kind, organization, scope. allowPlatform says whether the issuer
// may speak for the platform, builtIn whether it is the deployment's own
// (the only one that may assert a service account).
func (c *Claims) validate(allowPlatform, builtIn bool) error {
	if err := checkSubject(c.Subject); err != nil {
		return err
	}
	if c.IssuedAt == nil {
		return fmt.Errorf("%w: iat is required", errClaims)
	}
	if len(c.ID) > maxIDLen || !utf8.ValidString(c.ID) {
		return fmt.Errorf("%w: jti is too long or not UTF-8", errClaims)
	}
	switch c.Kind {
	case KindService:
		if !builtIn {
			return fmt.Errorf("%w: only the built-in issuer mints service account tokens", errClaims)
		}
		if err := checkOrg(c.Org); err != nil {
			return err
		}
	case KindUser:
		if err := checkOrg(c.Org); err != nil {
			return err
		}
	case KindPlatform:
		if !allowPlatform {
			return fmt.Errorf("%w: issuer may not mint platform tokens", errClaims)
		}
		if c.Org != "" {
			return fmt.Errorf("%w: a platform token carries no org", errClaims)
		}
	default:
		return fmt.Errorf("%w: kind %s is not user, service or platform", errClaims, quote(c.Kind))
	}
	return checkScope(c.Scope)
}

// checkSubject accepts what domain.CheckSubject accepts: a token whose
// subject could never name a member (for example "p/q" or "..") is refused
// here, so it answers 401 like any other malformed token.
func checkSubject(sub string) error {
	if err := domain.CheckSubject("sub", sub); err != nil {
		return fmt.Errorf("%w: %w", errClaims, err)
	}
	return nil
}

// checkOrg accepts what a stream name can embed as an organization: 1–128
// characters of [A-Za-z0-9.:-] (no underscore, which ends the org in a
// stream name), and never the platform scope.
func checkOrg(org string) error {
	if org == "" {
		return fmt.Errorf("%w: org is required for user and service tokens", errClaims)
	}
	if len(org) > maxOrgLen || org == access.PlatformScope {
		return fmt.Errorf("%w: org %s is not an organization id", errClaims, quote(org))
	}
	for i := 0; i < len(org); i++ {
		c := org[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == ':'
		if !ok {
			return fmt.Errorf("%w: org %s is not an organization id", errClaims, quote(org))
		}
	}
	return nil
}

// checkScope accepts an empty scope (absent) or 1–64 names separated by
// single spaces, each 1–128 characters of [A-Za-z0-9:._/-]: permission
// names ("kb:read") and the usual OAuth scope tokens ("openid", URLs).
func checkScope(scope string) error {
	if scope == "" {
		return nil
	}
	names := 0
	for name := range strings.SplitSeq(scope, " ") {
		names++
		if names > maxScopeNames {
			return fmt.Errorf("%w: scope has more than %d names", errClaims, maxScopeNames)
		}
		if name == "" || len(name) > maxScopeNameLen {
			return fmt.Errorf("%w: scope names are 1 to %d characters separated by single spaces", errClaims, maxScopeNameLen)
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == ':' || c == '.' || c == '_' || c == '/' || c == '-'
			if !ok {
				return fmt.Errorf("%w: scope name %s has a character outside [A-Za-z0-9:._/-]", errClaims, quote(name))
			}
		}
	}
	return nil
}
