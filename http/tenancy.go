package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/tenancy"
	"github.com/palisadehq/palisade/projections"
)

// tenancyRoutes mounts the routes of organizations, their issuers and quotas, members and service accounts.
func (s *Server) tenancyRoutes(v1 *mux.Router) {
	v1.HandleFunc("/orgs", s.createOrg).Methods(http.MethodPost)
	v1.HandleFunc("/orgs/{id}/quotas", s.setOrgQuotas).Methods(http.MethodPut)
	v1.HandleFunc("/orgs/{id}", s.closeOrg).Methods(http.MethodDelete)
	v1.HandleFunc("/org", s.getOrg).Methods(http.MethodGet)
	v1.HandleFunc("/org/issuers", s.listIssuers).Methods(http.MethodGet)
	v1.HandleFunc("/org/issuers", s.bindIssuer).Methods(http.MethodPut)
	v1.HandleFunc("/org/issuers", s.unbindIssuer).Methods(http.MethodDelete)
	v1.HandleFunc("/members", s.addMember).Methods(http.MethodPost)
	v1.HandleFunc("/members", s.listMembers).Methods(http.MethodGet)
	v1.HandleFunc("/members/{sub}", s.getMember).Methods(http.MethodGet)
	v1.HandleFunc("/members/{sub}", s.changeMember).Methods(http.MethodPut)
	v1.HandleFunc("/members/{sub}", s.removeMember).Methods(http.MethodDelete)
	v1.HandleFunc("/service-accounts", s.createServiceAccount).Methods(http.MethodPost)
	v1.HandleFunc("/service-accounts", s.listServiceAccounts).Methods(http.MethodGet)
	v1.HandleFunc("/service-accounts/{id}", s.revokeServiceAccount).Methods(http.MethodDelete)
	v1.HandleFunc("/service-accounts/{id}/creator", s.reassignServiceAccount).Methods(http.MethodPut)
}

// CreateOrgRequest is the body of POST /v1/orgs.
type CreateOrgRequest struct {
	Name     string `json:"name"`
	OwnerSub string `json:"owner_sub"`
}

type orgCreated struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	OwnerSub    string `json:"owner_sub"`
	Consistency string `json:"consistency,omitempty"`
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) {
	var in CreateOrgRequest
	if !s.decode(w, r, &in) {
		return
	}
	org, err := s.deps.App.Commands.Tenancy.CreateOrg(r.Context(), principalFrom(r.Context()), in.Name, in.OwnerSub)
	if err != nil {
		writeError(w, r, err, "organization")
		return
	}
	consistencyToken := s.afterCommand(w, r, org.Position)
	w.Header().Set("Location", "/v1/org")
	writeJSON(w, http.StatusCreated, orgCreated{ID: org.ID, Name: org.Name, OwnerSub: org.OwnerSub, Consistency: consistencyToken})
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	org, err := s.deps.App.Queries.Tenancy.Org(r.Context(), principalFrom(r.Context()))
	if err != nil {
		writeError(w, r, err, "organization")
		return
	}
	writeJSON(w, http.StatusOK, org)
}

// AddMemberRequest is the body of POST /v1/members. Issuer, when set, is
// an external issuer the organization binds; absent, the member is the
// built-in issuer's.
type AddMemberRequest struct {
	Issuer string   `json:"issuer,omitempty"`
	Sub    string   `json:"sub"`
	Roles  []string `json:"roles"`
}

// ChangeMemberRequest is the body of PUT /v1/members/{sub}.
type ChangeMemberRequest struct {
	Roles []string `json:"roles"`
}

type memberChanged struct {
	Issuer      string   `json:"issuer,omitempty"`
	Sub         string   `json:"sub"`
	Roles       []string `json:"roles"`
	Consistency string   `json:"consistency,omitempty"`
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	var in AddMemberRequest
	if !s.decode(w, r, &in) {
		return
	}
	roles, err := access.ParseRoles(in.Roles)
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	member := tenancy.MemberID{Issuer: in.Issuer, Sub: in.Sub}
	m, err := s.deps.App.Commands.Tenancy.AddMember(r.Context(), principalFrom(r.Context()), member, roles)
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	consistencyToken := s.afterCommand(w, r, m.Position)
	w.Header().Set("Location", memberLocation(member))
	writeJSON(w, http.StatusCreated, memberChanged{Issuer: member.Issuer, Sub: member.Sub, Roles: m.Roles, Consistency: consistencyToken})
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	members, err := s.deps.App.Queries.Tenancy.Members(r.Context(), principalFrom(r.Context()), page)
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	writeList(w, members, page, func(m projections.Member) string { return m.Key() })
}

