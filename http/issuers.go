package httpapi

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/identity"
	"github.com/palisadehq/palisade/projections"
)

// An issuer is a URL, so the API takes it in the query (?issuer=…,
// percent-encoded) rather than in a path segment: a decoded "//" in a path
// is cleaned and redirected by the router, and an encoded one would need
// the whole router to match on raw paths.

// memberFrom reads the member a /v1/members/{sub} route addresses: the
// path's sub, of the issuer in ?issuer= (absent or empty: the built-in
// issuer).
func memberFrom(r *http.Request) tenancy.MemberID {
	return tenancy.MemberID{Issuer: r.URL.Query().Get("issuer"), Sub: mux.Vars(r)["sub"]}
}

// memberLocation is the URL of a member.
func memberLocation(m tenancy.MemberID) string {
	loc := "/v1/members/" + url.PathEscape(m.Sub)
	if m.Issuer != "" {
		loc += "?issuer=" + url.QueryEscape(m.Issuer)
	}
	return loc
}

// credentialIssuer is the issuer principal resolution is given: "" for the
// built-in issuer, the token's iss for an external one.
func credentialIssuer(c identity.Claims) string {
	if c.BuiltIn {
		return ""
	}
	return c.Issuer
}

// issuerBound is what binding an issuer answers.
type issuerBound struct {
	Issuer      string `json:"issuer"`
	Consistency string `json:"consistency,omitempty"`
}

func (s *Server) listIssuers(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	issuers, err := s.deps.App.Queries.Tenancy.Issuers(r.Context(), principalFrom(r.Context()))
	if err != nil {
		writeError(w, r, err, "issuer")
		return
	}
	writeJSON(w, http.StatusOK, listBody[projections.IssuerBinding]{Items: issuers})
}

func (s *Server) bindIssuer(w http.ResponseWriter, r *http.Request) {
	issuer := r.URL.Query().Get("issuer")
	var trust commands.IssuerTrust = trustNone{}
	if s.deps.Issuers != nil {
		trust = s.deps.Issuers
	}
	res, err := s.deps.App.Commands.Tenancy.BindIssuer(r.Context(), principalFrom(r.Context()), trust, issuer)
	if err != nil {
		writeError(w, r, err, "issuer")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	writeJSON(w, http.StatusOK, issuerBound{Issuer: issuer, Consistency: consistencyToken})
}

func (s *Server) unbindIssuer(w http.ResponseWriter, r *http.Request) {
	issuer := r.URL.Query().Get("issuer")
	res, err := s.deps.App.Commands.Tenancy.UnbindIssuer(r.Context(), principalFrom(r.Context()), issuer)
	if err != nil {
		writeError(w, r, err, "issuer")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

// trustNone trusts no external issuer: a server wired without Deps.Issuers
// lets no organization bind one.
type trustNone struct{}

func (trustNone) TrustsExternal(string) bool { return false }

// deniedSubject is the subject an authentication denial records: the
// principal subject the token claimed (access.PrincipalSubject).
func deniedSubject(c identity.Claims) string {
	return access.PrincipalSubject(credentialIssuer(c), c.Subject)
}
