package access

import "strings"

// A member is identified by the issuer that vouches for it and its subject
// there. The deployment's built-in issuer is the empty issuer "": its
// members act under their plain sub, as they always have. A member of an
// external issuer acts under "ISSUER|SUB", so that the same sub from two
// issuers is two principals everywhere a principal's subject is used
// (resource grants, event actors, idempotency keys, audit filters).
//
// The form is unambiguous because external issuers are URLs without '|'
// (see CheckExternalIssuer) and a built-in member's sub may not take the
// external form (see ExternalForm).

// issuerSeparator ends the issuer in an external principal subject.
const issuerSeparator = "|"

// MaxIssuerLen bounds an external issuer's name.
const MaxIssuerLen = 256

// PrincipalSubject returns the subject a member of issuer acts under: sub
// itself for the built-in issuer (""), "ISSUER|SUB" for an external one.
func PrincipalSubject(issuer, sub string) string {
	if issuer == "" {
		return sub
	}
	return issuer + issuerSeparator + sub
}

// SplitPrincipalSubject is the inverse of PrincipalSubject: the issuer (""
// for the built-in one) and the sub of a principal subject.
func SplitPrincipalSubject(s string) (issuer, sub string) {
	if iss, rest, ok := strings.Cut(s, issuerSeparator); ok && looksLikeIssuer(iss) {
		return iss, rest
	}
	return "", s
}

// ExternalForm reports whether s has the form of an external principal
// subject ("scheme://…|…"). A built-in member's sub may not have it, or it
// could be mistaken for a member of that issuer.
func ExternalForm(s string) bool {
	iss, _, ok := strings.Cut(s, issuerSeparator)
	return ok && looksLikeIssuer(iss)
}

// looksLikeIssuer: a URL's "scheme://" start, the scheme being letters,
// digits, '+', '-' or '.' after a letter (RFC 3986 §3.1).
func looksLikeIssuer(s string) bool {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// CheckExternalIssuer reports whether issuer can name an external issuer:
// an absolute URL ("scheme://host…", as OpenID Connect requires of an iss)
// of at most MaxIssuerLen bytes of printable ASCII without spaces or '|'.
func CheckExternalIssuer(issuer string) bool {
	if len(issuer) > MaxIssuerLen || !looksLikeIssuer(issuer) {
		return false
	}
	for i := 0; i < len(issuer); i++ {
		if c := issuer[i]; c <= ' ' || c > '~' || c == '|' {
			return false
		}
	}
	return true
}
