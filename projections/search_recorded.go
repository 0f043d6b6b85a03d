package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/domain/access"
	"github.com/palisadehq/palisade/domain/knowledge"
)

// SearchRecorder appends what a search returned to the audit trail (the
// write side's knowledge handlers). It returns the search's id and the log
// position of its record.
type SearchRecorder interface {
	RecordSearch(ctx context.Context, who access.Principal, d access.Decision, searched *knowledge.KnowledgeSearched) (id string, position uint64, err error)
}

// SearchRequest is what a caller searches for: a query, optionally
// restricted to some knowledge bases, and how many results (0 means
// DefaultSearchK).
type SearchRequest struct {
	Query            string
	KnowledgeBaseIDs []string
	K                int
	// Within, when not nil, narrows the search to these bases silently (a
	// bot's granted bases): a base outside it is never searched, and one
	// named in KnowledgeBaseIDs answers not found.
	Within []string
}

// SearchAnswer is a recorded search: the ranked chunks, the id of the
// search's audit record and its log position.
type SearchAnswer struct {
	Results  []SearchResult
	SearchID string
	Position uint64
}

// Search is the one search use case: it authorizes who, ranks chunks of the
// bases who may read inside the query (see search), and records the search
// with the chunks it returned before answering. HTTP routes, bot tools and
// workflow steps all call it, so every search leaves the same audit record;
// no answer leaves without its record.
func (q *KnowledgeQueries) Search(ctx context.Context, who access.Principal, req SearchRequest) (SearchAnswer, error) {
	results, searched, err := q.search(ctx, who, req.Query, req.KnowledgeBaseIDs, req.Within, req.K)
	// A search refused for its query text (a NUL byte, say) is recorded
	// like any other, with the reason, before the refusal is returned.
	var badQuery *knowledge.QueryError
	refused := errors.As(err, &badQuery)
	if err != nil && !refused {
		return SearchAnswer{}, err
	}
	hits := make([]knowledge.SearchHit, len(results))
	for i, res := range results {
		hits[i] = knowledge.SearchHit{ChunkID: res.ChunkID, DocumentID: res.DocumentID, KnowledgeBaseID: res.KnowledgeBaseID, Score: res.Score}
	}
	k := req.K
	if k == 0 {
		k = DefaultSearchK
	}
	d := access.Decide(who, access.KBRead, access.OrgResource(who.OrgID))
	record := &knowledge.KnowledgeSearched{Query: req.Query, KnowledgeBaseIDs: searched, K: k, Hits: hits}
	if refused {
		record.Refused = badQuery.Reason
	}
	id, position, recErr := q.searches.RecordSearch(ctx, who, d, record)
	if recErr != nil {
		return SearchAnswer{}, fmt.Errorf("record search: %w", recErr)
	}
	if refused {
		return SearchAnswer{}, err
	}
	return SearchAnswer{Results: results, SearchID: id, Position: position}, nil
}
