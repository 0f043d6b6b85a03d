package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/domain/tenancy"
)

// quotasSet is the answer of PUT /v1/orgs/{id}/quotas.
type quotasSet struct {
	OrgID       string                 `json:"org_id"`
	Quotas      tenancy.QuotaOverrides `json:"quotas"`
	Consistency string                 `json:"consistency,omitempty"`
}

// setOrgQuotas replaces an organization's quota overrides (platform only).
// The body is the whole set: a field left out falls back to the
// deployment's default, 0 means unlimited.
func (s *Server) setOrgQuotas(w http.ResponseWriter, r *http.Request) {
	var in tenancy.QuotaOverrides
	if !s.decode(w, r, &in) {
		return
	}
	id := mux.Vars(r)["id"]
	res, err := s.deps.App.Commands.Tenancy.SetOrganizationQuotas(r.Context(), principalFrom(r.Context()), id, in)
	if err != nil {
		writeError(w, r, err, "organization")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	writeJSON(w, http.StatusOK, quotasSet{OrgID: id, Quotas: in, Consistency: consistencyToken})
}
