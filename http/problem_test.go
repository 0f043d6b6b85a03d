package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/eventstore"
	"github.com/palisadehq/palisade/projections"
)

// TestWriteErrorTable holds the one table from error kinds to problems:
// each kind answers one status with a detail fit for the caller, and
// not-found never echoes what the error said.
func TestWriteErrorTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		kind   string
		detail string
	}{
		{"domain not found", fmt.Errorf("%w: bot", domain.ErrNotFound), http.StatusNotFound, "not-found", "bot not found"},
		{"read model not found is the same error", fmt.Errorf("bot %q of org-b: %w", "b-1", projections.ErrNotFound), http.StatusNotFound, "not-found", "bot not found"},
		{"forbidden", fmt.Errorf("%w: role viewer lacks bots:manage", domain.ErrForbidden), http.StatusForbidden, "forbidden", "forbidden: role viewer lacks bots:manage"},
		{"no scope", access.ErrNoScope, http.StatusForbidden, "forbidden", access.ErrNoScope.Error()},
		{"invalid", fmt.Errorf("%w: name is required", domain.ErrInvalid), http.StatusUnprocessableEntity, "invalid", "invalid input: name is required"},
		{"unknown permission", access.ErrUnknownPermission, http.StatusUnprocessableEntity, "invalid", access.ErrUnknownPermission.Error()},
		{"domain conflict", fmt.Errorf("%w: bot is archived", domain.ErrConflict), http.StatusConflict, "conflict", "conflict: bot is archived"},
		{"lost race", fmt.Errorf("append: %w", eventstore.ErrConflict), http.StatusConflict, "conflict", "the resource changed concurrently; retry the request"},
		{"bad request", fmt.Errorf("%w: limit must be between 1 and 500", errBadRequest), http.StatusBadRequest, "bad-request", "bad request: limit must be between 1 and 500"},
		{"body too large", &http.MaxBytesError{Limit: 1}, http.StatusRequestEntityTooLarge, "too-large", "request body is too large"},
		{"upload too large", fmt.Errorf("%w: 9 MB", ErrUploadTooLarge), http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("documents are limited to %d bytes", MaxUploadBytes)},
		{"json required", fmt.Errorf("%w: text/plain", errUnsupportedMedia), http.StatusUnsupportedMediaType, "unsupported-media-type", "Content-Type must be application/json"},
		{"document type", fmt.Errorf("%w: image/png", ErrUnsupportedType), http.StatusUnsupportedMediaType, "unsupported-media-type", "unsupported document type: image/png"},
		{"pdf as json", ErrPDFAsJSON, http.StatusUnsupportedMediaType, "unsupported-media-type", "upload PDF documents as multipart/form-data"},
		{"unreadable document", unreadableDocument{errors.New("broken xref table")}, http.StatusUnprocessableEntity, "invalid", "the document could not be read: broken xref table"},
		{"unreadable even if invalid inside", unreadableDocument{fmt.Errorf("%w: empty", domain.ErrInvalid)}, http.StatusUnprocessableEntity, "invalid", "the document could not be read: invalid input: empty"},
		{"anything else", errors.New("disk on fire"), http.StatusInternalServerError, "internal", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			writeError(w, httptest.NewRequest(http.MethodGet, "/v1/bots/x", nil), tt.err, "bot")
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if w.Code != tt.status || p.Status != tt.status || p.Type != problemBase+tt.kind || p.Detail != tt.detail {
				t.Fatalf("got %d %+v, want %d %s %q", w.Code, p, tt.status, tt.kind, tt.detail)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q", ct)
			}
		})
	}
}
