package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/projections"
)

// jobRoutes mounts the routes of the processes' jobs.
func (s *Server) jobRoutes(v1 *mux.Router) {
	v1.HandleFunc("/jobs", s.listJobs).Methods(http.MethodGet)
	v1.HandleFunc("/jobs/{id}", s.getJob).Methods(http.MethodGet)
}

// maxJobFilter bounds the kind and state a job list is filtered by.
const maxJobFilter = 64

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var filter projections.JobFilter
	for name, dst := range map[string]*string{"kind": &filter.Kind, "state": &filter.State} {
		switch values := q[name]; {
		case len(values) > 1:
			writeError(w, r, fmt.Errorf("%w: %s is given %d times; give it once", errBadRequest, name, len(values)), "jobs")
			return
		case len(values) == 1 && len(values[0]) > maxJobFilter:
			writeError(w, r, fmt.Errorf("%w: %s is longer than %d bytes", errBadRequest, name, maxJobFilter), "jobs")
			return
		case len(values) == 1:
			*dst = values[0]
		}
	}
	list, err := s.deps.App.Queries.Jobs.List(r.Context(), principalFrom(r.Context()), filter, page)
	if err != nil {
		writeError(w, r, err, "jobs")
		return
	}
	writeList(w, list, page, func(j projections.Job) string { return j.ID })
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	j, err := s.deps.App.Queries.Jobs.Get(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "job")
		return
	}
	writeJSON(w, http.StatusOK, j)
}
