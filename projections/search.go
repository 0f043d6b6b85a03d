package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/palisadehq/palisade/domain"
	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
)

// Search limits.
const (
	MaxSearchK     = 50
	DefaultSearchK = 10
	MaxQueryLen    = knowledge.MaxQueryLen
	MaxSearchBases = 100
	snippetLen     = 300
)

// KnowledgeQueries answers reads of knowledge bases, documents and
// retrieval. A base the caller may not read answers exactly like a base
// that does not exist.
type KnowledgeQueries struct {
	bases    KnowledgeModel
	chunks   ChunkModel
	embedder Embedder
	denials  DenialRecorder
	searches SearchRecorder
}

// NewKnowledgeQueries returns the knowledge query service; every search it
// answers is recorded through searches.
func NewKnowledgeQueries(bases KnowledgeModel, chunks ChunkModel, embedder Embedder, denials DenialRecorder, searches SearchRecorder) *KnowledgeQueries {
	return &KnowledgeQueries{bases: bases, chunks: chunks, embedder: embedder, denials: denials, searches: searches}
}

// orgScope authorizes the organization-level permission and returns the
// scope.
func (q *KnowledgeQueries) orgScope(ctx context.Context, who access.Principal, action access.Permission, resource string) (access.Scope, error) {
	return authorizeOrg(ctx, q.denials, who, action, resource)
}

// visible reports whether who may see kb at all (read it or manage it).
// Records carry no org: every record a scoped read returns belongs to the
// scope's org, which is who's.
func visible(who access.Principal, kb KnowledgeBase) bool {
	res := knowledge.Resource(who.OrgID, kb.Grants)
	return access.Decide(who, access.KBRead, res).Allowed || access.Decide(who, access.KBManage, res).Allowed
}

// base returns a knowledge base who may perform action on; one it may not
// see is not found.
func (q *KnowledgeQueries) base(ctx context.Context, who access.Principal, scope access.Scope, id string, action access.Permission) (KnowledgeBase, error) {
	kb, err := q.bases.KnowledgeBase(ctx, scope, id)
	if err != nil {
		return KnowledgeBase{}, err
	}
	d := access.Decide(who, action, knowledge.Resource(who.OrgID, kb.Grants))
	if d.Allowed {
		return kb, nil
	}
	q.denials.RecordDenial(ctx, who, d, "knowledge-bases/"+id)
	if !visible(who, kb) {
		return KnowledgeBase{}, fmt.Errorf("knowledge base: %w", domain.ErrNotFound)
	}
	return KnowledgeBase{}, fmt.Errorf("%w: %s", domain.ErrForbidden, d.Reason())
}

// KnowledgeBases lists the bases the caller may see; archived ones only
// when asked.
func (q *KnowledgeQueries) KnowledgeBases(ctx context.Context, who access.Principal, page Page, includeArchived bool) ([]KnowledgeBase, error) {
	scope, err := q.orgScope(ctx, who, access.KBRead, "knowledge-bases")
	if err != nil {
		return nil, err
	}
	limit := PageLimit(page.Limit)
	out := make([]KnowledgeBase, 0, limit)
	for len(out) < limit {
		batch, err := q.bases.KnowledgeBases(ctx, scope, Page{After: page.After, Limit: limit})
		if err != nil {
			return nil, err
		}
		for _, kb := range batch {
			if len(out) < limit && visible(who, kb) && (includeArchived || !kb.Archived) {
				out = append(out, kb)
			}
		}
		if len(batch) < limit {
			break
		}
		page.After = batch[len(batch)-1].ID
	}
	return out, nil
}

// KnowledgeBase returns one base the caller may see.
func (q *KnowledgeQueries) KnowledgeBase(ctx context.Context, who access.Principal, id string) (KnowledgeBase, error) {
	scope, err := q.orgScope(ctx, who, access.KBRead, "knowledge-bases/"+id)
	if err != nil {
		return KnowledgeBase{}, err
	}
	kb, err := q.bases.KnowledgeBase(ctx, scope, id)
	if err != nil {
		return KnowledgeBase{}, err
	}
	if !visible(who, kb) {
		q.denials.RecordDenial(ctx, who, access.Decide(who, access.KBRead, knowledge.Resource(who.OrgID, kb.Grants)), "knowledge-bases/"+id)
		return KnowledgeBase{}, fmt.Errorf("knowledge base: %w", domain.ErrNotFound)
	}
	return kb, nil
}

