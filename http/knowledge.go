package httpapi

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/palisadehq/palisade/commands"
	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/knowledge"
	"github.com/palisadehq/palisade/projections"
)

// knowledgeRoutes mounts the routes of knowledge bases, their documents and search.
func (s *Server) knowledgeRoutes(v1 *mux.Router) {
	v1.HandleFunc("/knowledge-bases", s.createKnowledgeBase).Methods(http.MethodPost)
	v1.HandleFunc("/knowledge-bases", s.listKnowledgeBases).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/search", s.search).Methods(http.MethodPost)
	v1.HandleFunc("/knowledge-bases/{id}", s.getKnowledgeBase).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/{id}", s.updateKnowledgeBase).Methods(http.MethodPatch)
	v1.HandleFunc("/knowledge-bases/{id}", s.archiveKnowledgeBase).Methods(http.MethodDelete)
	v1.HandleFunc("/knowledge-bases/{id}/grants", s.setKnowledgeBaseGrants).Methods(http.MethodPut)
	v1.HandleFunc("/knowledge-bases/{id}/documents", s.addDocument).Methods(http.MethodPost)
	v1.HandleFunc("/knowledge-bases/{id}/documents", s.listDocuments).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/{id}/documents/{doc}", s.getDocument).Methods(http.MethodGet)
	v1.HandleFunc("/knowledge-bases/{id}/documents/{doc}", s.replaceDocument).Methods(http.MethodPut)
	v1.HandleFunc("/knowledge-bases/{id}/documents/{doc}", s.deleteDocument).Methods(http.MethodDelete)
}

// MaxUploadBytes bounds a document upload (multipart or JSON).
const MaxUploadBytes = 8 << 20

// Errors a document extractor returns, mapped to 413 and 415.
var (
	ErrUploadTooLarge  = errors.New("document too large")
	ErrUnsupportedType = errors.New("unsupported document type")
)

// ErrPDFAsJSON refuses a PDF sent inside a JSON body (415): PDFs are
// binary. A DocumentExtractor's Text returns it for a PDF under any of
// its media types, so that every PDF goes through the upload, which
// counts it against its organization's parses.
var ErrPDFAsJSON = errors.New("upload PDF documents as multipart/form-data")

// DocumentExtractor turns uploaded documents into text.
type DocumentExtractor interface {
	// Text extracts the text of data of contentType, the content of a
	// JSON body, for as long as ctx (the request's) lasts; a PDF is
	// ErrPDFAsJSON.
	Text(ctx context.Context, contentType string, data []byte) (string, error)
	// Upload reads one multipart upload: title, content type and text.
	Upload(r *http.Request, maxBytes int64) (commands.DocumentInput, error)
}

// CreateKnowledgeBaseRequest is the body of POST /v1/knowledge-bases.
type CreateKnowledgeBaseRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// UpdateKnowledgeBaseRequest is the body of PATCH /v1/knowledge-bases/{id}.
type UpdateKnowledgeBaseRequest struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// SetGrantsRequest is the body of PUT /v1/knowledge-bases/{id}/grants;
// grants is required ([] opens the base to the organization's roles).
type SetGrantsRequest struct {
	Grants *[]knowledge.Grant `json:"grants"`
}

// DocumentRequest is the JSON body of POST and PUT on documents.
type DocumentRequest struct {
	Title       string `json:"title"`
	Content     string `json:"content"`
	ContentType string `json:"content_type"`
}

// SearchRequest is the body of POST /v1/knowledge-bases/search.
type SearchRequest struct {
	Query            string   `json:"query"`
	KnowledgeBaseIDs []string `json:"knowledge_base_ids"`
	K                int      `json:"k"`
}

type kbBody struct {
	projections.KnowledgeBase
	Consistency string `json:"consistency,omitempty"`
}

type documentBody struct {
	projections.Document
	Consistency string `json:"consistency,omitempty"`
}