func (s *Server) getMember(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	member := memberFrom(r)
	m, err := s.deps.App.Queries.Tenancy.Member(r.Context(), principalFrom(r.Context()), member.Issuer, member.Sub)
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) changeMember(w http.ResponseWriter, r *http.Request) {
	var in ChangeMemberRequest
	if !s.decode(w, r, &in) {
		return
	}
	roles, err := access.ParseRoles(in.Roles)
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	member := memberFrom(r)
	m, err := s.deps.App.Commands.Tenancy.ChangeMemberRoles(r.Context(), principalFrom(r.Context()), member, roles)
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	consistencyToken := s.afterCommand(w, r, m.Position)
	writeJSON(w, http.StatusOK, memberChanged{Issuer: member.Issuer, Sub: member.Sub, Roles: m.Roles, Consistency: consistencyToken})
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.Tenancy.RemoveMember(r.Context(), principalFrom(r.Context()), memberFrom(r))
	if err != nil {
		writeError(w, r, err, "member")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

// CreateServiceAccountRequest is the body of POST /v1/service-accounts.
type CreateServiceAccountRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	// TTLSeconds is the token's lifetime; the domain sets the default and
	// the bounds (90 days; 60 seconds to 366 days).
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// seconds converts a count of seconds to a duration, saturating instead of
// wrapping around, so that an absurd ttl_seconds reaches the domain's
// bounds as the absurd value it is.
func seconds(n int64) time.Duration {
	const most = int64(math.MaxInt64 / time.Second)
	switch {
	case n > most:
		return math.MaxInt64
	case n < -most:
		return math.MinInt64
	}
	return time.Duration(n) * time.Second
}

type serviceAccountCreated struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
	Consistency string    `json:"consistency,omitempty"`
}

func (s *Server) createServiceAccount(w http.ResponseWriter, r *http.Request) {
	var in CreateServiceAccountRequest
	if !s.decode(w, r, &in) {
		return
	}
	perms, err := access.ParsePermissions(in.Permissions)
	if err != nil {
		writeError(w, r, err, "service account")
		return
	}
	created, err := s.deps.App.Commands.Tenancy.CreateServiceAccount(r.Context(), principalFrom(r.Context()),
		in.Name, perms, seconds(in.TTLSeconds))
	if err != nil {
		writeError(w, r, err, "service account")
		return
	}
	consistencyToken := s.afterCommand(w, r, created.Position)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, serviceAccountCreated{
		ID: created.ID, Name: created.Name, Permissions: created.Permissions, Token: created.Token,
		ExpiresAt: created.ExpiresAt, Consistency: consistencyToken,
	})
}

func (s *Server) listServiceAccounts(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	accounts, err := s.deps.App.Queries.Tenancy.ServiceAccounts(r.Context(), principalFrom(r.Context()), page)
	if err != nil {
		writeError(w, r, err, "service account")
		return
	}
	writeList(w, accounts, page, func(a projections.ServiceAccount) string { return a.ID })
}

func (s *Server) revokeServiceAccount(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.Tenancy.RevokeServiceAccount(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "service account")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

// ReassignServiceAccountRequest is the body of PUT
// /v1/service-accounts/{id}/creator: the member the account answers to from
// now on (issuer omitted for the built-in issuer).
type ReassignServiceAccountRequest struct {
	Sub    string `json:"sub"`
	Issuer string `json:"issuer,omitempty"`
}

type serviceAccountReassigned struct {
	ID          string `json:"id"`
	CreatedBy   string `json:"created_by"`
	Consistency string `json:"consistency,omitempty"`
}

func (s *Server) reassignServiceAccount(w http.ResponseWriter, r *http.Request) {
	var in ReassignServiceAccountRequest
	if !s.decode(w, r, &in) {
		return
	}
	to := tenancy.MemberID{Issuer: in.Issuer, Sub: in.Sub}
	res, err := s.deps.App.Commands.Tenancy.ReassignServiceAccount(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"], to)
	if err != nil {
		writeError(w, r, err, "service account")
		return
	}
	token := s.afterCommand(w, r, res.Position)
	writeJSON(w, http.StatusOK, serviceAccountReassigned{ID: res.ID, CreatedBy: to.Subject(), Consistency: token})
}

// decode reads the JSON body into v, answering the request on failure.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := decodeJSON(r, v); err != nil {
		writeError(w, r, err, "request")
		return false
	}
	return true
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) (projections.Page, bool) {
	if !s.awaitConsistency(w, r) {
		return projections.Page{}, false
	}
	page, err := pageFrom(r)
	if err != nil {
		writeError(w, r, err, "page")
		return page, false
	}
	return page, true
}

// listBody is every list response: the items and, when the page was
// full, the cursor for the next one.
type listBody[T any] struct {
	Items     []T    `json:"items"`
	NextAfter string `json:"next_after,omitempty"`
}

func writeList[T any](w http.ResponseWriter, items []T, page projections.Page, key func(T) string) {
	body := listBody[T]{Items: items}
	if len(items) == projections.PageLimit(page.Limit) && len(items) > 0 {
		body.NextAfter = key(items[len(items)-1])
	}
	writeJSON(w, http.StatusOK, body)
}