// ManagedKnowledgeBase returns a base to a caller who just changed it.
func (q *KnowledgeQueries) ManagedKnowledgeBase(ctx context.Context, who access.Principal, id string) (KnowledgeBase, error) {
	scope, err := who.Scope()
	if err != nil {
		return KnowledgeBase{}, err
	}
	return q.base(ctx, who, scope, id, access.KBManage)
}

// Documents lists a base's documents.
func (q *KnowledgeQueries) Documents(ctx context.Context, who access.Principal, kbID string, page Page) ([]Document, error) {
	scope, err := q.orgScope(ctx, who, access.KBRead, "knowledge-bases/"+kbID+"/documents")
	if err != nil {
		return nil, err
	}
	if _, err := q.base(ctx, who, scope, kbID, access.KBRead); err != nil {
		return nil, err
	}
	return q.bases.Documents(ctx, scope, kbID, page)
}

// Document returns one document of a base.
func (q *KnowledgeQueries) Document(ctx context.Context, who access.Principal, kbID, docID string) (Document, error) {
	scope, err := q.orgScope(ctx, who, access.KBRead, "knowledge-bases/"+kbID+"/documents/"+docID)
	if err != nil {
		return Document{}, err
	}
	if _, err := q.base(ctx, who, scope, kbID, access.KBRead); err != nil {
		return Document{}, err
	}
	return q.bases.Document(ctx, scope, kbID, docID)
}

// DocumentByID returns a document of a base the caller may read, found by
// its id alone (a bot's read_document tool). A document of a base the
// caller may not read answers exactly like one that does not exist.
func (q *KnowledgeQueries) DocumentByID(ctx context.Context, who access.Principal, docID string) (Document, error) {
	scope, err := q.orgScope(ctx, who, access.KBRead, "documents/"+docID)
	if err != nil {
		return Document{}, err
	}
	doc, err := q.bases.DocumentByID(ctx, scope, docID)
	if err != nil {
		return Document{}, err
	}
	kb, err := q.base(ctx, who, scope, doc.KnowledgeBaseID, access.KBRead)
	if errors.Is(err, domain.ErrForbidden) || err == nil && kb.Archived {
		return Document{}, fmt.Errorf("document: %w", domain.ErrNotFound)
	}
	if err != nil {
		return Document{}, err
	}
	return doc, nil
}

// WrittenDocument returns a document to a caller who just wrote it, which
// needs kb:write on its base rather than kb:read.
func (q *KnowledgeQueries) WrittenDocument(ctx context.Context, who access.Principal, kbID, docID string) (Document, error) {
	scope, err := q.orgScope(ctx, who, access.KBWrite, "knowledge-bases/"+kbID+"/documents/"+docID)
	if err != nil {
		return Document{}, err
	}
	if _, err := q.base(ctx, who, scope, kbID, access.KBWrite); err != nil {
		return Document{}, err
	}
	return q.bases.Document(ctx, scope, kbID, docID)
}

// SearchResult is one ranked chunk, as a caller sees it.
type SearchResult struct {
	ChunkID         string  `json:"chunk_id"`
	DocumentID      string  `json:"document_id"`
	DocumentTitle   string  `json:"document_title"`
	KnowledgeBaseID string  `json:"knowledge_base_id"`
	Heading         string  `json:"heading,omitempty"`
	Snippet         string  `json:"snippet"`
	Score           float64 `json:"score"`
}