func (s *Server) createKnowledgeBase(w http.ResponseWriter, r *http.Request) {
	var in CreateKnowledgeBaseRequest
	if !s.decode(w, r, &in) {
		return
	}
	who := principalFrom(r.Context())
	created, err := s.deps.App.Commands.Knowledge.CreateKnowledgeBase(r.Context(), who, in.Name, in.Description)
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	consistencyToken := s.afterCommand(w, r, created.Position)
	w.Header().Set("Location", "/v1/knowledge-bases/"+created.ID)
	kb := created.KnowledgeBase
	// A new base has no grants: it is open to the organization's roles.
	writeJSON(w, http.StatusCreated, kbBody{KnowledgeBase: projections.KnowledgeBase{
		ID: created.ID, Name: kb.Name, Description: kb.Description, EmbeddingModel: kb.EmbeddingModel,
		Dimensions: kb.Dimensions, Grants: []knowledge.Grant{}, CreatedBy: who.Subject,
		CreatedAt: created.At, UpdatedAt: created.At,
	}, Consistency: consistencyToken})
}

func (s *Server) listKnowledgeBases(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	includeArchived, err := boolParam(r, "include_archived")
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	list, err := s.deps.App.Queries.Knowledge.KnowledgeBases(r.Context(), principalFrom(r.Context()), page, includeArchived)
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	writeList(w, list, page, func(kb projections.KnowledgeBase) string { return kb.ID })
}

