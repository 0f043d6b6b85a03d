package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"
)

// closeOrgRequest is the body of DELETE /v1/orgs/{id}.
type closeOrgRequest struct {
	// Confirm must be the organization's name.
	Confirm string `json:"confirm"`
}

// orgClosed is the answer of DELETE /v1/orgs/{id}.
type orgClosed struct {
	OrgID       string `json:"org_id"`
	Closed      bool   `json:"closed"`
	Consistency string `json:"consistency,omitempty"`
}

// closeOrg closes an organization and destroys its data key (platform
// only). A missing or wrong confirmation is 422, an unknown organization
// 404, one already closed 409. It answers once the read models have
// dropped the organization's rows.
func (s *Server) closeOrg(w http.ResponseWriter, r *http.Request) {
	var in closeOrgRequest
	if !s.decode(w, r, &in) {
		return
	}
	id := mux.Vars(r)["id"]
	res, err := s.deps.App.Commands.Tenancy.CloseOrg(r.Context(), principalFrom(r.Context()), id, in.Confirm)
	if err != nil {
		writeError(w, r, err, "organization")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	writeJSON(w, http.StatusOK, orgClosed{OrgID: id, Closed: true, Consistency: consistencyToken})
}