// search ranks chunks of the knowledge bases the caller may read — all of
// them, or those of kbIDs, each of which must be readable (one that is not
// answers not found). The restriction to the org and to readable bases is
// part of the chunk query itself. It returns the results and the bases
// searched, for the audit record.
func (q *KnowledgeQueries) search(ctx context.Context, who access.Principal, query string, kbIDs, within []string, k int) ([]SearchResult, []string, error) {
	scope, err := q.orgScope(ctx, who, access.KBRead, "knowledge-bases/search")
	if err != nil {
		return nil, nil, err
	}
	switch {
	case k == 0:
		k = DefaultSearchK
	case k < 0 || k > MaxSearchK:
		return nil, nil, fmt.Errorf("%w: k must be between 1 and %d", domain.ErrInvalid, MaxSearchK)
	}
	if len(kbIDs) > MaxSearchBases {
		return nil, nil, fmt.Errorf("%w: at most %d knowledge_base_ids", domain.ErrInvalid, MaxSearchBases)
	}
	// Last of the checks, so that a *knowledge.QueryError, which the caller
	// records as a refused search, comes with a valid k.
	query = strings.TrimSpace(query)
	if err := knowledge.CheckQuery(query); err != nil {
		return nil, nil, err
	}
	readable, err := q.readableBases(ctx, who, scope)
	if err != nil {
		return nil, nil, err
	}
	if within != nil {
		readable = slices.DeleteFunc(readable, func(id string) bool { return !slices.Contains(within, id) })
	}
	searched := readable
	if len(kbIDs) > 0 {
		searched = nil
		for _, id := range kbIDs {
			if !slices.Contains(readable, id) {
				return nil, nil, fmt.Errorf("knowledge base: %w", domain.ErrNotFound)
			}
			if !slices.Contains(searched, id) {
				searched = append(searched, id)
			}
		}
	}
	if len(searched) == 0 {
		return []SearchResult{}, []string{}, nil
	}
	vectors, err := q.embedder.Embed(ctx, []string{query})
	if err != nil {
		return nil, nil, fmt.Errorf("embed query: %w", err)
	}
	hits, err := q.chunks.Search(ctx, scope, ChunkQuery{KnowledgeBaseIDs: searched, Vector: vectors[0], Text: query, K: k})
	if err != nil {
		return nil, nil, err
	}
	out := make([]SearchResult, 0, len(hits))
	titles := map[string]string{}
	for _, h := range hits {
		if !slices.Contains(searched, h.KnowledgeBaseID) {
			// Defence in depth: an adapter that ignored the restriction
			// must not leak; this is a bug, reported loudly.
			return nil, nil, fmt.Errorf("chunk search returned a chunk of knowledge base %q outside the query", h.KnowledgeBaseID)
		}
		title, ok := titles[h.DocumentID]
		if !ok {
			if doc, err := q.bases.Document(ctx, scope, h.KnowledgeBaseID, h.DocumentID); err == nil {
				title = doc.Title
			}
			titles[h.DocumentID] = title
		}
		out = append(out, SearchResult{
			ChunkID: h.ChunkID, DocumentID: h.DocumentID, DocumentTitle: title, KnowledgeBaseID: h.KnowledgeBaseID,
			Heading: h.Heading, Snippet: snippet(h.Text), Score: h.Score,
		})
	}
	return out, searched, nil
}

// readableBases lists the ids of the org's active bases who may read.
func (q *KnowledgeQueries) readableBases(ctx context.Context, who access.Principal, scope access.Scope) ([]string, error) {
	var ids []string
	after := ""
	for {
		batch, err := q.bases.KnowledgeBases(ctx, scope, Page{After: after, Limit: MaxPageLimit})
		if err != nil {
			return nil, err
		}
		for _, kb := range batch {
			if !kb.Archived && access.Decide(who, access.KBRead, knowledge.Resource(who.OrgID, kb.Grants)).Allowed {
				ids = append(ids, kb.ID)
			}
		}
		if len(batch) < MaxPageLimit {
			return ids, nil
		}
		after = batch[len(batch)-1].ID
	}
}

func snippet(text string) string {
	if len(text) <= snippetLen {
		return text
	}
	cut := snippetLen
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "…"
}
