package conversation

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/projections"
)

// Knowledge is the read side of knowledge bases (projections.KnowledgeQueries).
type Knowledge interface {
	Search(ctx context.Context, who access.Principal, req projections.SearchRequest) (projections.SearchAnswer, error)
	KnowledgeBases(ctx context.Context, who access.Principal, page projections.Page, includeArchived bool) ([]projections.KnowledgeBase, error)
	DocumentByID(ctx context.Context, who access.Principal, docID string) (projections.Document, error)
}

// Documents returns a document's current text (commands.Conversations).
type Documents interface {
	DocumentText(ctx context.Context, orgID, docID string) (title, text string, err error)
}

// maxDocumentText bounds what read_document returns to the model, in bytes.
const maxDocumentText = 8000

// KnowledgeTools returns search_knowledge, read_document and
// list_knowledge_bases over the read side. Each touches only bases both
// granted to the bot and readable by the effective principal.
func KnowledgeTools(kq Knowledge, docs Documents) []Tool {
	return []Tool{
		{
			Name:        "search_knowledge",
			Description: "Search the knowledge bases available to you. Returns passages with a ref number; cite them as [ref].",
			Permission:  access.KBRead,
			Schema: `{"type":"object","additionalProperties":false,"required":["query"],"properties":{
				"query":{"type":"string","minLength":1,"maxLength":2000},
				"knowledge_base_ids":{"type":"array","maxItems":20,"items":{"type":"string","maxLength":64}},
				"k":{"type":"integer","minimum":1,"maximum":20}}}`,
			Run: func(ctx context.Context, call Call) (Output, error) { return searchKnowledge(ctx, kq, call) },
		},
		{
			Name:        "read_document",
			Description: "Read one document of a knowledge base available to you.",
			Permission:  access.KBRead,
			Schema: `{"type":"object","additionalProperties":false,"required":["document_id"],"properties":{
				"document_id":{"type":"string","minLength":1,"maxLength":64}}}`,
			Run: func(ctx context.Context, call Call) (Output, error) { return readDocument(ctx, kq, docs, call) },
		},
		{
			Name:        "list_knowledge_bases",
			Description: "List the knowledge bases available to you.",
			Permission:  access.KBRead,
			Schema:      `{"type":"object","additionalProperties":false,"properties":{}}`,
			Run:         func(ctx context.Context, call Call) (Output, error) { return listKnowledgeBases(ctx, kq, call) },
		},
	}
}

func notGranted(p access.Permission, resource string) error {
	return &DeniedError{Decision: access.Decision{Code: access.ReasonResourceNotGranted, Permission: p}, Resource: resource}
}

func searchKnowledge(ctx context.Context, kq Knowledge, call Call) (Output, error) {
	var args struct {
		Query            string   `json:"query"`
		KnowledgeBaseIDs []string `json:"knowledge_base_ids"`
		K                int      `json:"k"`
	}
	if err := decodeArguments(call.Arguments, &args); err != nil {
		return Output{}, err
	}
	for _, id := range args.KnowledgeBaseIDs {
		if !slices.Contains(call.Bot.KnowledgeBases, id) {
			return Output{}, notGranted(access.KBRead, "knowledge-bases/"+id)
		}
	}
	k := args.K
	if k == 0 {
		k = 5
	}
	within := append([]string{}, call.Bot.KnowledgeBases...)
	answer, err := kq.Search(ctx, call.As, projections.SearchRequest{Query: args.Query, KnowledgeBaseIDs: args.KnowledgeBaseIDs, K: k, Within: within})
	if err != nil {
		return Output{}, err
	}
	out := Output{Passages: make([]Passage, 0, len(answer.Results)), Result: map[string]any{"search_id": answer.SearchID}}
	for _, r := range answer.Results {
		out.Passages = append(out.Passages, Passage{ChunkID: r.ChunkID, DocumentID: r.DocumentID,
			KnowledgeBaseID: r.KnowledgeBaseID, Title: r.DocumentTitle, Text: r.Snippet})
		out.ChunkIDs = append(out.ChunkIDs, r.ChunkID)
		out.DocumentIDs = appendNew(out.DocumentIDs, r.DocumentID)
		out.KnowledgeBaseIDs = appendNew(out.KnowledgeBaseIDs, r.KnowledgeBaseID)
	}
	out.Rows = len(answer.Results)
	out.Summary = fmt.Sprintf("%d passages from %d documents", len(answer.Results), len(out.DocumentIDs))
	return out, nil
}

func readDocument(ctx context.Context, kq Knowledge, docs Documents, call Call) (Output, error) {
	var args struct {
		DocumentID string `json:"document_id"`
	}
	if err := decodeArguments(call.Arguments, &args); err != nil {
		return Output{}, err
	}
	// The read side decides on the document's base for the effective
	// principal (a base it may not read is not found); the bot's grants
	// decide next.
	doc, err := kq.DocumentByID(ctx, call.As, args.DocumentID)
	if err != nil {
		return Output{}, err
	}
	if !slices.Contains(call.Bot.KnowledgeBases, doc.KnowledgeBaseID) {
		return Output{}, notGranted(access.KBRead, "knowledge-bases/"+doc.KnowledgeBaseID+"/documents/"+doc.ID)
	}
	title, text, err := docs.DocumentText(ctx, call.As.OrgID, doc.ID)
	if err != nil {
		return Output{}, err
	}
	if len(text) > maxDocumentText {
		cut := maxDocumentText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	return Output{
		Passages:         []Passage{{DocumentID: doc.ID, KnowledgeBaseID: doc.KnowledgeBaseID, Title: title, Text: text}},
		Summary:          fmt.Sprintf("document of %d bytes", len(text)),
		KnowledgeBaseIDs: []string{doc.KnowledgeBaseID}, DocumentIDs: []string{doc.ID}, Rows: 1,
	}, nil
}

func listKnowledgeBases(ctx context.Context, kq Knowledge, call Call) (Output, error) {
	bases, err := kq.KnowledgeBases(ctx, call.As, projections.Page{Limit: projections.MaxPageLimit}, false)
	if err != nil {
		return Output{}, err
	}
	items := []map[string]any{}
	var ids []string
	for _, kb := range bases {
		if !slices.Contains(call.Bot.KnowledgeBases, kb.ID) {
			continue
		}
		items = append(items, map[string]any{"id": kb.ID, "name": kb.Name})
		ids = append(ids, kb.ID)
	}
	return Output{Result: map[string]any{"knowledge_bases": items}, KnowledgeBaseIDs: ids, Rows: len(items),
		Summary: fmt.Sprintf("%d knowledge bases", len(items))}, nil
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