func (s *Server) getKnowledgeBase(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	kb, err := s.deps.App.Queries.Knowledge.KnowledgeBase(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	writeJSON(w, http.StatusOK, kbBody{KnowledgeBase: kb})
}

// kbChanged answers a command on a knowledge base with the base as it is now.
func (s *Server) kbChanged(w http.ResponseWriter, r *http.Request, res commands.Result, err error) {
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	kb, err := s.deps.App.Queries.Knowledge.ManagedKnowledgeBase(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	writeJSON(w, http.StatusOK, kbBody{KnowledgeBase: kb, Consistency: consistencyToken})
}

func (s *Server) updateKnowledgeBase(w http.ResponseWriter, r *http.Request) {
	var in UpdateKnowledgeBaseRequest
	if !s.decode(w, r, &in) {
		return
	}
	res, err := s.deps.App.Commands.Knowledge.UpdateKnowledgeBase(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"], in.Name, in.Description)
	s.kbChanged(w, r, res, err)
}

func (s *Server) setKnowledgeBaseGrants(w http.ResponseWriter, r *http.Request) {
	var in SetGrantsRequest
	if !s.decode(w, r, &in) {
		return
	}
	if in.Grants == nil {
		writeError(w, r, fmt.Errorf("%w: grants is required; [] removes every grant", domain.ErrInvalid), "knowledge base")
		return
	}
	res, err := s.deps.App.Commands.Knowledge.SetKnowledgeBaseGrants(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"], *in.Grants)
	s.kbChanged(w, r, res, err)
}

func (s *Server) archiveKnowledgeBase(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.App.Commands.Knowledge.ArchiveKnowledgeBase(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"])
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

// documentInput reads a document from a JSON body or a multipart upload.
func (s *Server) documentInput(w http.ResponseWriter, r *http.Request) (commands.DocumentInput, bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		in, err := s.deps.Extractor.Upload(r, MaxUploadBytes)
		if err != nil {
			s.extractionError(w, r, err)
			return in, false
		}
		return in, true
	}
	var in DocumentRequest
	if !s.decode(w, r, &in) {
		return commands.DocumentInput{}, false
	}
	if in.ContentType == "" {
		in.ContentType = "text/plain"
	}
	text, err := s.deps.Extractor.Text(r.Context(), in.ContentType, []byte(in.Content))
	if err != nil {
		s.extractionError(w, r, err)
		return commands.DocumentInput{}, false
	}
	return commands.DocumentInput{Title: in.Title, ContentType: in.ContentType, Content: text}, true
}

// extractionError answers an upload the extractor could not read: too
// large, of an unsupported type, or unreadable.
func (s *Server) extractionError(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	if _, ok := asRetryLater(err); ok {
		writeError(w, r, err, "document")
		return
	}
	switch {
	case errors.Is(err, ErrUploadTooLarge):
	case errors.As(err, &tooLarge):
		err = fmt.Errorf("%w: %v", ErrUploadTooLarge, err)
	case errors.Is(err, ErrUnsupportedType), errors.Is(err, ErrPDFAsJSON):
	default:
		err = unreadableDocument{err}
	}
	writeError(w, r, err, "document")
}

func (s *Server) addDocument(w http.ResponseWriter, r *http.Request) {
	in, ok := s.documentInput(w, r)
	if !ok {
		return
	}
	who := principalFrom(r.Context())
	added, err := s.deps.App.Commands.Knowledge.AddDocument(r.Context(), who, mux.Vars(r)["id"], in)
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	consistencyToken := s.afterCommand(w, r, added.Position)
	doc := added.Document
	w.Header().Set("Location", "/v1/knowledge-bases/"+doc.KnowledgeBaseID+"/documents/"+added.ID)
	// A new document waits for ingestion to chunk it.
	writeJSON(w, http.StatusCreated, documentBody{Document: projections.Document{
		ID: added.ID, KnowledgeBaseID: doc.KnowledgeBaseID, Title: doc.Title, ContentType: doc.ContentType,
		ContentHash: doc.ContentHash, SizeBytes: len(doc.Content), Version: doc.Version,
		State: projections.DocumentPending, CreatedBy: who.Subject, CreatedAt: added.At, UpdatedAt: added.At,
	}, Consistency: consistencyToken})
}

func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request) {
	page, ok := s.page(w, r)
	if !ok {
		return
	}
	docs, err := s.deps.App.Queries.Knowledge.Documents(r.Context(), principalFrom(r.Context()), mux.Vars(r)["id"], page)
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	writeList(w, docs, page, func(d projections.Document) string { return d.ID })
}

func (s *Server) getDocument(w http.ResponseWriter, r *http.Request) {
	if !s.awaitConsistency(w, r) {
		return
	}
	v := mux.Vars(r)
	doc, err := s.deps.App.Queries.Knowledge.Document(r.Context(), principalFrom(r.Context()), v["id"], v["doc"])
	if err != nil {
		writeError(w, r, err, "document")
		return
	}
	writeJSON(w, http.StatusOK, documentBody{Document: doc})
}

func (s *Server) replaceDocument(w http.ResponseWriter, r *http.Request) {
	in, ok := s.documentInput(w, r)
	if !ok {
		return
	}
	v := mux.Vars(r)
	who := principalFrom(r.Context())
	res, err := s.deps.App.Commands.Knowledge.ReplaceDocument(r.Context(), who, v["id"], v["doc"], in)
	if err != nil {
		writeError(w, r, err, "document")
		return
	}
	consistencyToken := s.afterCommand(w, r, res.Position)
	doc, err := s.deps.App.Queries.Knowledge.WrittenDocument(r.Context(), who, v["id"], v["doc"])
	if err != nil {
		writeError(w, r, err, "document")
		return
	}
	writeJSON(w, http.StatusOK, documentBody{Document: doc, Consistency: consistencyToken})
}

func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	res, err := s.deps.App.Commands.Knowledge.DeleteDocument(r.Context(), principalFrom(r.Context()), v["id"], v["doc"])
	if err != nil {
		writeError(w, r, err, "document")
		return
	}
	s.afterCommand(w, r, res.Position)
	w.WriteHeader(http.StatusNoContent)
}

type searchBody struct {
	Results     []projections.SearchResult `json:"results"`
	SearchID    string                     `json:"search_id"`
	Consistency string                     `json:"consistency,omitempty"`
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	var in SearchRequest
	if !s.decode(w, r, &in) {
		return
	}
	if !s.awaitConsistency(w, r) {
		return
	}
	answer, err := s.deps.App.Queries.Knowledge.Search(r.Context(), principalFrom(r.Context()), projections.SearchRequest{
		Query: in.Query, KnowledgeBaseIDs: in.KnowledgeBaseIDs, K: in.K,
	})
	if err != nil {
		writeError(w, r, err, "knowledge base")
		return
	}
	consistencyToken := s.issueConsistency(w, r, answer.Position)
	writeJSON(w, http.StatusOK, searchBody{Results: answer.Results, SearchID: answer.SearchID, Consistency: consistencyToken})
}
