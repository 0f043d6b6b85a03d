package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/palisadehq/palisade/conversation"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
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

// problemKind is one row of the table from error kinds to problems.
type problemKind struct {
	is     func(error) bool
	status int
	kind   string
	// detail is what the caller reads; notFound names what was asked for.
	detail func(err error, notFound string) string
}

// isAny reports whether err is one of targets.
func isAny(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

func fixed(detail string) func(error, string) string {
	return func(error, string) string { return detail }
}

func ownDetail(err error, _ string) string { return publicDetail(err) }

// problemKinds is the one place error kinds become status codes; the first
// matching row wins. Not-found answers never echo what was asked for, so a
// resource of another organization answers exactly like one that never
// existed.
var problemKinds = []problemKind{
	{func(err error) bool {
		var u unreadableDocument
		return errors.As(err, &u)
	}, http.StatusUnprocessableEntity, "invalid", ownDetail},
	{isAny(ErrUploadTooLarge), http.StatusRequestEntityTooLarge, "too-large",
		fixed(fmt.Sprintf("documents are limited to %d bytes", MaxUploadBytes))},
	{func(err error) bool {
		var tooLarge *http.MaxBytesError
		return errors.As(err, &tooLarge) || errors.Is(err, domain.ErrTooLarge)
	}, http.StatusRequestEntityTooLarge, "too-large", fixed("request body is too large")},
	{isAny(errUnsupportedMedia), http.StatusUnsupportedMediaType, "unsupported-media-type",
		fixed("Content-Type must be application/json")},
	{isAny(ErrUnsupportedType, ErrPDFAsJSON), http.StatusUnsupportedMediaType, "unsupported-media-type", ownDetail},
	{isAny(domain.ErrNotFound), http.StatusNotFound, "not-found",
		func(_ error, notFound string) string { return notFound + " not found" }},
	{isAny(domain.ErrForbidden, access.ErrNoScope), http.StatusForbidden, "forbidden", ownDetail},
	{isAny(domain.ErrInvalid, access.ErrUnknownPermission, access.ErrInvalidRole), http.StatusUnprocessableEntity, "invalid", ownDetail},
	{isAny(domain.ErrQuotaExceeded), http.StatusConflict, "quota-exceeded", ownDetail},
	{isAny(domain.ErrConflict), http.StatusConflict, "conflict", ownDetail},
	{isAny(eventstore.ErrConflict), http.StatusConflict, "conflict", fixed("the resource changed concurrently; retry the request")},
	{isAny(errBadRequest), http.StatusBadRequest, "bad-request", ownDetail},
	{isAny(conversation.ErrTurnFailed), http.StatusBadGateway, "turn-failed", ownDetail},
	{isAny(conversation.ErrTurnCancelled), 499, "cancelled", ownDetail},
}

// writeError answers with the problem of err's kind (see problemKinds);
// an error of no known kind is logged and answers 500.
func writeError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	p, retryAfter := problemFor(r, err, notFound)
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	writeProblem(w, r, p.Status, strings.TrimPrefix(p.Type, problemBase), p.Detail)
}

// problemFor is the problem err answers (see problemKinds), and for a
// limit that frees up with time how long to wait; an error of no known
// kind is logged and is a 500.
func problemFor(r *http.Request, err error, notFound string) (Problem, time.Duration) {
	problem := func(status int, kind, detail string) Problem {
		return Problem{Type: problemBase + kind, Title: http.StatusText(status), Status: status, Detail: detail}
	}
	if rl, ok := asRetryLater(err); ok {
		return problem(http.StatusTooManyRequests, "rate-limited", publicDetail(err)), rl.RetryAfter()
	}
	for _, k := range problemKinds {
		if k.is(err) {
			return problem(k.status, k.kind, k.detail(err, notFound)), 0
		}
	}
	loggerFrom(r.Context()).Error("request failed", "err", err)
	return problem(http.StatusInternalServerError, "internal", "internal error"), 0
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

// unreadableDocument is an extractor's failure to read an upload for any
// reason but its size or type.
type unreadableDocument struct{ err error }

func (u unreadableDocument) Error() string { return "the document could not be read: " + u.err.Error() }
func (u unreadableDocument) Unwrap() error { return u.err }
