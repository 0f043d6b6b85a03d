package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/domain/bots"
	"github.com/palisadehq/palisade/projections"
)

// botRoutes mounts the routes of bots.
func (s *Server) botRoutes(v1 *mux.Router) {
	v1.HandleFunc("/bots", s.createBot).Methods(http.MethodPost)
	v1.HandleFunc("/bots", s.listBots).Methods(http.MethodGet)
	v1.HandleFunc("/bots/{id}", s.getBot).Methods(http.MethodGet)
	v1.HandleFunc("/bots/{id}", s.updateBot).Methods(http.MethodPatch)
	v1.HandleFunc("/bots/{id}", s.archiveBot).Methods(http.MethodDelete)
}

// CreateBotRequest is the body of POST /v1/bots.
type CreateBotRequest struct {
	Name         string      `json:"name"`
	Instructions string      `json:"instructions"`
	Grants       bots.Grants `json:"grants"`
}

// UpdateBotRequest is the body of PATCH /v1/bots/{id}; absent fields stay.
type UpdateBotRequest struct {
	Name         *string      `json:"name"`
	Instructions *string      `json:"instructions"`
	Grants       *bots.Grants `json:"grants"`
}

type botBody struct {
	projections.Bot
	Consistency string `json:"consistency,omitempty"`
}

func (s *Server) createBot(w http.ResponseWriter, r *http.Request) {
	var in CreateBotRequest
	if !s.decode(w, r, &in) {
		return
	}
	who := principalFrom(r.Context())
	created, err := s.deps.App.Commands.Bots.CreateBot(r.Context(), who, in.Name, in.Instructions, in.Grants)
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	consistencyToken := s.afterCommand(w, r, created.Position)
	w.Header().Set("Location", "/v1/bots/"+created.ID)
	b := created.Bot
	writeJSON(w, http.StatusCreated, botBody{Bot: projections.Bot{
		ID: created.ID, Name: b.Name, Instructions: b.Instructions, Grants: b.Grants, CreatedBy: who.Subject,
		CreatedAt: created.At, UpdatedAt: created.At, Version: created.Version,
	}, Consistency: consistencyToken})
}

func (s *Server) listBots(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	includeArchived, err := boolParam(r, "include_archived")
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	list, err := s.deps.App.Queries.Bots.Bots(r.Context(), principalFrom(r.Context()), page, includeArchived)
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	writeList(w, list, page, func(b projections.Bot) string { return b.ID })
}

func (s *Server) getBot(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	b, err := s.deps.App.Queries.Bots.Bot(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	writeJSON(w, http.StatusOK, botBody{Bot: b})
}

func (s *Server) updateBot(w http.ResponseWriter, r *http.Request) {
	var in UpdateBotRequest
	if !s.decode(w, r, &in) {
		return
	}
	who := principalFrom(r.Context())
	id := mux.Vars(r)["id"]
	res, err := s.deps.App.Commands.Bots.UpdateBot(r.Context(), who, id, in.Name, in.Instructions, in.Grants)
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	b, err := s.deps.App.Queries.Bots.ManagedBot(r.Context(), who, id)
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	writeJSON(w, http.StatusOK, botBody{Bot: b, Consistency: consistencyToken})
}

func (s *Server) archiveBot(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.Bots.ArchiveBot(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "bot")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

// auditBody is a page of audit events: each carries its organization's
// sequence, never the global log position, and next_after is a sequence.
type auditBody struct {
	Items     []projections.AuditEvent `json:"items"`
	NextAfter string                   `json:"next_after,omitempty"`
}

func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	q := r.URL.Query()
	aq := projections.AuditQuery{
		Stream:        q.Get("stream"),
		Actor:         q.Get("actor"),
		CorrelationID: q.Get("correlation_id"),
	}
	for _, t := range q["type"] {
		aq.Types = append(aq.Types, strings.Split(t, ",")...)
	}
	var err error
	if v := q.Get("after"); v != "" {
		if aq.After, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, r, fmt.Errorf("%w: after must be an event's sequence (a page's next_after)", errBadRequest), "event")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if aq.Limit, err = strconv.Atoi(v); err != nil || aq.Limit < 1 || aq.Limit > projections.MaxPageLimit {
			writeError(w, r, fmt.Errorf("%w: limit must be between 1 and %d", errBadRequest, projections.MaxPageLimit), "event")
			return
		}
	}
	page, err := s.deps.App.Queries.Audit.AuditEvents(r.Context(), principalFrom(r.Context()), aq)
	if err != nil {
		writeError(w, r, err, "event")
		return
	}
	body := auditBody{Items: page}
	if len(page) == projections.PageLimit(aq.Limit) {
		body.NextAfter = strconv.FormatUint(page[len(page)-1].Sequence, 10)
	}
	writeJSON(w, http.StatusOK, body)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s must be true or false", errBadRequest, name)
	}
	return b, nil
}
