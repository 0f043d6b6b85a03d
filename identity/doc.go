// Package identity owns bearer tokens: the built-in issuer (a set of
// Ed25519 keys named by kid, one of which signs: the data directory's one
// key by default, or a JWK Set file every replica shares, see [NewIssuer]
// and [ReadIssuerKeys]; all published as a JWK Set, and replaced in one
// step by [Issuer.Swap] while in use), the trust in external
// OIDC issuers (by JWKS URL or a static JWK Set), and the Verifier that turns
// a raw JWT into typed [Claims] or a [*TokenError].
//
// Verification is strict on purpose (RFC 8725): algorithms are pinned per
// issuer and only asymmetric ones are accepted, issuer, audience, expiry and
// issued-at are required, keys are selected only by "kid" from the trusted
// key set (jku, x5u, jwk, x5c and crit headers are refused, never fetched),
// and oversized tokens are refused before any parsing.
//
// It must never decide permissions. A token says who the caller is (sub,
// kind, org) and may narrow what it can do (scope); roles come from the
// membership read model at request time, and domain/access.Decide judges.
// This package only checks that scope names are well-formed, not what they
// mean. Nor does it decide which organizations an external issuer may
// assert: it marks each verified token as built-in or external
// (Claims.BuiltIn) and refuses service tokens from external issuers; the
// organizations bind the external issuers they trust (domain/tenancy).
package identity
