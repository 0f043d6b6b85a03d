package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// CorrelationID lets a caller quote the request to an operator.
	CorrelationID string `json:"correlation_id,omitempty"`
}

const problemBase = "https://palisade.dev/problems/"

// writeProblem answers with a problem+json body.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, kind, detail string) {
	p := Problem{
		Type:          problemBase + kind,
		Title:         http.StatusText(status),
		Status:        status,
		Detail:        detail,
		CorrelationID: w.Header().Get(headerCorrelationID),
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError maps an error from the command or query side to a problem.
// This is the one place error kinds become status codes. Not-found
// answers never echo what was asked for, so a resource of another
// organization answers exactly like one that never existed.
func writeError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	var tooLarge *http.MaxBytesError
	if rl, ok := asRetryLater(err); ok {
		writeRetryLater(w, r, rl.RetryAfter(), publicDetail(err))
		return
	}
	switch {
	case errors.As(err, &tooLarge), errors.Is(err, domain.ErrTooLarge):
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "too-large", "request body is too large")
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, projections.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "not-found", notFound+" not found")
	case errors.Is(err, domain.ErrForbidden), errors.Is(err, access.ErrNoScope):
		writeProblem(w, r, http.StatusForbidden, "forbidden", publicDetail(err))
	case errors.Is(err, domain.ErrInvalid), errors.Is(err, access.ErrUnknownPermission), errors.Is(err, access.ErrInvalidRole):
		writeProblem(w, r, http.StatusUnprocessableEntity, "invalid", publicDetail(err))
	case errors.Is(err, domain.ErrQuotaExceeded):
		writeProblem(w, r, http.StatusConflict, "quota-exceeded", publicDetail(err))
	case errors.Is(err, domain.ErrConflict):
		writeProblem(w, r, http.StatusConflict, "conflict", publicDetail(err))
	case errors.Is(err, eventstore.ErrConflict):
		writeProblem(w, r, http.StatusConflict, "conflict", "the resource changed concurrently; retry the request")
	case errors.Is(err, errBadRequest):
		writeProblem(w, r, http.StatusBadRequest, "bad-request", publicDetail(err))
	default:
		loggerFrom(r.Context()).Error("request failed", "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "internal error")
	}
}

// publicDetail returns the error's message, which for domain errors is
// written for the caller and holds no other organization's data.
func publicDetail(err error) string {
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return msg
}

var errBadRequest = errors.New("bad request")
